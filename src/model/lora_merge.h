// Folding a LoRA adapter into a model's dense weights (W <- W + scaling * B A), as
// mistral-finetune's merge_lora.py does, for `bora merge-lora` and merged checkpoints.
#pragma once

#include "base/dtype.h"
#include "formats/model_params.h"
#include "model/lora_adapter.h"
#include "model/weights.h"
#include "ops/compute_context.h"

namespace bora::model {

// Every linear `adapter` touches becomes W + scaling * (B A), computed in f32 from the exact
// upcast of W; then every matrix (embeddings, router and output included) is stored in `dtype`
// (kF32, or kBF16 rounded to nearest even) in memory `weights` owns, and the source mappings are
// released. A progress bar counts the matrices. Throws InvalidArgument for packed (q8/q4)
// weights, another `dtype`, or an adapter that does not match `params`.
void MergeLora(const LoraAdapter& adapter, const formats::ModelParams& params,
               ModelWeights& weights, DType dtype, ops::ComputeContext& ctx);

}  // namespace bora::model
