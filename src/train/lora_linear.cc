// LoRA linear forward/backward on top of the frozen-weight GEMMs.
#include "train/lora_linear.h"

#include "base/random.h"
#include "ops/gemm.h"
#include "ops/matmul.h"

namespace bora::train {
namespace {

bool Active(const model::LoraMatrix* lora) { return lora != nullptr && !lora->empty(); }

// Whether element i survives dropout p: a pure function of (key, i), Bernoulli(1 - p).
bool Kept(uint64_t key, int64_t i, float p) {
  uint64_t state = key ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
  return static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53 >= p;
}

// dropout(x) = x * kept / (1 - p).
std::vector<float> DropoutInput(const float* x, int64_t count, float p, uint64_t key) {
  std::vector<float> out(x, x + count);
  const float factor = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < count; ++i) out[i] = Kept(key, i, p) ? out[i] * factor : 0.0f;
  return out;
}

// Frozen y = x W^T: packed q8/q4 weights go through the int8 inference kernels (what serving
// computes), dense ones through the f32 GEMM.
void FrozenForward(ops::ComputeContext& ctx, const float* x, int64_t rows, const MatrixView& w,
                   float* y, ops::GemmPrecision precision) {
  if (w.packed()) {
    ops::MatMul(ctx, x, rows, w, y);
  } else {
    ops::WeightGemm(ctx, x, rows, w.cols, w, false, y, w.rows, false, precision);
  }
}

}  // namespace

void LoraLinearForward(ops::ComputeContext& ctx, const float* x, int64_t rows, const MatrixView& w,
                       const model::LoraMatrix* lora, const LoraSettings& settings,
                       uint64_t dropout_key, float* y, LoraSaved* saved) {
  FrozenForward(ctx, x, rows, w, y, settings.precision);
  if (!Active(lora)) return;
  const int64_t rank = lora->rank, in = lora->in, out = lora->out;
  std::vector<float> dropped;
  const float* input = x;
  if (settings.dropout > 0.0f) {
    dropped = DropoutInput(x, rows * in, settings.dropout, dropout_key);
    input = dropped.data();
  }
  saved->us.assign(static_cast<size_t>(rows * rank), 0.0f);
  // us = input A^T: B operand (p = i, j = r) = A[r, i].
  ops::Gemm(ctx, rows, rank, in, ops::StridedMatrix{input, in, 1},
            ops::StridedMatrix{lora->a.data(), 1, in}, saved->us.data(), rank, false);
  for (float& value : saved->us) value *= settings.scaling;
  // y += us B^T: B operand (p = r, j = o) = B[o, r].
  ops::Gemm(ctx, rows, out, rank, ops::StridedMatrix{saved->us.data(), rank, 1},
            ops::StridedMatrix{lora->b.data(), 1, rank}, y, out, true);
}

void LoraLinearBackward(ops::ComputeContext& ctx, const float* x, int64_t rows, const MatrixView& w,
                        const model::LoraMatrix* lora, const LoraSettings& settings,
                        uint64_t dropout_key, const LoraSaved& saved, const float* dy, float* dx,
                        model::LoraMatrix* grad) {
  ops::WeightGemm(ctx, dy, rows, w.rows, w, true, dx, w.cols, true, settings.precision);
  if (!Active(lora)) return;
  const int64_t rank = lora->rank, in = lora->in, out = lora->out;
  // dB[o, r] += sum_t dy[t, o] us[t, r]
  ops::Gemm(ctx, out, rank, rows, ops::StridedMatrix{dy, 1, out},
            ops::StridedMatrix{saved.us.data(), rank, 1}, grad->b.data(), rank, true);
  // du[t, r] = scaling * (dy B)[t, r]
  std::vector<float> du(static_cast<size_t>(rows * rank));
  ops::Gemm(ctx, rows, rank, out, ops::StridedMatrix{dy, out, 1},
            ops::StridedMatrix{lora->b.data(), rank, 1}, du.data(), rank, false);
  for (float& value : du) value *= settings.scaling;
  std::vector<float> dropped;
  const float* input = x;
  if (settings.dropout > 0.0f) {
    dropped = DropoutInput(x, rows * in, settings.dropout, dropout_key);
    input = dropped.data();
  }
  // dA[r, i] += sum_t du[t, r] input[t, i]
  ops::Gemm(ctx, rank, in, rows, ops::StridedMatrix{du.data(), 1, rank},
            ops::StridedMatrix{input, in, 1}, grad->a.data(), in, true);
  // d input = du A; through the dropout mask into dx.
  if (settings.dropout <= 0.0f) {
    ops::Gemm(ctx, rows, in, rank, ops::StridedMatrix{du.data(), rank, 1},
              ops::StridedMatrix{lora->a.data(), in, 1}, dx, in, true);
    return;
  }
  std::vector<float> d_input(static_cast<size_t>(rows * in));
  ops::Gemm(ctx, rows, in, rank, ops::StridedMatrix{du.data(), rank, 1},
            ops::StridedMatrix{lora->a.data(), in, 1}, d_input.data(), in, false);
  const float factor = 1.0f / (1.0f - settings.dropout);
  for (int64_t i = 0; i < rows * in; ++i) {
    if (Kept(dropout_key, i, settings.dropout)) dx[i] += d_input[i] * factor;
  }
}

}  // namespace bora::train
