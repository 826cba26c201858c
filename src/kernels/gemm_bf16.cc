// Scalar reference of the bf16 GEMM strip kernel and the f32 -> bf16 row conversion.
#include "kernels/gemm_bf16.h"

#include "base/float16.h"

namespace bora::kernels {

void GemmBf16StripScalar(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp,
                         int64_t strip_stride, int64_t k_pairs, int64_t rows, float* c, int64_t ldc,
                         int64_t columns) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < columns; ++j) {
      const uint16_t* b = bp + (j / kGemmBf16Strip) * strip_stride + 2 * (j % kGemmBf16Strip);
      float sum = 0.0f;
      for (int64_t q = 0; q < k_pairs; ++q) {
        sum += Bf16ToF32(a[q * a_pair_stride + 2 * i]) * Bf16ToF32(b[q * 32]);
        sum += Bf16ToF32(a[q * a_pair_stride + 2 * i + 1]) * Bf16ToF32(b[q * 32 + 1]);
      }
      c[i * ldc + j] += sum;
    }
  }
}

void F32ToBf16RowScalar(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = F32ToBf16(x[i]);
}

}  // namespace bora::kernels
