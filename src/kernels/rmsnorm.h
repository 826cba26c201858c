// RMSNorm of one row: out = x * rsqrt(mean(x^2) + eps) * weight, in f32 (Mistral's RMSNorm).
#pragma once

#include <cstdint>

namespace bora::kernels {

// `out` may alias `x`. The mean of squares is accumulated in double and rounded once.
void RmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps);

}  // namespace bora::kernels
