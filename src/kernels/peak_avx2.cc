// AVX2 compute-peak probes (compiled with AVX2 flags; called only after run-time dispatch).
#include <immintrin.h>

#include "kernels/peak.h"

namespace bora::kernels {

PeakResult PeakFmaAvx2(int64_t iterations) {
  constexpr int kChains = 12;  // enough independent chains to cover FMA latency on two pipes
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  return {2.0 * 8 * kChains * static_cast<double>(iterations), _mm256_cvtss_f32(sum)};
}

PeakResult PeakInt8Avx2(int64_t iterations) {
  constexpr int kChains = 8;
  __m256i acc[kChains], a[kChains];
  for (int i = 0; i < kChains; ++i) {
    acc[i] = _mm256_set1_epi32(i);
    a[i] = _mm256_set1_epi8(static_cast<char>(i + 1));
  }
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i b = _mm256_set1_epi8(-2);
  for (int64_t it = 0; it < iterations; ++it) {
    b = _mm256_xor_si256(b, ones);  // changes every round: nothing is loop-invariant
    for (int i = 0; i < kChains; ++i) {
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a[i], b), ones));
    }
  }
  __m256i sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_epi32(sum, acc[i]);
  return {2.0 * 32 * kChains * static_cast<double>(iterations), static_cast<float>(_mm256_extract_epi32(sum, 0))};
}

}  // namespace bora::kernels
