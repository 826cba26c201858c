// AVX2 f32 GEMM strip kernel: rows in groups of up to 6, each with two 8-lane accumulators per
// row (12 ymm registers) (compiled with AVX2/FMA flags; called only after run-time dispatch).
#include <immintrin.h>

#include "kernels/gemm_f32.h"

namespace bora::kernels {
namespace {

template <int kRows>
void Strip(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k, float* c,
           int64_t ldc, int64_t columns) {
  __m256 lo[kRows], hi[kRows];
  for (int i = 0; i < kRows; ++i) lo[i] = hi[i] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(bp + p * kGemmStrip);
    const __m256 b1 = _mm256_loadu_ps(bp + p * kGemmStrip + 8);
    const float* a_p = a + p * a_col;
    for (int i = 0; i < kRows; ++i) {
      const __m256 value = _mm256_broadcast_ss(a_p + i * a_row);
      lo[i] = _mm256_fmadd_ps(value, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(value, b1, hi[i]);
    }
  }
  for (int i = 0; i < kRows; ++i) {
    float sums[kGemmStrip];
    _mm256_storeu_ps(sums, lo[i]);
    _mm256_storeu_ps(sums + 8, hi[i]);
    float* row = c + i * ldc;
    for (int64_t j = 0; j < columns; ++j) row[j] += sums[j];
  }
}

void Group(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k, int64_t rows,
           float* c, int64_t ldc, int64_t columns) {
  switch (rows) {
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

}  // namespace

void GemmStripAvx2(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                   int64_t rows, float* c, int64_t ldc, int64_t columns) {
  for (int64_t first = 0; first < rows; first += 6) {
    const int64_t count = rows - first < 6 ? rows - first : 6;
    Group(a + first * a_row, a_row, a_col, bp, k, count, c + first * ldc, ldc, columns);
  }
}

}  // namespace bora::kernels
