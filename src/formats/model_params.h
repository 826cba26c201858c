// Architecture hyper-parameters of a Mistral/Mixtral checkpoint, parsed from Mistral's
// params.json or Hugging Face's config.json, and validated before any weight is touched (L8).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bora::formats {

struct MoeParams {
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
};

struct ModelParams {
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t head_dim = 0;
  int64_t hidden_dim = 0;     // FFN inner size (per expert for MoE)
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;
  double norm_eps = 1e-5;
  double rope_theta = 1e6;
  // Sliding window per layer (size n_layers): W keys including the query; 0 = full attention.
  std::vector<int64_t> layer_windows;
  std::optional<MoeParams> moe;
  std::optional<int64_t> max_positions;  // max_seq_len / max_position_embeddings when stated
  bool tie_embeddings = false;           // HF tie_word_embeddings: output shares the embedding

  bool HasSlidingWindow() const;
};

// Parses Mistral's params.json. Missing rope_theta: 1e6 without a sliding window, 1e4 with one
// (the original mistral-src rule, which the models lacking the field were trained with).
ModelParams ParseMistralParams(std::string_view json_text, const std::string& file_name);

// Parses a Hugging Face config.json for MistralForCausalLM / MixtralForCausalLM; optional
// fields take transformers' class defaults (rope_theta 1e4 Mistral / 1e6 Mixtral, ...).
ModelParams ParseHfConfig(std::string_view json_text, const std::string& file_name);

// Throws FormatError naming `file_name` for values that would break the forward pass.
void ValidateModelParams(const ModelParams& params, const std::string& file_name);

// params.json text for a model (as `bora make-model` writes it).
std::string MistralParamsJson(const ModelParams& params);

}  // namespace bora::formats
