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

kernels::PackedMatrixRef PackedRef(const MatrixView& weight) {
  return {weight.dtype == DType::kQ4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8,
          static_cast<const uint8_t*>(weight.data), weight.scales, weight.rows, weight.cols};
}

int64_t PanelsOf(const MatrixView& weight) { return (weight.rows + kernels::kPanelRows - 1) / kernels::kPanelRows; }

// Quantizes x once into the context's scratch (in parallel for long prompts).
kernels::QuantizedRows QuantizeActivations(ComputeContext& ctx, const float* x, int64_t tokens, int64_t cols) {
  const kernels::KernelSet& k = ctx.kernels();
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
  return q;
}

void PackedMatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y) {
  const kernels::KernelSet& k = ctx.kernels();
  const kernels::PackedMatrixRef w = PackedRef(weight);
  const kernels::QuantizedRows q = QuantizeActivations(ctx, x, tokens, weight.cols);
  ctx.pool().ParallelFor(PanelsOf(weight), [&](int64_t begin, int64_t end, int) {
    k.qgemm(w, q, tokens, begin, end, y, weight.rows);
  });
}

}  // namespace

void MatMulShared(ComputeContext& ctx, const float* x, int64_t tokens, std::span<const MatrixView* const> weights,
                  std::span<float* const> outputs) {
  constexpr size_t kMax = 4;
  bool all_packed = weights.size() <= kMax;
  for (const MatrixView* w : weights) all_packed = all_packed && w->packed() && w->cols == weights[0]->cols;
  if (!all_packed) {
    for (size_t i = 0; i < weights.size(); ++i) MatMul(ctx, x, tokens, *weights[i], outputs[i]);
    return;
  }
  const kernels::KernelSet& k = ctx.kernels();
  const kernels::QuantizedRows q = QuantizeActivations(ctx, x, tokens, weights[0]->cols);
  // One range of panels over the concatenation of the matrices.
  int64_t first_panel[kMax + 1] = {0};
  kernels::PackedMatrixRef refs[kMax];
  for (size_t i = 0; i < weights.size(); ++i) {
    refs[i] = PackedRef(*weights[i]);
    first_panel[i + 1] = first_panel[i] + PanelsOf(*weights[i]);
  }
  const size_t count = weights.size();
  ctx.pool().ParallelFor(first_panel[count], [&](int64_t begin, int64_t end, int) {
    for (size_t i = 0; i < count; ++i) {
      const int64_t lo = std::max(begin, first_panel[i]), hi = std::min(end, first_panel[i + 1]);
      if (lo < hi) k.qgemm(refs[i], q, tokens, lo - first_panel[i], hi - first_panel[i], outputs[i], refs[i].rows);
    }
  });
}

void MatMul(ComputeContext& ctx, const float* x, int64_t tokens, const MatrixView& weight, float* y) {
  if (weight.packed()) {
    PackedMatMul(ctx, x, tokens, weight, y);
  } else {
    DenseMatMul(ctx, x, tokens, weight, y);
  }
}

}  // namespace bora::ops
