// Mistral (dense) architecture: the shared decoder stack with a SwiGLU feed-forward block.
#include "model/architectures.h"

#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace bora::model {
namespace {

class MistralModel final : public Transformer {
 public:
  MistralModel(formats::ModelFolder folder, ModelWeights weights, const LoadOptions& options,
               std::unique_ptr<ops::ComputeContext> ctx)
      : Transformer(std::move(folder), std::move(weights), options, std::move(ctx)) {}

 private:
  // block_out = w2(silu(w1 x) * w3 x)
  void FeedForward(int64_t layer, int64_t tokens) override {
    const ExpertWeights& ffn = weights().layers[layer].ffn;
    Activations& a = scratch();
    const std::optional<LoraRows> lora = LoraRowsFor(layer);
    SwiGluFeedForward(ctx(), ffn, a.normed.data(), tokens, a.ffn_gate.data(), a.ffn_up.data(),
                      a.block_out.data(), lora ? &*lora : nullptr);
  }
};

}  // namespace

void SwiGluFeedForward(ops::ComputeContext& ctx, const ExpertWeights& ffn, const float* x,
                       int64_t tokens, float* gate, float* up, float* out, const LoraRows* lora) {
  const int64_t hidden = ffn.w1.rows;
  const MatrixView* gate_up[] = {&ffn.w1, &ffn.w3};
  float* const gate_up_out[] = {gate, up};
  ops::MatMulShared(ctx, x, tokens, gate_up, gate_up_out);
  if (lora != nullptr) {
    AddLoraTerms(ctx, *lora, tokens, LoraTarget::kW1, x, gate);
    AddLoraTerms(ctx, *lora, tokens, LoraTarget::kW3, x, up);
  }
  ops::SwiGlu(ctx, gate, up, gate, tokens * hidden);
  ops::MatMul(ctx, gate, tokens, ffn.w2, out);
  if (lora != nullptr) AddLoraTerms(ctx, *lora, tokens, LoraTarget::kW2, gate, out);
}

std::unique_ptr<Transformer> MakeMistral(formats::ModelFolder folder, ModelWeights weights,
                                         const LoadOptions& options,
                                         std::unique_ptr<ops::ComputeContext> ctx) {
  return std::make_unique<MistralModel>(std::move(folder), std::move(weights), options, std::move(ctx));
}

}  // namespace bora::model
