// AVX512-BF16 GEMM strip kernel: up to 12 rows x 32 columns of f32 accumulators, one vdpbf16ps
// per (row, 16 columns, k-pair) (compiled with AVX512-BF16 flags; called only after dispatch).
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm_bf16.h"

namespace bora::kernels {
namespace {

template <int kRows, bool kTwoStrips>
void Strip(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp, int64_t strip_stride,
           int64_t k_pairs, float* c, int64_t ldc, int64_t columns) {
  __m512 acc0[kRows], acc1[kRows];
  for (int i = 0; i < kRows; ++i) {
    acc0[i] = _mm512_setzero_ps();
    acc1[i] = _mm512_setzero_ps();
  }
  const uint16_t* bp1 = bp + strip_stride;
  for (int64_t q = 0; q < k_pairs; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp + q * 32);
    __m512bh b1;
    if constexpr (kTwoStrips) b1 = (__m512bh)_mm512_loadu_si512(bp1 + q * 32);
    for (int i = 0; i < kRows; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + q * a_pair_stride + 2 * i, sizeof(pair));
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
      acc0[i] = _mm512_dpbf16_ps(acc0[i], av, b0);
      if constexpr (kTwoStrips) acc1[i] = _mm512_dpbf16_ps(acc1[i], av, b1);
    }
  }
  const int64_t first = columns < 16 ? columns : 16;
  const __mmask16 mask0 = static_cast<__mmask16>((1u << first) - 1u);
  const __mmask16 mask1 = static_cast<__mmask16>(kTwoStrips ? (1u << (columns - 16)) - 1u : 0u);
  for (int i = 0; i < kRows; ++i) {
    float* row = c + i * ldc;
    _mm512_mask_storeu_ps(row, mask0, _mm512_add_ps(_mm512_maskz_loadu_ps(mask0, row), acc0[i]));
    if constexpr (kTwoStrips) {
      _mm512_mask_storeu_ps(row + 16, mask1,
                            _mm512_add_ps(_mm512_maskz_loadu_ps(mask1, row + 16), acc1[i]));
    }
  }
}

template <bool kTwo>
void Dispatch(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp, int64_t strip_stride,
              int64_t k_pairs, int64_t rows, float* c, int64_t ldc, int64_t columns) {
  switch (rows) {
#define BORA_BF16_ROWS(R) \
  case R:                 \
    return Strip<R, kTwo>(a, a_pair_stride, bp, strip_stride, k_pairs, c, ldc, columns);
    BORA_BF16_ROWS(12)
    BORA_BF16_ROWS(11)
    BORA_BF16_ROWS(10)
    BORA_BF16_ROWS(9)
    BORA_BF16_ROWS(8)
    BORA_BF16_ROWS(7)
    BORA_BF16_ROWS(6)
    BORA_BF16_ROWS(5)
    BORA_BF16_ROWS(4)
    BORA_BF16_ROWS(3)
    BORA_BF16_ROWS(2)
    BORA_BF16_ROWS(1)
#undef BORA_BF16_ROWS
    default:
      return;
  }
}

}  // namespace

void GemmBf16StripAvx512Bf16(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp,
                             int64_t strip_stride, int64_t k_pairs, int64_t rows, float* c,
                             int64_t ldc, int64_t columns) {
  if (columns > 16) {
    Dispatch<true>(a, a_pair_stride, bp, strip_stride, k_pairs, rows, c, ldc, columns);
  } else {
    Dispatch<false>(a, a_pair_stride, bp, strip_stride, k_pairs, rows, c, ldc, columns);
  }
}

void F32ToBf16RowAvx512Bf16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh packed =
        _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(y + i, (__m512i)packed);
  }
  if (i < n) {
    const int64_t left = n - i;
    const __mmask16 lo = static_cast<__mmask16>(left >= 16 ? 0xffffu : (1u << left) - 1u);
    const __mmask16 hi = static_cast<__mmask16>(left > 16 ? (1u << (left - 16)) - 1u : 0u);
    const __m512bh packed = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16),
                                                _mm512_maskz_loadu_ps(lo, x + i));
    _mm512_mask_storeu_epi16(y + i, (static_cast<__mmask32>(hi) << 16) | lo, (__m512i)packed);
  }
}

}  // namespace bora::kernels
