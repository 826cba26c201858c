// Scalar reference of the f32 GEMM strip kernel.
#include "kernels/gemm_f32.h"

namespace bora::kernels {

void GemmStripScalar(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                     int64_t rows, float* c, int64_t ldc, int64_t columns) {
  for (int64_t i = 0; i < rows; ++i) {
    float acc[kGemmStrip] = {};
    const float* a_i = a + i * a_row;
    for (int64_t p = 0; p < k; ++p) {
      const float value = a_i[p * a_col];
      const float* b = bp + p * kGemmStrip;
      for (int64_t j = 0; j < kGemmStrip; ++j) acc[j] += value * b[j];
    }
    for (int64_t j = 0; j < columns; ++j) c[i * ldc + j] += acc[j];
  }
}

}  // namespace bora::kernels
