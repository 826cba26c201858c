// A LoRA adapter in memory (f32 A/B per linear), its mistral-finetune and PEFT file layouts,
// and merging into a model's weights: y = W x + scaling * B (A x).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "formats/model_params.h"

namespace bora::model {

// One adapted linear W [out, in]: A [rank, in] and B [out, rank], row-major f32. Empty (both
// vectors empty) when the adapter does not touch this linear.
struct LoraMatrix {
  int64_t rank = 0;
  int64_t in = 0;
  int64_t out = 0;
  std::vector<float> a;  // [rank, in]
  std::vector<float> b;  // [out, rank]
  bool empty() const { return a.empty(); }
};

// The seven adapted linears of a dense feed-forward or of one MoE expert.
struct LoraExpert {
  LoraMatrix w1;  // gate [hidden_dim, dim]
  LoraMatrix w2;  // down [dim, hidden_dim]
  LoraMatrix w3;  // up   [hidden_dim, dim]
};

struct LoraLayer {
  LoraMatrix wq, wk, wv, wo;        // attention, Mistral-native (interleaved-pair RoPE) row order
  LoraExpert ffn;                   // dense models
  std::vector<LoraExpert> experts;  // MoE models: one per expert (the router is never adapted)
};

struct LoraAdapter {
  int64_t rank = 0;
  float scaling = 2.0f;  // the fixed multiplier (mistral-finetune); PEFT files: lora_alpha / r
  float dropout = 0.0f;  // training only
  // Instruct version the adapter was trained with ("v3"), empty when unknown; serving uses it.
  std::string instruct_version;
  std::vector<LoraLayer> layers;
  // Content hash of rank, scaling and every A/B value (LoraFingerprint): keys the KV prefix
  // cache, since an adapter changes keys and values. Set by LoadLoraAdapter; 0 = unknown (the
  // serving engine then shares no cached KV for this adapter's sequences).
  uint64_t fingerprint = 0;

