// Constructors of the concrete architectures and the feed-forward block they share.
#pragma once

#include <memory>

#include "ops/compute_context.h"
#include "model/transformer.h"

namespace bora::model {

// Dense Mistral: SwiGLU feed-forward.
std::unique_ptr<Transformer> MakeMistral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options,
                                         std::unique_ptr<ops::ComputeContext> ctx);
// Mixtral: sparse mixture of SwiGLU experts, top-k routing.
std::unique_ptr<Transformer> MakeMixtral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options,
                                         std::unique_ptr<ops::ComputeContext> ctx);

// out = w2(silu(w1 x) * w3 x) for `tokens` rows. x: [tokens, dim]; gate/up: [tokens, hidden]
// scratch (gate is overwritten with the activation); out: [tokens, dim]. With `lora`, each
// row's adapter adds its low-rank terms to w1, w3 and w2.
void SwiGluFeedForward(ops::ComputeContext& ctx, const ExpertWeights& ffn, const float* x,
                       int64_t tokens, float* gate, float* up, float* out,
                       const LoraRows* lora = nullptr);

}  // namespace bora::model
