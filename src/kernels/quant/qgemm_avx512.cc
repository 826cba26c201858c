// AVX-512 VNNI activation quantizer and packed q8/q4 GEMM (compiled with AVX-512 flags; called
// only after run-time dispatch). Same accumulation order as the scalar reference: bit-identical.
// Only intrinsics and plain loops here: no inline library templates that could be shared with
// baseline code.
#include <immintrin.h>

#include <cstring>

#include "kernels/quant/qgemm.h"

namespace bora::kernels {
namespace {

inline int32_t Load32(const int8_t* p) {
  int32_t value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

// One panel (16 rows) x T tokens over all blocks. acc[t] lane r = output (row r, token t).
template <int T, bool kQ4>
inline void PanelTile(const uint8_t* quants, const uint16_t* scales, int64_t blocks, const QuantizedRows& x,
                      int64_t t0, float* y, int64_t y_stride, __mmask16 row_mask) {
  constexpr int64_t kBlockBytes = kQ4 ? 256 : 512;
  constexpr int32_t kZeroPoint = kQ4 ? 8 : 128;
  constexpr int64_t kPrefetchBytes = 4096;
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = quants + b * kBlockBytes;
    if constexpr (T <= 2) {
      // Decode streams the weights once: prefetch ahead of the hardware prefetcher.
      for (int64_t line = 0; line < kBlockBytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes + line), _MM_HINT_T0);
      }
    }
    const __m512 d_w = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + b * 16)));
    __m512i isum[T];
    const int8_t* xq[T];
    for (int t = 0; t < T; ++t) {
      const int64_t index = (t0 + t) * blocks + b;
      isum[t] = _mm512_set1_epi32(-kZeroPoint * x.sum[index]);
      xq[t] = x.q + index * kQuantBlock;
    }
    // Few tokens: a second integer chain per token hides vpdpbusd latency (integer sums are
    // exact, so splitting them does not change the result).
    constexpr bool kSplit = T <= 2;
    __m512i isum2[kSplit ? T : 1];
    if constexpr (kSplit) {
      for (int t = 0; t < T; ++t) isum2[t] = _mm512_setzero_si512();
    }
    if constexpr (kQ4) {
      for (int v = 0; v < 4; ++v) {
        const __m512i raw = _mm512_loadu_si512(block + v * 64);
        const __m512i lo = _mm512_and_si512(raw, low_nibbles);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low_nibbles);
        for (int t = 0; t < T; ++t) {
          isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(Load32(xq[t] + v * 8)));
          if constexpr (kSplit) {
            isum2[t] = _mm512_dpbusd_epi32(isum2[t], hi, _mm512_set1_epi32(Load32(xq[t] + v * 8 + 4)));
          } else {
            isum[t] = _mm512_dpbusd_epi32(isum[t], hi, _mm512_set1_epi32(Load32(xq[t] + v * 8 + 4)));
          }
        }
      }
    } else {
      for (int quad = 0; quad < 8; quad += 2) {
        const __m512i w0 = _mm512_loadu_si512(block + quad * 64);
        const __m512i w1 = _mm512_loadu_si512(block + quad * 64 + 64);
        for (int t = 0; t < T; ++t) {
          isum[t] = _mm512_dpbusd_epi32(isum[t], w0, _mm512_set1_epi32(Load32(xq[t] + quad * 4)));
          if constexpr (kSplit) {
            isum2[t] = _mm512_dpbusd_epi32(isum2[t], w1, _mm512_set1_epi32(Load32(xq[t] + quad * 4 + 4)));
          } else {
            isum[t] = _mm512_dpbusd_epi32(isum[t], w1, _mm512_set1_epi32(Load32(xq[t] + quad * 4 + 4)));
          }
        }
      }
    }
    if constexpr (kSplit) {
      for (int t = 0; t < T; ++t) isum[t] = _mm512_add_epi32(isum[t], isum2[t]);
    }
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(d_w, _mm512_set1_ps(x.scale[(t0 + t) * blocks + b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, row_mask, acc[t]);
}

template <bool kQ4>
void QGemmFormat(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride) {
  constexpr int64_t kBlockBytes = kQ4 ? 256 : 512;
  constexpr int kTile = 8;
  const int64_t blocks = w.cols / kQuantBlock;
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t valid = w.rows - panel * kPanelRows;
    const __mmask16 mask = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1u);
    const uint8_t* quants = w.quants + panel * blocks * kBlockBytes;
    const uint16_t* scales = w.scales + panel * blocks * kPanelRows;
    float* out = y + panel * kPanelRows;
    int64_t t = 0;
    for (; t + kTile <= tokens; t += kTile) {
      PanelTile<kTile, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask);
    }
    switch (tokens - t) {
      case 7: PanelTile<7, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 6: PanelTile<6, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 5: PanelTile<5, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 4: PanelTile<4, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 3: PanelTile<3, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 2: PanelTile<2, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      case 1: PanelTile<1, kQ4>(quants, scales, blocks, x, t, out + t * y_stride, y_stride, mask); break;
      default: break;
    }
  }
}

}  // namespace

void QuantizeRowsAvx512(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out) {
  const int64_t blocks = cols / kQuantBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* block = x + t * cols + b * kQuantBlock;
      const __m512 a = _mm512_loadu_ps(block), c = _mm512_loadu_ps(block + 16);
      const __m512 magnitude = _mm512_max_ps(_mm512_and_ps(a, abs_mask), _mm512_and_ps(c, abs_mask));
      const float amax = _mm512_reduce_max_ps(magnitude);
      const float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
      const __m512 scale = _mm512_set1_ps(inverse);
      __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, scale));
      __m512i qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, scale));
      qa = _mm512_max_epi32(lo, _mm512_min_epi32(hi, qa));
      qc = _mm512_max_epi32(lo, _mm512_min_epi32(hi, qc));
      int8_t* q = out.q + (t * blocks + b) * kQuantBlock;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qa));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qc));
      out.scale[t * blocks + b] = amax / 127.0f;
      out.sum[t * blocks + b] = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc));
    }
  }
}

void QGemmAvx512(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride) {
  if (w.format == QuantFormat::kQ4) {
    QGemmFormat<true>(w, x, tokens, panel_begin, panel_end, y, y_stride);
  } else {
    QGemmFormat<false>(w, x, tokens, panel_begin, panel_end, y, y_stride);
  }
}

}  // namespace bora::kernels
