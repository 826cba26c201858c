// AVX-512 f32 GEMM strip kernel: up to 12 rows x 16 columns of accumulators in zmm registers
// (compiled with AVX-512 flags; called only after run-time dispatch).
#include <immintrin.h>

#include "kernels/gemm_f32.h"

namespace bora::kernels {
namespace {

template <int kRows>
void Strip(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k, float* c,
           int64_t ldc, int64_t columns) {
  __m512 acc[kRows];
  for (int i = 0; i < kRows; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b = _mm512_loadu_ps(bp + p * kGemmStrip);
    const float* a_p = a + p * a_col;
    for (int i = 0; i < kRows; ++i) {
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a_p[i * a_row]), b, acc[i]);
    }
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << columns) - 1u);
  for (int i = 0; i < kRows; ++i) {
    float* row = c + i * ldc;
    _mm512_mask_storeu_ps(row, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row), acc[i]));
  }
}

}  // namespace

void GemmStripAvx512(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                     int64_t rows, float* c, int64_t ldc, int64_t columns) {
  switch (rows) {
    case 12:
      return Strip<12>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 11:
      return Strip<11>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 10:
      return Strip<10>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 9:
      return Strip<9>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 8:
      return Strip<8>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 7:
      return Strip<7>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 6:
      return Strip<6>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 5:
      return Strip<5>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 4:
      return Strip<4>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 3:
      return Strip<3>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 2:
      return Strip<2>(a, a_row, a_col, bp, k, c, ldc, columns);
    case 1:
      return Strip<1>(a, a_row, a_col, bp, k, c, ldc, columns);
    default:
      return;
  }
}

}  // namespace bora::kernels