  // Calls visit(LoraMatrix&, const std::string& mistral_name) for every non-empty matrix, e.g.
  // "layers.0.attention.wq" or "layers.1.feed_forward.experts.3.w2".
  template <typename Visit>
  void ForEachMatrix(Visit&& visit);
  // The same with visit(const LoraMatrix&, const std::string&).
  template <typename Visit>
  void ForEachMatrix(Visit&& visit) const;
};

// The seven adapted linears of a block, and where each sits in a LoraLayer.
enum class LoraTarget { kWq, kWk, kWv, kWo, kW1, kW2, kW3 };
constexpr int kLoraTargets = 7;
// "wq", "wk", "wv", "wo", "w1", "w2", "w3".
const char* LoraTargetName(LoraTarget target);
// {in, out} of the base linear `target` (w1/w2/w3: one expert's for MoE models).
std::pair<int64_t, int64_t> LoraTargetShape(const formats::ModelParams& base, LoraTarget target);
// The matrix of `target` in `layer`; `expert` >= 0 picks an MoE expert's w1/w2/w3 (and is
// ignored for attention). Null when the layer has no such expert.
const LoraMatrix* FindLoraMatrix(const LoraLayer& layer, int64_t expert, LoraTarget target);
LoraMatrix* FindLoraMatrix(LoraLayer& layer, int64_t expert, LoraTarget target);

// Largest rank accepted from adapter files and by the forward pass.
constexpr int64_t kMaxLoraRank = 4096;
// params.json key (besides mistral-finetune's `lora` block) naming the instruct version the
// adapter was trained with, e.g. "v3"; written by SaveLoraAdapter, optional when loading.
inline constexpr char kLoraInstructVersionKey[] = "instruct_version";

// An adapter of `rank` for every linear of `params` (wq wk wv wo w1 w2 w3, each expert), A and
// B zero-filled; the caller initialises them.
LoraAdapter NewLoraAdapter(const formats::ModelParams& params, int64_t rank, float scaling);

// Checks `adapter` against the base model: one layer per model layer, experts only (and all of
// them) for MoE models, every non-empty matrix [rank, in] / [out, rank] with the base linear's
// in/out and the adapter's rank (1..kMaxLoraRank), finite scaling. Throws InvalidArgument
// naming the first offending matrix.
void ValidateLoraAdapter(const LoraAdapter& adapter, const formats::ModelParams& base);

// The allocation-free form of ValidateLoraAdapter's shape checks, for the forward pass.
bool LoraMatchesModel(const LoraAdapter& adapter, const formats::ModelParams& base);

// Content hash of the adapter (never 0): equal for equal rank, scaling and A/B values.
uint64_t LoraFingerprint(const LoraAdapter& adapter);

// Loads an adapter folder for `base`, with the fingerprint set:
//  - mistral-finetune: `lora.safetensors` (keys "layers.N.attention.wq.lora_A.weight" [r, in],
//    "....lora_B.weight" [out, r], MoE "layers.N.feed_forward.experts.E.w1.lora_A.weight";
//    BF16/F16/F32) and an optional `params.json` whose `lora` block gives rank and scaling
//    (2.0 without one) and whose kLoraInstructVersionKey gives the instruct version. A
//    checkpoint folder holding `consolidated/lora.safetensors` is accepted too.
//  - PEFT: `adapter_config.json` (r, lora_alpha: scaling = alpha / r, or alpha / sqrt(r) with
//    use_rslora; target_modules) + `adapter_model.safetensors` with Hugging Face names; the
//    lora_B rows of q_proj/k_proj are un-permuted from HF's half-split RoPE order.
// Throws IoError (missing files), FormatError (unknown keys, shapes, ranks, incomplete A/B
// pairs, layers missing a matrix the others have, non-finite values, a params.json for another
// base) or Unsupported (adapter_model.bin, DoRA, biases, modules_to_save...) naming the file
// and key; never aborts on bad input.
LoraAdapter LoadLoraAdapter(const std::string& dir, const formats::ModelParams& base);

// Writes mistral-finetune's consolidated layout into `dir` (created if missing):
// `lora.safetensors` (every non-empty matrix as "<name>.lora_A.weight" / "<name>.lora_B.weight",
// BF16), `params.json` (the base params plus `lora` {enable: true, rank, dropout, scaling} and,
// when known, kLoraInstructVersionKey) and a copy of `tokenizer_file` (skipped when empty).
// Files appear complete or not at all. Throws InvalidArgument for an adapter that does not
// match `base` or holds non-finite values, IoError when writing fails.
void SaveLoraAdapter(const LoraAdapter& adapter, const formats::ModelParams& base,
                     const std::string& dir, const std::string& tokenizer_file);

template <typename Visit>
void LoraAdapter::ForEachMatrix(Visit&& visit) {
  for (size_t i = 0; i < layers.size(); ++i) {
    LoraLayer& layer = layers[i];
    const std::string prefix = "layers." + std::to_string(i) + ".";
    for (auto [matrix, name] : {std::pair{&layer.wq, "attention.wq"},
                                {&layer.wk, "attention.wk"},
                                {&layer.wv, "attention.wv"},
                                {&layer.wo, "attention.wo"},
                                {&layer.ffn.w1, "feed_forward.w1"},
                                {&layer.ffn.w2, "feed_forward.w2"},
                                {&layer.ffn.w3, "feed_forward.w3"}}) {
      if (!matrix->empty()) visit(*matrix, prefix + name);
    }
    for (size_t e = 0; e < layer.experts.size(); ++e) {
      const std::string expert = prefix + "feed_forward.experts." + std::to_string(e) + ".";
      for (auto [matrix, name] : {std::pair{&layer.experts[e].w1, "w1"},
                                  {&layer.experts[e].w2, "w2"},
                                  {&layer.experts[e].w3, "w3"}}) {
        if (!matrix->empty()) visit(*matrix, expert + name);
      }
    }
  }
}

template <typename Visit>
void LoraAdapter::ForEachMatrix(Visit&& visit) const {
  const_cast<LoraAdapter*>(this)->ForEachMatrix(
      [&visit](LoraMatrix& matrix, const std::string& name) {
        visit(static_cast<const LoraMatrix&>(matrix), name);
      });
}

}  // namespace bora::model
