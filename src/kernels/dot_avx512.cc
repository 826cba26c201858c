// AVX-512 dot products with exact 16-bit weight upcast (compiled with AVX-512 flags; called only
// after run-time dispatch). Four 16-lane accumulators, then a fixed reduction tree.
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

inline __m512 LoadBf16(const uint16_t* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
inline __m512 LoadF16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 LoadF32(const float* p) { return _mm512_loadu_ps(p); }

template <typename W, typename Load, typename Scalar>
inline float Dot(const W* w, const float* x, int64_t n, Load load, Scalar scalar) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
         acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(load(w + i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load(w + i + 16), _mm512_loadu_ps(x + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(load(w + i + 32), _mm512_loadu_ps(x + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(load(w + i + 48), _mm512_loadu_ps(x + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(load(w + i), _mm512_loadu_ps(x + i), acc0);
  float result = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  for (; i < n; ++i) result += scalar(w[i]) * x[i];
  return result;
}

}  // namespace

float DotF32Avx512(const float* a, const float* b, int64_t n) {
  return Dot(a, b, n, LoadF32, [](float v) { return v; });
}
float DotBf16F32Avx512(const uint16_t* w, const float* x, int64_t n) {
  return Dot(w, x, n, LoadBf16, Bf16Tail);
}
float DotF16F32Avx512(const uint16_t* w, const float* x, int64_t n) {
  return Dot(w, x, n, LoadF16, F16Tail);
}

void AxpyAvx512(float alpha, const float* x, float* y, int64_t n) {
  const __m512 a = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace bora::kernels
