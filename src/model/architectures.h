// Constructors of the concrete architectures and the feed-forward block they share.
#pragma once

#include <memory>

#include "base/thread_pool.h"
#include "model/transformer.h"

namespace bora::model {

// Dense Mistral: SwiGLU feed-forward.
std::unique_ptr<Transformer> MakeMistral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options);
// Mixtral: sparse mixture of SwiGLU experts, top-k routing.
std::unique_ptr<Transformer> MakeMixtral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options);

// out = w2(silu(w1 x) * w3 x) for `tokens` rows. x: [tokens, dim]; gate/up: [tokens, hidden]
// scratch (gate is overwritten with the activation); out: [tokens, dim].
void SwiGluFeedForward(ThreadPool& pool, const ExpertWeights& ffn, const float* x, int64_t tokens,
                       float* gate, float* up, float* out);

}  // namespace bora::model
