// AVX2 activation quantizer and packed q8/q4 GEMM (compiled with AVX2/FMA/F16C flags; called
// only after run-time dispatch). Same accumulation order as the scalar reference: bit-identical.
// Only intrinsics and plain loops here: no inline library templates shared with baseline code.
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

// Exact int32 dot of 4 consecutive u8 x s8 pairs per lane (|a*b| sums stay below 2^15).
inline __m256i QuadDot(__m256i unsigned_bytes, __m256i signed_bytes) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(unsigned_bytes, signed_bytes), _mm256_set1_epi16(1));
}

// Rows 8*half .. 8*half+7 of one panel x T tokens over all blocks.
template <int T, bool kQ4>
inline void HalfPanelTile(const uint8_t* quants, const uint16_t* scales, int64_t blocks, const QuantizedRows& x,
                          int64_t t0, int half, float* y, int64_t y_stride, int valid_rows) {
  constexpr int64_t kBlockBytes = kQ4 ? 256 : 512;
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
  const __m256i sign_bit = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = quants + b * kBlockBytes + half * 32;
    const __m256 d_w =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + b * 16 + half * 8)));
    __m256i isum[T];
    const int8_t* xq[T];
    for (int t = 0; t < T; ++t) {
      const int64_t index = (t0 + t) * blocks + b;
      // q4 weights are unsigned with zero point 8; q8 weights become signed (xor 0x80) below.
      isum[t] = kQ4 ? _mm256_set1_epi32(-8 * x.sum[index]) : _mm256_setzero_si256();
      xq[t] = x.q + index * kQuantBlock;
    }
    if constexpr (kQ4) {
      for (int v = 0; v < 4; ++v) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + v * 64));
        const __m256i lo = _mm256_and_si256(raw, low_nibbles);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_nibbles);
        for (int t = 0; t < T; ++t) {
          isum[t] = _mm256_add_epi32(isum[t], QuadDot(lo, _mm256_set1_epi32(Load32(xq[t] + v * 8))));
          isum[t] = _mm256_add_epi32(isum[t], QuadDot(hi, _mm256_set1_epi32(Load32(xq[t] + v * 8 + 4))));
        }
      }
    } else {
      for (int quad = 0; quad < 8; ++quad) {
        const __m256i w =
            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + quad * 64)), sign_bit);
        const __m256i w_abs = _mm256_sign_epi8(w, w);
        for (int t = 0; t < T; ++t) {
          const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(Load32(xq[t] + quad * 4)), w);
          isum[t] = _mm256_add_epi32(isum[t], QuadDot(w_abs, xs));
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(d_w, _mm256_set1_ps(x.scale[(t0 + t) * blocks + b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    float* out = y + t * y_stride + half * 8;
    if (valid_rows >= 8) {
      _mm256_storeu_ps(out, acc[t]);
    } else {
      float lanes[8];
      _mm256_storeu_ps(lanes, acc[t]);
      for (int r = 0; r < valid_rows; ++r) out[r] = lanes[r];
    }
  }
}

template <bool kQ4>
void QGemmFormat(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride) {
  constexpr int64_t kBlockBytes = kQ4 ? 256 : 512;
  constexpr int kTile = 4;
  const int64_t blocks = w.cols / kQuantBlock;
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t valid = w.rows - panel * kPanelRows;
    const uint8_t* quants = w.quants + panel * blocks * kBlockBytes;
    const uint16_t* scales = w.scales + panel * blocks * kPanelRows;
    float* out = y + panel * kPanelRows;
    for (int half = 0; half < 2; ++half) {
      const int64_t valid_half = valid - half * 8;
      if (valid_half <= 0) break;
      const int rows = valid_half >= 8 ? 8 : static_cast<int>(valid_half);
      int64_t t = 0;
      for (; t + kTile <= tokens; t += kTile) {
        HalfPanelTile<kTile, kQ4>(quants, scales, blocks, x, t, half, out + t * y_stride, y_stride, rows);
      }
      switch (tokens - t) {
        case 3: HalfPanelTile<3, kQ4>(quants, scales, blocks, x, t, half, out + t * y_stride, y_stride, rows); break;
        case 2: HalfPanelTile<2, kQ4>(quants, scales, blocks, x, t, half, out + t * y_stride, y_stride, rows); break;
        case 1: HalfPanelTile<1, kQ4>(quants, scales, blocks, x, t, half, out + t * y_stride, y_stride, rows); break;
        default: break;
      }
    }
  }
}

}  // namespace

void QuantizeRowsAvx2(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out) {
  const int64_t blocks = cols / kQuantBlock;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* block = x + t * cols + b * kQuantBlock;
      __m256 v[4];
      __m256 magnitude = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(block + 8 * i);
        magnitude = _mm256_max_ps(magnitude, _mm256_and_ps(v[i], abs_mask));
      }
      float lanes[8];
      _mm256_storeu_ps(lanes, magnitude);
      float amax = 0.0f;
      for (float lane : lanes) amax = lane > amax ? lane : amax;
      const float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
      const __m256 scale = _mm256_set1_ps(inverse);
      __m256i sum = _mm256_setzero_si256();
      int32_t values[32];
      for (int i = 0; i < 4; ++i) {
        __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], scale));
        q = _mm256_max_epi32(lo, _mm256_min_epi32(hi, q));
        sum = _mm256_add_epi32(sum, q);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(values + 8 * i), q);
      }
      int8_t* q = out.q + (t * blocks + b) * kQuantBlock;
      for (int i = 0; i < 32; ++i) q[i] = static_cast<int8_t>(values[i]);
      int32_t sums[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), sum);
      int32_t total = 0;
      for (int32_t s : sums) total += s;
      out.scale[t * blocks + b] = amax / 127.0f;
      out.sum[t * blocks + b] = total;
    }
  }
}

void QGemmAvx2(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
               int64_t panel_end, float* y, int64_t y_stride) {
  if (w.format == QuantFormat::kQ4) {
    QGemmFormat<true>(w, x, tokens, panel_begin, panel_end, y, y_stride);
  } else {
    QGemmFormat<false>(w, x, tokens, panel_begin, panel_end, y, y_stride);
  }
}

}  // namespace bora::kernels
