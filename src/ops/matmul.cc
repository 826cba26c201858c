// Parallel y = x * W^T: dense dot products or the packed int8 GEMM.
#include "ops/matmul.h"

#include <algorithm>

#include "kernels/quant/qgemm.h"

namespace bora::ops {
namespace {

// Tokens per tile of the dense path: a tile of activations stays in L2 while the rows stream.
constexpr int64_t kDenseTokenTile = 16;

void DenseMatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y) {
  const kernels::KernelSet& k = ctx.kernels();
  const int64_t out_features = weight.rows;
  const int64_t in_features = weight.cols;
  // Threads split the output features: each weight row is read once per token tile.
  ctx.pool().ParallelFor(out_features, [&](int64_t begin, int64_t end, int) {
    for (int64_t t0 = 0; t0 < tokens; t0 += kDenseTokenTile) {
      const int64_t t1 = std::min(tokens, t0 + kDenseTokenTile);
      for (int64_t row = begin; row < end; ++row) {
        const uint8_t* w = weight.RowBytes(row);
        for (int64_t t = t0; t < t1; ++t) {
          const float* xt = x + t * in_features;
          float value = 0.0f;
          switch (weight.dtype) {
            case DType::kF32: value = k.dot_f32(reinterpret_cast<const float*>(w), xt, in_features); break;
            case DType::kBF16: value = k.dot_bf16(reinterpret_cast<const uint16_t*>(w), xt, in_features); break;
            case DType::kF16: value = k.dot_f16(reinterpret_cast<const uint16_t*>(w), xt, in_features); break;
            default: break;
          }
          y[t * out_features + row] = value;
        }
      }
    }
  });
}

void PackedMatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y) {
  const kernels::KernelSet& k = ctx.kernels();
  const int64_t cols = weight.cols;
  const kernels::PackedMatrixRef w{weight.dtype == DType::kQ4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8,
                                   static_cast<const uint8_t*>(weight.data), weight.scales, weight.rows, cols};
  const kernels::QuantizedRows q =
      kernels::CarveQuantizedRows(ctx.Scratch(kernels::QuantizedRowsBytes(tokens, cols)), tokens, cols);
  // Activations are quantized once per call (not per weight row).
  auto quantize = [&](int64_t begin, int64_t end, int) {
    kernels::QuantizedRows part = q;
    part.q += begin * cols;
    part.scale += begin * q.blocks;
    part.sum += begin * q.blocks;
    k.quantize_rows(x + begin * cols, end - begin, cols, part);
  };
  if (tokens < 8) {
    quantize(0, tokens, 0);  // not worth a fork-join
  } else {
    ctx.pool().ParallelFor(tokens, quantize);
  }
  const int64_t panels = (weight.rows + kernels::kPanelRows - 1) / kernels::kPanelRows;
  ctx.pool().ParallelFor(panels, [&](int64_t begin, int64_t end, int) {
    k.qgemm(w, q, tokens, begin, end, y, weight.rows);
  });
}

}  // namespace

void MatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y) {
  if (weight.packed()) {
    PackedMatMul(ctx, x, tokens, weight, y);
  } else {
    DenseMatMul(ctx, x, tokens, weight, y);
  }
}

}  // namespace bora::ops
