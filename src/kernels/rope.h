// Rotary position embedding on interleaved pairs (2i, 2i+1) of each head (Mistral-native layout).
#pragma once

#include <cstdint>

namespace bora::kernels {

// x: [n_heads, head_dim] f32, rotated in place; cos_sin: [head_dim/2][2] (cos, sin) for the
// token's position. Pair i of every head rotates by the same angle.
void RopeInterleaved(float* x, const float* cos_sin, int64_t n_heads, int64_t head_dim);

}  // namespace bora::kernels
