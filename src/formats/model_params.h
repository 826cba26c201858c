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

// YaRN rotary frequencies (params.json `yarn`, config.json rope_type "yarn"), as transformers'
// _compute_yarn_parameters: original frequencies on the fast pairs, divided by `factor` on the
// slow ones, a linear ramp between the correction dimensions of beta_fast and beta_slow.
struct YarnParams {
  double factor = 1;
  int64_t original_max_positions = 0;  // the context the model was pre-trained with
  double beta_fast = 32;               // params.json yarn.beta
  double beta_slow = 1;                // params.json yarn.alpha
  bool truncate = true;                // floor/ceil the correction range (transformers' default)
  // cos and sin are multiplied by this (so q.k by its square): 1 for apply_scale false /
  // mscale == mscale_all_dim, 0.1 ln(factor) + 1 for apply_scale true / mscale_all_dim 0.
  double attention_factor = 1;
};

// The llama-4 attention temperature: queries (not keys) at 0-based position p are multiplied by
// 1 + beta * ln(1 + floor(p / original_max_positions)) after RoPE.
struct Llama4Scaling {
  double beta = 0;
  int64_t original_max_positions = 0;
};

// The Pixtral vision encoder of params.json (`vision_encoder`, or `multimodal.vision_encoder_args`).
// Absent keys take mistral-inference's VisionEncoderArgs defaults (Pixtral 12B's file states only
// nine of them): adapter_bias true, spatial_merge_size 1, no pre-projector norm, no patch merger.
struct VisionParams {
  int64_t hidden_size = 0;
  int64_t num_channels = 3;
  int64_t image_size = 0;          // sizes the 2-D RoPE table: image_size / patch_size per side
  int64_t patch_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  double rope_theta = 1e4;
  int32_t image_token_id = 10;
  std::optional<int32_t> image_break_token_id;  // else the tokenizer's
  std::optional<int32_t> image_end_token_id;
  std::optional<int64_t> max_image_size;        // else the tokenizer's
  bool adapter_bias = true;
  int64_t spatial_merge_size = 1;
  bool add_pre_mm_projector_layer_norm = false;
  bool patch_merger = false;  // mm_projector_id "patch_merge"
  int64_t head_dim() const { return num_attention_heads > 0 ? hidden_size / num_attention_heads : 0; }
};

// How the linear weights of a checkpoint are stored beyond plain floats.
enum class WeightQuantization { kNone, kFp8 };

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
  bool tie_embeddings = false;           // output shares the embedding (tied_embeddings / tie_word_embeddings)
  std::optional<YarnParams> yarn;
  std::optional<Llama4Scaling> llama4_scaling;
  // kFp8: linear weights are F8_E4M3/F8_E5M2 with scales (params.json `quantization`,
  // config.json `quantization_config` quant_method fp8); others are refused when parsing.
  WeightQuantization quantization = WeightQuantization::kNone;
  // Mistral-native folders with a vision encoder (Pixtral, Mistral Small 3.1+, Ministral 3).
  std::optional<VisionParams> vision;
  // config.json Mistral3ForConditionalGeneration: tensors live under model.language_model.*.
  bool hf_language_model_prefix = false;
  // Parts of the checkpoint skipped on purpose (the vision encoder until bora reads images), one
  // line each, for the loader to say once.
  std::vector<std::string> notes;

  bool HasSlidingWindow() const;
};

// Every key of both files is understood, on a list of harmless metadata, or refused with an
// Unsupported error naming it (and the model family it belongs to when known): an engine that
// ignores a key it does not know may compute wrong answers without a word.

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
