// Element-wise activations: SwiGLU and a numerically safe softmax (scalar reference).
#pragma once

#include <cstdint>

namespace bora::kernels {

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); `out` may alias `gate`.
void SwiGlu(const float* gate, const float* up, float* out, int64_t n);

// In-place softmax of x[0..n) with max subtraction; n >= 1.
void Softmax(float* x, int64_t n);

// Index of the largest value (first one on ties); NaN counts as smaller than everything.
int64_t ArgMax(const float* x, int64_t n);

}  // namespace bora::kernels
