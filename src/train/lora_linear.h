// One linear layer with a frozen weight and a trainable LoRA adapter:
// y = x W^T + scaling * (dropout(x) A^T) B^T, its backward into x, A and B.
#pragma once

#include <cstdint>
#include <vector>

#include "model/lora_adapter.h"
#include "ops/compute_context.h"
#include "ops/gemm.h"
#include "tensor/matrix_view.h"

namespace bora::train {

struct LoraSettings {
  float scaling = 2.0f;
  float dropout = 0.0f;  // probability of zeroing an input of the low-rank path
  // The frozen product's precision (kBf16: bf16 activations against bf16/q8/q4 weights).
  ops::GemmPrecision precision = ops::GemmPrecision::kF32;
};

// What the backward needs from the forward besides x: us = scaling * dropout(x) A^T [rows, rank].
struct LoraSaved {
  std::vector<float> us;
};

// y [rows, out] = x [rows, in] W^T (+ the low-rank term when `lora` is non-null and non-empty).
// `dropout_key` identifies this linear in this step: the dropout mask is a pure function of it,
// so the backward regenerates the same mask instead of storing it.
void LoraLinearForward(ops::ComputeContext& ctx, const float* x, int64_t rows, const MatrixView& w,
                       const model::LoraMatrix* lora, const LoraSettings& settings,
                       uint64_t dropout_key, float* y, LoraSaved* saved);

// dx [rows, in] += dy W + the low-rank path's input gradient; grad->a and grad->b += the
// adapter's gradients (grad has the adapter's shapes).
void LoraLinearBackward(ops::ComputeContext& ctx, const float* x, int64_t rows, const MatrixView& w,
                        const model::LoraMatrix* lora, const LoraSettings& settings,
                        uint64_t dropout_key, const LoraSaved& saved, const float* dy, float* dx,
                        model::LoraMatrix* grad);

}  // namespace bora::train
