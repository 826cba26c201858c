// AVX2/FMA/F16C dot products with exact 16-bit weight upcast (compiled with AVX2 flags; called
// only after run-time dispatch). Four 8-lane accumulators, then a fixed reduction tree.
#include <immintrin.h>

#include <cstring>

#include "kernels/dot_simd.h"

namespace bora::kernels {
namespace {

// Local scalar tails: this file must not emit AVX copies of inline functions that baseline code
// also uses (the linker could keep either copy).
inline float Bf16Tail(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}
inline float F16Tail(uint16_t bits) { return _cvtsh_ss(bits); }

inline __m256 LoadBf16(const uint16_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
inline __m256 LoadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 LoadF32(const float* p) { return _mm256_loadu_ps(p); }

inline float Reduce(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 sum = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
  __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  return _mm_cvtss_f32(half);
}

template <typename W, typename Load, typename Scalar>
inline float Dot(const W* w, const float* x, int64_t n, Load load, Scalar scalar) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(load(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(load(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(load(w + i + 16), _mm256_loadu_ps(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(load(w + i + 24), _mm256_loadu_ps(x + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load(w + i), _mm256_loadu_ps(x + i), acc0);
  float result = Reduce(acc0, acc1, acc2, acc3);
  for (; i < n; ++i) result += scalar(w[i]) * x[i];
  return result;
}

}  // namespace

float DotF32Avx2(const float* a, const float* b, int64_t n) {
  return Dot(a, b, n, LoadF32, [](float v) { return v; });
}
float DotBf16F32Avx2(const uint16_t* w, const float* x, int64_t n) {
  return Dot(w, x, n, LoadBf16, Bf16Tail);
}
float DotF16F32Avx2(const uint16_t* w, const float* x, int64_t n) {
  return Dot(w, x, n, LoadF16, F16Tail);
}

void AxpyAvx2(float alpha, const float* x, float* y, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace bora::kernels
