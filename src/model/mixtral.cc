// Mixtral architecture: the shared decoder stack with a sparse mixture-of-experts block
// (top-k on the router logits, softmax over the k selected, weighted sum of expert FFNs).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/architectures.h"
#include "model/moe_routing.h"
#include "ops/matmul.h"

namespace bora::model {
namespace {

class MixtralModel final : public Transformer {
 public:
  MixtralModel(formats::ModelFolder folder, ModelWeights weights, const LoadOptions& options,
               std::unique_ptr<ops::ComputeContext> ctx)
      : Transformer(std::move(folder), std::move(weights), options, std::move(ctx)) {}

 private:
  void FeedForward(int64_t layer, int64_t tokens) override {
    const formats::ModelParams& p = params();
    const LayerWeights& w = weights().layers[layer];
    Activations& a = scratch();
    const int64_t experts = p.moe->num_experts;
    const int64_t top_k = p.moe->num_experts_per_tok;
    ops::MatMul(ctx(), a.normed.data(), tokens, w.gate, a.router.data());
    for (int64_t t = 0; t < tokens; ++t) {
      RouteTopK(a.router.data() + t * experts, experts, top_k, a.chosen.data() + t * top_k,
                 a.chosen_weight.data() + t * top_k);
    }
    std::fill(a.block_out.begin(), a.block_out.begin() + tokens * p.dim, 0.0f);
    // Experts in index order, each over the tokens routed to it (mistral-inference's order of
    // accumulation), so every token's sum is independent of the batch it came in.
    for (int64_t e = 0; e < experts; ++e) {
      int64_t rows = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t slot = 0; slot < top_k; ++slot) {
          if (a.chosen[t * top_k + slot] != e) continue;
          a.expert_rows[rows] = static_cast<int32_t>(t);
          a.expert_weight[rows] = a.chosen_weight[t * top_k + slot];
          if (a.lora) a.expert_row_lora[rows] = a.row_lora[t];
          std::memcpy(a.expert_in.data() + rows * p.dim, a.normed.data() + t * p.dim, sizeof(float) * p.dim);
          ++rows;
        }
      }
      if (rows == 0) continue;
      // Each gathered row keeps its sequence's adapter: the expert's low-rank terms apply only
      // to the tokens routed to it.
      const std::optional<LoraRows> lora = LoraRowsFor(layer, e);
      SwiGluFeedForward(ctx(), w.experts[e], a.expert_in.data(), rows, a.ffn_gate.data(),
                        a.ffn_up.data(), a.expert_out.data(), lora ? &*lora : nullptr);
      for (int64_t r = 0; r < rows; ++r) {
        float* target = a.block_out.data() + a.expert_rows[r] * p.dim;
        const float* source = a.expert_out.data() + r * p.dim;
        const float weight = a.expert_weight[r];
        for (int64_t i = 0; i < p.dim; ++i) target[i] += weight * source[i];
      }
    }
  }
};

}  // namespace

std::unique_ptr<Transformer> MakeMixtral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options,
                                         std::unique_ptr<ops::ComputeContext> ctx) {
  return std::make_unique<MixtralModel>(std::move(folder), std::move(weights), options, std::move(ctx));
}

}  // namespace bora::model
