// Parallel y = x * W^T over the compute context's threads for every weight format (the
// nn.Linear convention): dense F32/BF16/F16 weights with f32 activations (exact upcast), or
// packed q8/q4 weights with int8-quantized activations.
#pragma once

#include <cstdint>

#include "ops/compute_context.h"
#include "tensor/matrix_view.h"

namespace bora::ops {

// x: [tokens, W.cols] f32 row-major; y: [tokens, W.rows] f32. y must not alias x.
// Every y element is computed by one fixed sequence of operations that depends only on its
// weight row and its own x row: not on `tokens`, the thread count or the row's batch-mates
// (batch invariance).
void MatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y);

}  // namespace bora::ops
