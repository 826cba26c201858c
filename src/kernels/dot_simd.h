// AVX2 and AVX-512 versions of the f32-compute dot products and axpy of kernels/dot.h (exact
// upcast of BF16/F16 weights, f32 FMA accumulation). Their sums are reordered relative to the
// scalar reference (16 or 32 lanes, fused multiply-add), so they agree with it to rounding, not
// bit for bit; each is deterministic for a given ISA.
#pragma once

#include <cstdint>

namespace bora::kernels {

float DotF32Avx2(const float* a, const float* b, int64_t n);
float DotBf16F32Avx2(const uint16_t* w, const float* x, int64_t n);
float DotF16F32Avx2(const uint16_t* w, const float* x, int64_t n);
void AxpyAvx2(float alpha, const float* x, float* y, int64_t n);

float DotF32Avx512(const float* a, const float* b, int64_t n);
float DotBf16F32Avx512(const uint16_t* w, const float* x, int64_t n);
float DotF16F32Avx512(const uint16_t* w, const float* x, int64_t n);
void AxpyAvx512(float alpha, const float* x, float* y, int64_t n);

}  // namespace bora::kernels
