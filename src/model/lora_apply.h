// The low-rank terms of LoRA adapters in the forward pass: y[t] += scaling * B (A x[t]) for each
// row t whose sequence has an adapter, grouped into runs of rows that share one.
#pragma once

#include <cstdint>

#include "model/lora_adapter.h"
#include "ops/compute_context.h"

namespace bora::model {

// The adapters of a forward call's activation rows and the scratch their terms use.
struct LoraRows {
  const LoraAdapter* const* adapter = nullptr;  // [rows] each row's adapter, null for none
  float* mid = nullptr;  // [rows, largest rank] scratch for A x (grown by the caller)
  int64_t layer = 0;
  int64_t expert = -1;  // the MoE expert whose w1/w2/w3 run (-1: attention or a dense FFN)
};

// y[t, :out] += scaling * B (A x[t, :in]) for t < rows, with the adapter's matrix of `target`
// in rows.layer (and rows.expert); x: [rows, in], y: [rows, out] row-major. Rows without an
// adapter, or whose adapter leaves `target` out, are untouched. Each element is one fixed
// sequence of dot products over its own row (batch-invariant); never allocates.
void AddLoraTerms(ops::ComputeContext& ctx, const LoraRows& rows, int64_t count, LoraTarget target,
                  const float* x, float* y);

}  // namespace bora::model
