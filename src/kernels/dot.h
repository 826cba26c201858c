// Dot products of an f32 activation row with a weight row in F32, BF16 or F16 (scalar reference).
#pragma once

#include <cstdint>

namespace bora::kernels {

// sum_i a[i] * b[i], f32 accumulation in 8 independent lanes (a fixed order for any n).
float DotF32(const float* a, const float* b, int64_t n);
// Weight row in bfloat16 upcast exactly to f32 on the fly.
float DotBf16F32(const uint16_t* w, const float* x, int64_t n);
// Weight row in IEEE half upcast exactly to f32 on the fly.
float DotF16F32(const uint16_t* w, const float* x, int64_t n);

// y[i] += alpha * x[i]
void Axpy(float alpha, const float* x, float* y, int64_t n);

}  // namespace bora::kernels
