// Parallel y = x * W^T over the compute context's threads for every weight format (the
// nn.Linear convention): dense F32/BF16/F16 weights with f32 activations (exact upcast), or
// packed q8/q4 weights with int8-quantized activations.
#pragma once

#include <cstdint>
#include <span>

#include "ops/compute_context.h"
#include "tensor/matrix_view.h"

namespace bora::ops {

// x: [tokens, W.cols] f32 row-major; y: [tokens, W.rows] f32. y must not alias x.
// Every y element is computed by one fixed sequence of operations that depends only on its
// weight row and its own x row: not on `tokens`, the thread count or the row's batch-mates
// (batch invariance).
void MatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y);

// y_i = x * W_i^T for up to 4 matrices that read the same x (q/k/v, gate/up): the activations
// are quantized once and one fork-join covers all of them. Results equal separate MatMul calls.
void MatMulShared(ComputeContext& ctx, const float* x, int64_t tokens, std::span<const MatrixView* const> weights,
                  std::span<float* const> outputs);

}  // namespace bora::ops
