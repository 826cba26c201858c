// Parallel y = x * W^T over a thread pool.
#include "ops/matmul.h"

#include "kernels/dot.h"

namespace bora::ops {
namespace {

float DotRow(const MatrixView& weight, int64_t row, const float* x) {
  const uint8_t* w = weight.RowBytes(row);
  switch (weight.dtype) {
    case DType::kF32: return kernels::DotF32(reinterpret_cast<const float*>(w), x, weight.cols);
    case DType::kBF16:
      return kernels::DotBf16F32(reinterpret_cast<const uint16_t*>(w), x, weight.cols);
    case DType::kF16:
      return kernels::DotF16F32(reinterpret_cast<const uint16_t*>(w), x, weight.cols);
  }
  return 0.0f;
}

}  // namespace

void MatMul(ThreadPool& pool, const float* x, int64_t tokens, const MatrixView& weight,
            float* y) {
  const int64_t out_features = weight.rows;
  const int64_t in_features = weight.cols;
  // Threads split the output features: each weight row is read once and reused for all tokens.
  pool.ParallelFor(out_features, [&](int64_t begin, int64_t end, int) {
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t t = 0; t < tokens; ++t) {
        y[t * out_features + row] = DotRow(weight, row, x + t * in_features);
      }
    }
  });
}

}  // namespace bora::ops
