// AVX-512 compute-peak probes (compiled with AVX-512 flags; called only after run-time dispatch).
#include <immintrin.h>

#include "kernels/peak.h"

namespace bora::kernels {

PeakResult PeakFmaAvx512(int64_t iterations) {
  constexpr int kChains = 16;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return {2.0 * 16 * kChains * static_cast<double>(iterations), _mm512_reduce_add_ps(sum)};
}

PeakResult PeakVnniAvx512(int64_t iterations) {
  constexpr int kChains = 16;
  __m512i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  return {2.0 * 64 * kChains * static_cast<double>(iterations), static_cast<float>(_mm512_reduce_add_epi32(sum))};
}

}  // namespace bora::kernels
