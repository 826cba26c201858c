// Parallel y = x * W^T over a thread pool for any weight dtype (the nn.Linear convention).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "tensor/matrix_view.h"

namespace bora::ops {

// x: [tokens, W.cols] f32 row-major; y: [tokens, W.rows] f32. y must not alias x.
// Every y element is one kernel dot product, so its value does not depend on `tokens` or on
// the number of threads (batch invariance).
void MatMul(ThreadPool& pool, const float* x, int64_t tokens, const MatrixView& weight, float* y);

}  // namespace bora::ops
