// Parsing and validation of params.json / config.json.
#include "formats/model_params.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace bora::formats {
namespace {

using Json = nlohmann::json;

// Upper bounds that keep every size product far from overflow and reject absurd configs.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxHidden = 1 << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxHeadDimension = 512;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxExperts = 1024;
constexpr int64_t kMaxPositions = int64_t{1} << 24;

class ConfigReader {
 public:
  ConfigReader(std::string_view text, const std::string& file_name) : file_(file_name) {
    try {
      root_ = Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
      throw FormatError(file_ + ": not valid JSON: " + e.what());
    }
    if (!root_.is_object()) throw FormatError(file_ + ": top level is not a JSON object");
  }

  const Json& root() const { return root_; }
  const std::string& file() const { return file_; }

  bool Has(const char* key) const {
    auto it = root_.find(key);
    return it != root_.end() && !it->is_null();
  }

  int64_t Int(const Json& object, const char* key, const std::string& context) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) Fail(context + "\"" + key + "\" is missing");
    return ToInt(*it, context + "\"" + key + "\"");
  }
  int64_t Int(const char* key) const { return Int(root_, key, ""); }
  int64_t IntOr(const char* key, int64_t fallback) const { return Has(key) ? Int(key) : fallback; }

  double Number(const char* key) const {
    if (!Has(key)) Fail(std::string("\"") + key + "\" is missing");
    const Json& value = root_.at(key);
    if (!value.is_number()) Fail(std::string("\"") + key + "\" must be a number");
    return value.get<double>();
  }
  double NumberOr(const char* key, double fallback) const { return Has(key) ? Number(key) : fallback; }

  int64_t ToInt(const Json& value, const std::string& what) const {
    if (value.is_number_integer()) return value.get<int64_t>();
    // Some writers emit 4096.0; accept integral floats.
    if (value.is_number_float()) {
      double number = value.get<double>();
      if (std::isfinite(number) && std::floor(number) == number && std::fabs(number) < 9e15) {
        return static_cast<int64_t>(number);
      }
    }
    Fail(what + " must be an integer");
  }

  [[noreturn]] void Fail(const std::string& problem) const { throw FormatError(file_ + ": " + problem); }

 private:
  std::string file_;
  Json root_;
};

// A window value from a config: null → 0 (full attention), otherwise a positive integer.
int64_t WindowValue(const ConfigReader& reader, const Json& value, const std::string& what) {
  if (value.is_null()) return 0;
  int64_t window = reader.ToInt(value, what);
  if (window <= 0) reader.Fail(what + " must be a positive integer or null");
  return window;
}

// head_dim when the config omits it: dim / n_heads, which must divide exactly.
int64_t DefaultHeadDim(const ConfigReader& reader, const ModelParams& params) {
  if (params.n_heads <= 0) return 0;  // reported by ValidateModelParams
  if (params.dim % params.n_heads != 0) {
    reader.Fail("head_dim is missing and dim (" + std::to_string(params.dim) + ") is not a multiple of the number of heads (" +
                std::to_string(params.n_heads) + ")");
  }
  return params.dim / params.n_heads;
}

// What a config key means to bora. Anything not in a table is refused by name.
struct KeyTable {
  std::initializer_list<const char*> understood;  // read by the parser
  std::initializer_list<const char*> harmless;    // metadata that cannot change the numbers
  // Features of other model families: refused naming the family unless null.
  std::initializer_list<std::pair<const char*, const char*>> families;
};

bool InList(std::initializer_list<const char*> list, const std::string& key) {
  for (const char* entry : list) {
    if (key == entry) return true;
  }
  return false;
}

// Throws Unsupported naming the first key of `object` (at `where`, "" for the top level) that
// is neither understood nor harmless.
void CheckKeys(const ConfigReader& reader, const Json& object, const std::string& where, const KeyTable& table) {
  for (const auto& [key, value] : object.items()) {
    if (InList(table.understood, key) || InList(table.harmless, key)) continue;
    const char* family = nullptr;
    for (const auto& [family_key, family_name] : table.families) {
      if (key == family_key) family = family_name;
    }
    if (family != nullptr) {
      if (value.is_null()) continue;
      throw Unsupported(reader.file() + ": \"" + where + key + "\" is " + family + ", which bora does not run yet");
    }
    throw Unsupported(reader.file() + ": unknown key \"" + where + key +
                      "\"; bora refuses configs it does not fully understand rather than compute wrong answers");
  }
}

// Keys that mark models bora does not run, in both formats.
constexpr std::pair<const char*, const char*> kMlaFamily[] = {
    {"q_lora_rank", "multi-head latent attention (Mistral Small 4 / Mistral Large 3)"},
    {"kv_lora_rank", "multi-head latent attention (Mistral Small 4 / Mistral Large 3)"},
    {"qk_nope_head_dim", "multi-head latent attention (Mistral Small 4 / Mistral Large 3)"},
    {"qk_rope_head_dim", "multi-head latent attention (Mistral Small 4 / Mistral Large 3)"},
    {"v_head_dim", "multi-head latent attention (Mistral Small 4 / Mistral Large 3)"},
};

double FiniteNumber(const ConfigReader& reader, const Json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) reader.Fail("\"" + where + key + "\" is missing");
  if (!it->is_number() || !std::isfinite(it->get<double>())) reader.Fail("\"" + where + key + "\" must be a finite number");
  return it->get<double>();
}

bool Bool(const ConfigReader& reader, const Json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) reader.Fail("\"" + where + key + "\" is missing");
  if (!it->is_boolean()) reader.Fail("\"" + where + key + "\" must be true or false");
  return it->get<bool>();
}

const Json* Present(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// transformers' get_mscale: the YaRN magnitude for a context extended `scale` times.
double YarnMscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// params.json `yarn` {factor, original_max_position_embeddings, beta, alpha, apply_scale}: all
// five are required (transformers' params.json schema); beta is beta_fast, alpha beta_slow.
YarnParams ParseMistralYarn(const ConfigReader& reader, const Json& yarn) {
  if (!yarn.is_object()) reader.Fail("\"yarn\" must be an object");
  CheckKeys(reader, yarn, "yarn.", {{"factor", "original_max_position_embeddings", "beta", "alpha", "apply_scale"}, {}, {}});
  YarnParams params;
  params.factor = FiniteNumber(reader, yarn, "factor", "yarn.");
  params.original_max_positions = reader.Int(yarn, "original_max_position_embeddings", "yarn.");
  params.beta_fast = FiniteNumber(reader, yarn, "beta", "yarn.");
  params.beta_slow = FiniteNumber(reader, yarn, "alpha", "yarn.");
  // apply_scale true: transformers' conversion sets mscale_all_dim 0, i.e. get_mscale(factor).
  params.attention_factor = Bool(reader, yarn, "apply_scale", "yarn.") ? YarnMscale(params.factor, 1.0) : 1.0;
  return params;
}

Llama4Scaling ParseMistralLlama4(const ConfigReader& reader, const Json& scaling) {
  if (!scaling.is_object()) reader.Fail("\"llama_4_scaling\" must be an object");
  CheckKeys(reader, scaling, "llama_4_scaling.", {{"beta", "original_max_position_embeddings"}, {}, {}});
  return Llama4Scaling{FiniteNumber(reader, scaling, "beta", "llama_4_scaling."),
                       reader.Int(scaling, "original_max_position_embeddings", "llama_4_scaling.")};
}

// params.json `quantization`: FP8 e4m3 weights with per-tensor scales. Activation scales
// (qscheme_act TENSOR) are not used on CPU; NO_SCALES means there are none.
WeightQuantization ParseMistralQuantization(const ConfigReader& reader, const Json& quantization) {
  if (!quantization.is_object()) reader.Fail("\"quantization\" must be an object");
  CheckKeys(reader, quantization, "quantization.", {{"qformat_weight", "qscheme_act"}, {}, {}});
  const Json* format = Present(quantization, "qformat_weight");
  if (format == nullptr || *format != "fp8_e4m3") {
    throw Unsupported(reader.file() + ": quantization.qformat_weight " + (format ? format->dump() : "(missing)") +
                      " is not supported (fp8_e4m3 only)");
  }
  if (const Json* act = Present(quantization, "qscheme_act")) {
    if (*act != "TENSOR" && *act != "NO_SCALES") {
      throw Unsupported(reader.file() + ": quantization.qscheme_act " + act->dump() +
                        " is not supported (TENSOR or NO_SCALES)");
    }
  }
  return WeightQuantization::kFp8;
}

// Ranges that keep the encoder's shapes sane; `where` names the block in messages.
void ValidateVision(const ConfigReader& reader, const VisionParams& v, const std::string& where) {
  auto positive = [&](int64_t value, const char* key, int64_t limit) {
    if (value <= 0 || value > limit) {
      reader.Fail(where + key + " = " + std::to_string(value) + " is out of range (1.." + std::to_string(limit) + ")");
    }
  };
  positive(v.hidden_size, "hidden_size", kMaxDim);
  positive(v.image_size, "image_size", 1 << 16);
  positive(v.patch_size, "patch_size", 1024);
  positive(v.intermediate_size, "intermediate_size", kMaxHidden);
  positive(v.num_hidden_layers, "num_hidden_layers", kMaxLayers);
  positive(v.num_attention_heads, "num_attention_heads", kMaxHeads);
  positive(v.spatial_merge_size, "spatial_merge_size", 16);
  if (v.num_channels != 3) {
    throw Unsupported(reader.file() + ": " + where + "num_channels " + std::to_string(v.num_channels) +
                      " is not supported (bora reads RGB images: 3)");
  }
  if (v.hidden_size % v.num_attention_heads != 0 || v.head_dim() % 4 != 0 || v.head_dim() > kMaxHeadDimension) {
    reader.Fail(where + "hidden_size / num_attention_heads must be a multiple of 4 (2-D RoPE) up to " +
                std::to_string(kMaxHeadDimension));
  }
  if (!std::isfinite(v.rope_theta) || v.rope_theta <= 1) reader.Fail(where + "rope_theta must be a number above 1");
  if (v.max_image_size && (*v.max_image_size <= 0 || *v.max_image_size > (1 << 16))) {
    reader.Fail(where + "max_image_size is out of range");
  }
  if (v.image_token_id < 0) reader.Fail(where + "image_token_id must be a token id");
}

// The Pixtral vision encoder block; every key understood or refused by name.
VisionParams ParseVisionEncoder(const ConfigReader& reader, const Json& block, const std::string& where) {
  if (!block.is_object()) reader.Fail("\"" + where.substr(0, where.size() - 1) + "\" must be an object");
  CheckKeys(reader, block, where,
            {{"hidden_size", "num_channels", "image_size", "max_image_size", "patch_size", "intermediate_size",
              "num_hidden_layers", "num_attention_heads", "rope_theta", "image_token_id", "image_break_token_id",
              "image_end_token_id", "adapter_bias", "spatial_merge_size", "add_pre_mm_projector_layer_norm",
              "mm_projector_id"},
             {},
             {}});
  auto integer = [&](const char* key) { return reader.Int(block, key, where); };
  auto has = [&](const char* key) { return Present(block, key) != nullptr; };
  auto boolean = [&](const char* key, bool fallback) {
    const Json* value = Present(block, key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) reader.Fail(where + key + " must be true or false");
    return value->get<bool>();
  };
  VisionParams v;
  v.hidden_size = integer("hidden_size");
  v.num_channels = has("num_channels") ? integer("num_channels") : 3;
  v.image_size = integer("image_size");
  v.patch_size = integer("patch_size");
  v.intermediate_size = integer("intermediate_size");
  v.num_hidden_layers = integer("num_hidden_layers");
  v.num_attention_heads = integer("num_attention_heads");
  if (const Json* theta = Present(block, "rope_theta")) {
    if (!theta->is_number()) reader.Fail(where + "rope_theta must be a number");
    v.rope_theta = theta->get<double>();
  }
  auto token = [&](const char* key) { return static_cast<int32_t>(std::clamp<int64_t>(integer(key), -1, kMaxVocab)); };
  if (has("image_token_id")) v.image_token_id = token("image_token_id");
  if (has("image_break_token_id")) v.image_break_token_id = token("image_break_token_id");
  if (has("image_end_token_id")) v.image_end_token_id = token("image_end_token_id");
  if (has("max_image_size")) v.max_image_size = integer("max_image_size");
  v.adapter_bias = boolean("adapter_bias", true);
  if (has("spatial_merge_size")) v.spatial_merge_size = integer("spatial_merge_size");
  v.add_pre_mm_projector_layer_norm = boolean("add_pre_mm_projector_layer_norm", false);
  if (const Json* projector = Present(block, "mm_projector_id")) {
    const std::string id = projector->is_string() ? projector->get<std::string>() : "?";
    if (id == "patch_merge") {
      v.patch_merger = true;
    } else if (!id.empty()) {
      throw Unsupported(reader.file() + ": " + where + "mm_projector_id " + projector->dump() +
                        " is not supported (bora knows \"\" and \"patch_merge\")");
    }
  }
  ValidateVision(reader, v, where);
  return v;
}

}  // namespace

bool ModelParams::HasSlidingWindow() const {
  for (int64_t window : layer_windows) {
    if (window > 0) return true;
  }
  return false;
}

ModelParams ParseMistralParams(std::string_view json_text, const std::string& file_name) {
  ConfigReader reader(json_text, file_name);
  const Json& root = reader.root();
  if (reader.Has("model_type")) {
    const Json& type = root.at("model_type");
    if (!type.is_string() || type.get<std::string>() != "transformer") {
      throw Unsupported(file_name + ": model_type " + type.dump() + " is not supported (bora runs transformer models)");
    }
  }
  if (reader.Has("lora")) {
    throw Unsupported(file_name + ": checkpoints that embed LoRA layers are not supported yet; merge the adapter first");
  }
  static constexpr std::pair<const char*, const char*> kFamilies[] = {
      kMlaFamily[0], kMlaFamily[1], kMlaFamily[2], kMlaFamily[3], kMlaFamily[4],
      {"quantization_config", "compressed-tensors quantization (FP8 128x128 block scales: Mistral Small 4 / Large 3)"},
      {"audio_encoder", "an audio encoder (Voxtral)"},
      {"whisper_model_args", "an audio encoder (Voxtral)"},
  };
  CheckKeys(reader, root, "",
            {{"dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "norm_eps", "vocab_size",
              "rope_theta", "sliding_window", "_sliding_window", "max_seq_len", "max_position_embeddings", "moe",
              "tied_embeddings", "yarn", "llama_4_scaling", "quantization", "model_type", "lora", "vision_encoder",
              "multimodal"},
             {"max_batch_size"},
             {kFamilies[0], kFamilies[1], kFamilies[2], kFamilies[3], kFamilies[4], kFamilies[5], kFamilies[6],
              kFamilies[7]}});
  ModelParams params;
  params.dim = reader.Int("dim");
  params.n_layers = reader.Int("n_layers");
  params.n_heads = reader.Int("n_heads");
  params.n_kv_heads = reader.IntOr("n_kv_heads", params.n_heads);
  params.head_dim = reader.Has("head_dim") ? reader.Int("head_dim") : DefaultHeadDim(reader, params);
  params.hidden_dim = reader.Int("hidden_dim");
  params.vocab_size = reader.Int("vocab_size");
  params.norm_eps = reader.Number("norm_eps");
  if (reader.Has("max_seq_len")) params.max_positions = reader.Int("max_seq_len");
  if (reader.Has("max_position_embeddings")) {
    // Both present (Mistral Large 3): the smaller one bounds the context.
    const int64_t positions = reader.Int("max_position_embeddings");
    params.max_positions = params.max_positions ? std::min(*params.max_positions, positions) : positions;
  }
  if (const Json* tied = Present(root, "tied_embeddings")) {
    if (!tied->is_boolean()) reader.Fail("\"tied_embeddings\" must be true or false");
    params.tie_embeddings = tied->get<bool>();
  }
  if (const Json* yarn = Present(root, "yarn")) params.yarn = ParseMistralYarn(reader, *yarn);
  if (const Json* scaling = Present(root, "llama_4_scaling")) params.llama4_scaling = ParseMistralLlama4(reader, *scaling);
  if (const Json* quantization = Present(root, "quantization")) {
    params.quantization = ParseMistralQuantization(reader, *quantization);
  }
  if (const Json* vision = Present(root, "vision_encoder")) {
    params.vision = ParseVisionEncoder(reader, *vision, "vision_encoder.");
  }
  if (const Json* multimodal = Present(root, "multimodal")) {
    if (!multimodal->is_object()) reader.Fail("\"multimodal\" must be an object");
    CheckKeys(reader, *multimodal, "multimodal.",
              {{"vision_encoder_args"}, {}, {{"whisper_model_args", "an audio encoder (Voxtral)"}}});
    if (const Json* vision = Present(*multimodal, "vision_encoder_args")) {
      if (params.vision) reader.Fail("both \"vision_encoder\" and \"multimodal.vision_encoder_args\" are given");
      params.vision = ParseVisionEncoder(reader, *vision, "multimodal.vision_encoder_args.");
    }
  }

  const char* window_key = reader.Has("sliding_window") ? "sliding_window" : "_sliding_window";
  if (params.n_layers > 0 && params.n_layers <= kMaxLayers) {
    params.layer_windows.assign(params.n_layers, 0);
    if (reader.Has(window_key)) {
      const Json& window = root.at(window_key);
      if (window.is_array()) {
        size_t period = window.size();
        if (period == 0 || params.n_layers % static_cast<int64_t>(period) != 0) {
          reader.Fail(std::string("\"") + window_key + "\" list has " + std::to_string(period) +
                      " entries; n_layers (" + std::to_string(params.n_layers) + ") must be a multiple of it");
        }
        for (int64_t layer = 0; layer < params.n_layers; ++layer) {
          params.layer_windows[layer] = WindowValue(reader, window[layer % period],
                                                    std::string("\"") + window_key + "\" entry");
        }
      } else {
        int64_t value = WindowValue(reader, window, std::string("\"") + window_key + "\"");
        params.layer_windows.assign(params.n_layers, value);
      }
    }
  }
  params.rope_theta = reader.NumberOr("rope_theta", params.HasSlidingWindow() ? 1e4 : 1e6);

  if (reader.Has("moe")) {
    const Json& moe = root.at("moe");
    if (!moe.is_object()) reader.Fail("\"moe\" must be an object");
    static constexpr const char* kShared = "a Mistral Small 4 / Large 3 mixture of experts (shared experts, groups)";
    CheckKeys(reader, moe, "moe.",
              {{"num_experts", "num_experts_per_tok"},
               {},
               {{"num_shared_experts", kShared}, {"first_k_dense_replace", kShared}, {"expert_hidden_dim", kShared},
                {"routed_scale", kShared}, {"num_expert_groups", kShared}, {"num_expert_groups_per_tok", kShared},
                {"route_every_n", kShared}, {"expert_parallel", kShared}, {"expert_model_parallel", kShared}}});
    params.moe = MoeParams{reader.Int(moe, "num_experts", "moe."),
                           reader.Int(moe, "num_experts_per_tok", "moe.")};
  }
  ValidateModelParams(params, file_name);
  return params;
}

namespace {

// HF config keys that are bookkeeping of transformers and the Hub, never numerics.
constexpr std::initializer_list<const char*> kHfHarmless = {
    "bos_token_id", "eos_token_id", "pad_token_id", "dtype", "torch_dtype", "transformers_version", "use_cache",
    "initializer_range", "attention_dropout", "output_router_logits", "router_aux_loss_coef", "router_jitter_noise",
    "_name_or_path", "return_dict", "output_hidden_states", "output_attentions", "tokenizer_class"};

// rope_parameters (transformers 5) or rope_scaling (transformers 4, with a top-level rope_theta):
// rope_type default or yarn, the llama-4 beta. Fills params.rope_theta, yarn, llama4_scaling.
void ParseHfRope(const ConfigReader& reader, const Json& text, const std::string& where, double default_theta,
                 bool theta_required, ModelParams& params) {
  const Json* rope = Present(text, "rope_parameters");
  const char* rope_key = "rope_parameters";
  if (rope == nullptr) {
    rope = Present(text, "rope_scaling");
    rope_key = "rope_scaling";
  }
  const Json* top_theta = Present(text, "rope_theta");
  if (top_theta != nullptr && !top_theta->is_number()) reader.Fail("\"" + where + "rope_theta\" must be a number");
  params.rope_theta = top_theta ? top_theta->get<double>() : default_theta;
  if (rope == nullptr) {
    if (top_theta == nullptr && theta_required) reader.Fail("\"" + where + "rope_parameters\" with rope_theta is missing");
    return;
  }
  const std::string at = where + rope_key + ".";
  if (!rope->is_object()) reader.Fail("\"" + where + rope_key + "\" must be an object");
  CheckKeys(reader, *rope, at,
            {{"rope_type", "type", "rope_theta", "factor", "original_max_position_embeddings", "beta_fast", "beta_slow",
              "mscale", "mscale_all_dim", "llama_4_scaling_beta", "attention_factor", "truncate",
              "partial_rotary_factor"},
             {},
             {}});
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (const Json* value = Present(*rope, key)) {
      if (!value->is_string()) reader.Fail("\"" + at + key + "\" must be a string");
      if (!type.empty() && type != value->get<std::string>()) {
        reader.Fail("\"" + at + "rope_type\" and \"" + at + "type\" disagree");
      }
      type = value->get<std::string>();
    }
  }
  if (type.empty()) type = "default";
  if (type != "default" && type != "yarn") {
    throw Unsupported(reader.file() + ": " + at + "rope_type \"" + type +
                      "\" is not supported (bora computes default and yarn)");
  }
  if (const Json* theta = Present(*rope, "rope_theta")) {
    if (!theta->is_number()) reader.Fail("\"" + at + "rope_theta\" must be a number");
    if (top_theta != nullptr && top_theta->get<double>() != theta->get<double>()) {
      reader.Fail("\"" + where + "rope_theta\" and \"" + at + "rope_theta\" disagree");
    }
    params.rope_theta = theta->get<double>();
  } else if (top_theta == nullptr && theta_required) {
    reader.Fail("\"" + at + "rope_theta\" is missing");
  }
  if (const Json* partial = Present(*rope, "partial_rotary_factor")) {
    if (!partial->is_number() || partial->get<double>() != 1.0) {
      throw Unsupported(reader.file() + ": " + at + "partial_rotary_factor " + partial->dump() +
                        " is not supported (every dimension is rotated)");
    }
  }
  auto number_or = [&](const char* key, double fallback) {
    const Json* value = Present(*rope, key);
    return value ? FiniteNumber(reader, *rope, key, at) : fallback;
  };
  const Json* original = Present(*rope, "original_max_position_embeddings");
  const int64_t original_positions = original ? reader.Int(*rope, "original_max_position_embeddings", at) : 0;
  if (type == "yarn") {
    YarnParams yarn;
    yarn.factor = FiniteNumber(reader, *rope, "factor", at);
    if (original == nullptr) reader.Fail("\"" + at + "original_max_position_embeddings\" is missing");
    yarn.original_max_positions = original_positions;
    // transformers (4.5x) derives the factor from max_position_embeddings / original when both
    // are given; a config where the two disagree means different things to different versions.
    if (const Json* max_positions = Present(text, "max_position_embeddings")) {
      const double ratio = static_cast<double>(reader.ToInt(*max_positions, where + "max_position_embeddings")) /
                           static_cast<double>(original_positions);
      if (std::fabs(ratio - yarn.factor) > 1e-9 * yarn.factor) {
        reader.Fail("\"" + at + "factor\" (" + std::to_string(yarn.factor) + ") differs from max_position_embeddings / "
                    "original_max_position_embeddings (" + std::to_string(ratio) + ")");
      }
    }
    // transformers treats 0 like absent ("or 32", "or 1", "if mscale and mscale_all_dim").
    yarn.beta_fast = number_or("beta_fast", 0);
    if (yarn.beta_fast == 0) yarn.beta_fast = 32;
    yarn.beta_slow = number_or("beta_slow", 0);
    if (yarn.beta_slow == 0) yarn.beta_slow = 1;
    if (const Json* truncate = Present(*rope, "truncate")) {
      if (!truncate->is_boolean()) reader.Fail("\"" + at + "truncate\" must be true or false");
      yarn.truncate = truncate->get<bool>();
    }
    const double mscale = number_or("mscale", 0), mscale_all_dim = number_or("mscale_all_dim", 0);
    if (Present(*rope, "attention_factor")) {
      yarn.attention_factor = FiniteNumber(reader, *rope, "attention_factor", at);
    } else if (mscale != 0 && mscale_all_dim != 0) {
      yarn.attention_factor = YarnMscale(yarn.factor, mscale) / YarnMscale(yarn.factor, mscale_all_dim);
    } else {
      yarn.attention_factor = YarnMscale(yarn.factor, 1.0);
    }
    params.yarn = yarn;
  } else {
    for (const char* key : {"factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor", "truncate"}) {
      if (Present(*rope, key)) reader.Fail("\"" + at + key + "\" has no meaning for rope_type default");
    }
  }
  const double beta = number_or("llama_4_scaling_beta", 0);
  if (beta != 0) {
    if (original == nullptr) {
      reader.Fail("\"" + at + "llama_4_scaling_beta\" needs \"" + at + "original_max_position_embeddings\"");
    }
    params.llama4_scaling = Llama4Scaling{beta, original_positions};
  }
}

// quantization_config of an FP8 checkpoint (per-tensor or per-row weight scales).
WeightQuantization ParseHfQuantization(const ConfigReader& reader, const Json& config) {
  if (!config.is_object()) reader.Fail("\"quantization_config\" must be an object");
  const Json* method = Present(config, "quant_method");
  if (method == nullptr || *method != "fp8") {
    throw Unsupported(reader.file() + ": quantization_config.quant_method " + (method ? method->dump() : "(missing)") +
                      " is not supported (fp8 only; or use the original BF16 checkpoint)");
  }
  CheckKeys(reader, config, "quantization_config.",
            {{"quant_method", "activation_scheme", "weight_block_size", "dequantize", "modules_to_not_convert"}, {}, {}});
  if (const Json* block = Present(config, "weight_block_size")) {
    throw Unsupported(reader.file() + ": quantization_config.weight_block_size " + block->dump() +
                      " (FP8 block scales, Mistral Small 4 / Large 3) is not supported yet");
  }
  if (const Json* scheme = Present(config, "activation_scheme")) {
    if (*scheme != "static" && *scheme != "dynamic") {
      throw Unsupported(reader.file() + ": quantization_config.activation_scheme " + scheme->dump() + " is not supported");
    }
  }
  if (const Json* modules = Present(config, "modules_to_not_convert")) {
    if (!modules->is_array()) reader.Fail("\"quantization_config.modules_to_not_convert\" must be a list");
  }
  return WeightQuantization::kFp8;
}

// The text model of a config.json (the root, or text_config of Mistral3ForConditionalGeneration).
ModelParams ParseHfTextModel(const ConfigReader& reader, const Json& text, const std::string& where,
                             const std::string& family) {
  const bool mixtral = family == "mixtral";
  const bool ministral3 = family == "ministral3";
  static constexpr const char* kShared = "a Mistral Small 4 / Large 3 mixture of experts (shared experts, groups)";
  static constexpr std::pair<const char*, const char*> kFamilies[] = {
      kMlaFamily[0], kMlaFamily[1], kMlaFamily[2], kMlaFamily[3], kMlaFamily[4],
      {"n_routed_experts", kShared}, {"n_shared_experts", kShared}, {"first_k_dense_replace", kShared},
      {"moe_intermediate_size", kShared}, {"n_group", kShared}, {"topk_group", kShared},
      {"routed_scaling_factor", kShared}, {"norm_topk_prob", kShared}, {"qk_head_dim", kMlaFamily[0].second},
      {"rope_interleave", kMlaFamily[0].second}};
  CheckKeys(reader, text, where,
            {{"architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size", "rms_norm_eps", "rope_theta",
              "rope_parameters", "rope_scaling", "max_position_embeddings", "sliding_window", "tie_word_embeddings",
              "hidden_act", "num_local_experts", "num_experts_per_tok", "quantization_config", "attention_bias",
              "mlp_bias", "pretraining_tp"},
             kHfHarmless,
             {kFamilies[0], kFamilies[1], kFamilies[2], kFamilies[3], kFamilies[4], kFamilies[5], kFamilies[6],
              kFamilies[7], kFamilies[8], kFamilies[9], kFamilies[10], kFamilies[11], kFamilies[12], kFamilies[13],
              kFamilies[14]}});
  if (const Json* act = Present(text, "hidden_act"); act && *act != "silu") {
    throw Unsupported(reader.file() + ": " + where + "hidden_act " + act->dump() + " is not supported (silu only)");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (const Json* bias = Present(text, key); bias && *bias != false) {
      throw Unsupported(reader.file() + ": " + where + key + " " + bias->dump() + " is not supported (no biases)");
    }
  }
  if (const Json* tp = Present(text, "pretraining_tp"); tp && *tp != 1) {
    throw Unsupported(reader.file() + ": " + where + "pretraining_tp " + tp->dump() + " is not supported (1 only)");
  }
  if (!mixtral) {
    for (const char* key : {"num_local_experts", "num_experts_per_tok"}) {
      if (Present(text, key)) reader.Fail("\"" + where + key + "\" belongs to Mixtral configs, not " + family);
    }
  }
  auto integer = [&](const char* key) { return reader.Int(text, key, where); };
  auto present = [&](const char* key) { return Present(text, key) != nullptr; };
  ModelParams params;
  params.dim = integer("hidden_size");
  params.n_layers = integer("num_hidden_layers");
  params.n_heads = integer("num_attention_heads");
  // transformers: absent → the class default 8; explicit null → num_attention_heads.
  params.n_kv_heads = !text.contains("num_key_value_heads") ? 8
                      : text.at("num_key_value_heads").is_null() ? params.n_heads
                                                                 : integer("num_key_value_heads");
  params.head_dim = present("head_dim") ? integer("head_dim") : DefaultHeadDim(reader, params);
  params.hidden_dim = integer("intermediate_size");
  params.vocab_size = integer("vocab_size");
  params.norm_eps = present("rms_norm_eps") ? FiniteNumber(reader, text, "rms_norm_eps", where)
                                            : (mixtral ? 1e-5 : 1e-6);  // class defaults
  if (ministral3 && !present("rms_norm_eps")) reader.Fail("\"" + where + "rms_norm_eps\" is missing");
  // Class defaults: Mistral 1e4, Mixtral 1e6; Ministral 3 has no safe default, so it must say.
  ParseHfRope(reader, text, where, mixtral ? 1e6 : 1e4, ministral3, params);
  if (present("max_position_embeddings")) params.max_positions = integer("max_position_embeddings");
  if (const Json* tie = Present(text, "tie_word_embeddings")) {
    if (!tie->is_boolean()) reader.Fail("\"" + where + "tie_word_embeddings\" must be true or false");
    params.tie_embeddings = tie->get<bool>();
  }
  // MistralConfig defaults sliding_window to 4096 when the key is absent; MixtralConfig and
  // Ministral3Config to None.
  int64_t window = 0;
  if (text.contains("sliding_window")) {
    window = WindowValue(reader, text.at("sliding_window"), "\"" + where + "sliding_window\"");
  } else if (!mixtral && !ministral3) {
    window = 4096;
  }
  if (params.n_layers > 0 && params.n_layers <= kMaxLayers) params.layer_windows.assign(params.n_layers, window);
  if (mixtral) {
    params.moe = MoeParams{present("num_local_experts") ? integer("num_local_experts") : 8,
                           present("num_experts_per_tok") ? integer("num_experts_per_tok") : 2};
  }
  if (const Json* quantization = Present(text, "quantization_config")) {
    params.quantization = ParseHfQuantization(reader, *quantization);
  }
  return params;
}

// The model family of a config: "mistral", "mixtral" or "ministral3" from architectures[0]
// (or model_type when architectures is absent); anything else is refused by name.
std::string HfFamily(const ConfigReader& reader, const Json& root, bool* conditional_generation) {
  std::string architecture;
  if (const Json* list = Present(root, "architectures")) {
    if (!list->is_array() || list->size() != 1 || !(*list)[0].is_string()) {
      reader.Fail("\"architectures\" must be a list of one name");
    }
    architecture = (*list)[0].get<std::string>();
  } else if (const Json* type = Present(root, "model_type"); type && type->is_string()) {
    const std::string name = type->get<std::string>();
    architecture = name == "mixtral"      ? "MixtralForCausalLM"
                   : name == "mistral"    ? "MistralForCausalLM"
                   : name == "ministral3" ? "Ministral3ForCausalLM"
                   : name == "mistral3"   ? "Mistral3ForConditionalGeneration"
                                          : name;
  }
  *conditional_generation =
      architecture == "Mistral3ForConditionalGeneration" || architecture == "LlavaForConditionalGeneration";
  if (architecture == "LlavaForConditionalGeneration") return "llava";
  if (architecture == "MistralForCausalLM") return "mistral";
  if (architecture == "MixtralForCausalLM") return "mixtral";
  if (architecture == "Ministral3ForCausalLM" || *conditional_generation) return "ministral3";
  std::string hint;
  if (architecture == "DeepseekV3ForCausalLM" || architecture == "Mistral4ForCausalLM") {
    hint = " (multi-head latent attention: Mistral Small 4 / Large 3 are not run yet)";
  }
  if (architecture == "Mamba2ForCausalLM" || architecture == "MambaForCausalLM") hint = " (Mamba: Codestral Mamba)";
  throw Unsupported(reader.file() + ": architecture \"" + architecture + "\" is not supported" + hint +
                    "; bora runs MistralForCausalLM, MixtralForCausalLM, Ministral3ForCausalLM, "
                    "Mistral3ForConditionalGeneration and LlavaForConditionalGeneration (Pixtral)");
}

}  // namespace

// vision_config (transformers' PixtralVisionConfig; absent keys take its class defaults, as
// save_pretrained omits them) and the projector fields of Mistral3Config / LlavaConfig.
VisionParams ParseHfVision(const ConfigReader& reader, const Json& root, bool llava) {
  const Json* vision = Present(root, "vision_config");
  if (vision == nullptr || !vision->is_object()) reader.Fail("\"vision_config\" is missing or not an object");
  const std::string where = "vision_config.";
  CheckKeys(reader, *vision, where,
            {{"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
              "image_size", "patch_size", "hidden_act", "head_dim", "rope_theta", "rope_parameters", "model_type"},
             kHfHarmless,
             {}});
  if (const Json* type = Present(*vision, "model_type"); type && *type != "pixtral") {
    throw Unsupported(reader.file() + ": vision_config.model_type " + type->dump() +
                      " is not supported (bora reads Pixtral vision towers)");
  }
  auto integer = [&](const char* key, int64_t fallback) {
    return Present(*vision, key) ? reader.Int(*vision, key, where) : fallback;
  };
  VisionParams v;
  v.hidden_size = integer("hidden_size", 1024);
  v.intermediate_size = integer("intermediate_size", 4096);
  v.num_hidden_layers = integer("num_hidden_layers", 24);
  v.num_attention_heads = integer("num_attention_heads", 16);
  v.num_channels = integer("num_channels", 3);
  v.image_size = integer("image_size", 1024);
  v.patch_size = integer("patch_size", 16);
  const std::string act = Present(*vision, "hidden_act") && Present(*vision, "hidden_act")->is_string()
                              ? Present(*vision, "hidden_act")->get<std::string>() : "gelu";
  if (act != "silu") {
    throw Unsupported(reader.file() + ": vision_config.hidden_act \"" + act +
                      "\" is not supported (Pixtral's vision feed-forward is SwiGLU: silu)");
  }
  if (const Json* head_dim = Present(*vision, "head_dim");
      head_dim && v.num_attention_heads > 0 && reader.ToInt(*head_dim, where + "head_dim") * v.num_attention_heads != v.hidden_size) {
    reader.Fail(where + "head_dim must be hidden_size / num_attention_heads");
  }
  if (const Json* theta = Present(*vision, "rope_theta")) {
    if (!theta->is_number()) reader.Fail(where + "rope_theta must be a number");
    v.rope_theta = theta->get<double>();
  }
  if (const Json* rope = Present(*vision, "rope_parameters")) {
    if (!rope->is_object()) reader.Fail(where + "rope_parameters must be an object");
    CheckKeys(reader, *rope, where + "rope_parameters.", {{"rope_theta", "rope_type"}, {}, {}});
    if (const Json* type = Present(*rope, "rope_type"); type && *type != "default") {
      throw Unsupported(reader.file() + ": " + where + "rope_parameters.rope_type " + type->dump() + " is not supported");
    }
    if (const Json* theta = Present(*rope, "rope_theta")) {
      if (!theta->is_number()) reader.Fail(where + "rope_parameters.rope_theta must be a number");
      v.rope_theta = theta->get<double>();
    }
  }
  // Projector: Mistral3 = RMSNorm + patch merger + MLP (bias off by default); Llava (Pixtral 12B)
  // = MLP (bias on by default).
  const Json* token = Present(root, "image_token_index") ? Present(root, "image_token_index") : Present(root, "image_token_id");
  v.image_token_id = static_cast<int32_t>(token ? reader.ToInt(*token, "image_token_index") : (llava ? 32000 : 10));
  if (const Json* bias = Present(root, "multimodal_projector_bias")) {
    if (!bias->is_boolean()) reader.Fail("\"multimodal_projector_bias\" must be true or false");
    v.adapter_bias = bias->get<bool>();
  } else {
    v.adapter_bias = llava;
  }
  const std::string projector_act = Present(root, "projector_hidden_act") && Present(root, "projector_hidden_act")->is_string()
                                        ? Present(root, "projector_hidden_act")->get<std::string>() : "gelu";
  if (projector_act != "gelu") {
    throw Unsupported(reader.file() + ": projector_hidden_act \"" + projector_act + "\" is not supported (gelu)");
  }
  const Json* layer = Present(root, "vision_feature_layer");
  const int64_t feature_layer = layer ? reader.ToInt(*layer, "vision_feature_layer") : (llava ? -2 : -1);
  if (feature_layer != -1) {
    throw Unsupported(reader.file() + ": vision_feature_layer " + std::to_string(feature_layer) +
                      " is not supported (Pixtral uses the last layer, -1)");
  }
  if (llava) {
    const Json* strategy = Present(root, "vision_feature_select_strategy");
    if (strategy == nullptr || *strategy != "full") {
      throw Unsupported(reader.file() + ": vision_feature_select_strategy " + (strategy ? strategy->dump() : "\"default\"") +
                        " is not supported (Pixtral uses \"full\")");
    }
  } else {
    v.add_pre_mm_projector_layer_norm = true;
    v.patch_merger = true;
    v.spatial_merge_size = Present(root, "spatial_merge_size") ? reader.Int(root, "spatial_merge_size", "") : 2;
  }
  ValidateVision(reader, v, where);
  return v;
}

ModelParams ParseHfConfig(std::string_view json_text, const std::string& file_name) {
  ConfigReader reader(json_text, file_name);
  const Json& root = reader.root();
  bool conditional = false;
  const std::string family = HfFamily(reader, root, &conditional);
  ModelParams params;
  if (conditional) {
    CheckKeys(reader, root, "",
              {{"architectures", "model_type", "text_config", "vision_config", "tie_word_embeddings",
                "quantization_config", "image_token_index", "image_token_id", "multimodal_projector_bias",
                "projector_hidden_act", "spatial_merge_size", "vision_feature_layer", "vision_feature_select_strategy"},
               {"image_seq_length", "bos_token_id", "eos_token_id", "pad_token_id", "dtype", "torch_dtype",
                "transformers_version", "use_cache", "initializer_range", "_name_or_path", "return_dict",
                "output_hidden_states", "output_attentions", "tokenizer_class", "ignore_index"},
               {}});
    const Json* text = Present(root, "text_config");
    if (text == nullptr || !text->is_object()) reader.Fail("\"text_config\" is missing or not an object");
    if (const Json* type = Present(*text, "model_type"); type && *type != "ministral3" && *type != "mistral") {
      throw Unsupported(file_name + ": text_config.model_type " + type->dump() + " is not supported (ministral3, mistral)");
    }
    // transformers' Mistral3Config defaults text_config to a MistralConfig.
    const std::string text_family = Present(*text, "model_type") && *Present(*text, "model_type") == "ministral3"
                                        ? "ministral3" : "mistral";
    params = ParseHfTextModel(reader, *text, "text_config.", text_family);
    if (const Json* tie = Present(root, "tie_word_embeddings"); tie && !Present(*text, "tie_word_embeddings")) {
      if (!tie->is_boolean()) reader.Fail("\"tie_word_embeddings\" must be true or false");
      params.tie_embeddings = tie->get<bool>();
    }
    if (const Json* quantization = Present(root, "quantization_config")) {
      params.quantization = ParseHfQuantization(reader, *quantization);
    }
    params.hf_language_model_prefix = true;
    if (Present(root, "vision_config") || family == "llava") params.vision = ParseHfVision(reader, root, family == "llava");
  } else {
    params = ParseHfTextModel(reader, root, "", family);
  }
  ValidateModelParams(params, file_name);
  return params;
}

void ValidateModelParams(const ModelParams& p, const std::string& file_name) {
  auto check_range = [&](const char* name, int64_t value, int64_t max) {
    if (value < 1 || value > max) {
      throw FormatError(file_name + ": " + name + " = " + std::to_string(value) + " is outside [1, " +
                        std::to_string(max) + "]");
    }
  };
  check_range("dim", p.dim, kMaxDim);
  check_range("n_layers", p.n_layers, kMaxLayers);
  check_range("n_heads", p.n_heads, kMaxHeads);
  check_range("n_kv_heads", p.n_kv_heads, kMaxHeads);
  check_range("head_dim", p.head_dim, kMaxHeadDimension);
  check_range("hidden_dim", p.hidden_dim, kMaxHidden);
  check_range("vocab_size", p.vocab_size, kMaxVocab);
  if (p.n_heads % p.n_kv_heads != 0) {
    throw FormatError(file_name + ": n_heads (" + std::to_string(p.n_heads) + ") is not a multiple of n_kv_heads (" +
                      std::to_string(p.n_kv_heads) + ")");
  }
  if (p.head_dim % 2 != 0) throw FormatError(file_name + ": head_dim must be even for RoPE");
  if (!std::isfinite(p.norm_eps) || p.norm_eps <= 0) throw FormatError(file_name + ": norm_eps must be finite and > 0");
  if (!std::isfinite(p.rope_theta) || p.rope_theta <= 1.0) {
    throw FormatError(file_name + ": rope_theta must be finite and > 1");
  }
  if (static_cast<int64_t>(p.layer_windows.size()) != p.n_layers) {
    throw FormatError(file_name + ": sliding window list does not cover n_layers");
  }
  for (int64_t window : p.layer_windows) {
    if (window < 0 || window > kMaxPositions) throw FormatError(file_name + ": sliding_window out of range");
  }
  if (p.max_positions && (*p.max_positions < 1 || *p.max_positions > kMaxPositions)) {
    throw FormatError(file_name + ": maximum sequence length " + std::to_string(*p.max_positions) +
                      " is outside [1, 2^24]");
  }
  if (p.yarn) {
    const YarnParams& y = *p.yarn;
    if (!(y.factor > 0) || !std::isfinite(y.factor)) throw FormatError(file_name + ": yarn factor must be finite and > 0");
    check_range("yarn original_max_position_embeddings", y.original_max_positions, kMaxPositions);
    if (!(y.beta_fast > 0) || !(y.beta_slow > 0) || !std::isfinite(y.beta_fast) || !std::isfinite(y.beta_slow)) {
      throw FormatError(file_name + ": yarn beta_fast/beta_slow (beta/alpha) must be finite and > 0");
    }
    if (!(y.attention_factor > 0) || !std::isfinite(y.attention_factor)) {
      throw FormatError(file_name + ": yarn attention factor must be finite and > 0");
    }
  }
  if (p.llama4_scaling) {
    if (!(p.llama4_scaling->beta >= 0) || !std::isfinite(p.llama4_scaling->beta)) {
      throw FormatError(file_name + ": llama_4_scaling beta must be finite and >= 0");
    }
    check_range("llama_4_scaling original_max_position_embeddings", p.llama4_scaling->original_max_positions,
                kMaxPositions);
  }
  if (p.moe) {
    check_range("moe.num_experts", p.moe->num_experts, kMaxExperts);
    if (p.moe->num_experts_per_tok < 1 || p.moe->num_experts_per_tok > p.moe->num_experts) {
      throw FormatError(file_name + ": moe.num_experts_per_tok must be in [1, num_experts]");
    }
  }
}

std::string MistralParamsJson(const ModelParams& params) {
  nlohmann::ordered_json json;
  json["dim"] = params.dim;
  json["n_layers"] = params.n_layers;
  json["head_dim"] = params.head_dim;
  json["hidden_dim"] = params.hidden_dim;
  json["n_heads"] = params.n_heads;
  json["n_kv_heads"] = params.n_kv_heads;
  json["norm_eps"] = params.norm_eps;
  json["vocab_size"] = params.vocab_size;
  json["rope_theta"] = params.rope_theta;
  if (params.HasSlidingWindow()) {
    bool uniform = true;
    for (int64_t window : params.layer_windows) uniform = uniform && window == params.layer_windows[0];
    if (uniform) {
      json["sliding_window"] = params.layer_windows[0];
    } else {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (int64_t window : params.layer_windows) {
        list.push_back(window > 0 ? nlohmann::ordered_json(window) : nlohmann::ordered_json(nullptr));
      }
      json["sliding_window"] = list;
    }
  }
  if (params.max_positions) json["max_seq_len"] = *params.max_positions;
  if (params.tie_embeddings) json["tied_embeddings"] = true;
  if (params.yarn) {
    const YarnParams& y = *params.yarn;
    const bool apply_scale = y.attention_factor != 1.0;
    if (!y.truncate || (apply_scale && y.attention_factor != YarnMscale(y.factor, 1.0))) {
      throw Unsupported("this YaRN configuration (attention factor " + std::to_string(y.attention_factor) +
                        (y.truncate ? "" : ", truncate false") + ") cannot be written as params.json");
    }
    json["yarn"] = {{"factor", y.factor}, {"original_max_position_embeddings", y.original_max_positions},
                    {"beta", y.beta_fast}, {"alpha", y.beta_slow}, {"apply_scale", apply_scale}};
  }
  if (params.llama4_scaling) {
    json["llama_4_scaling"] = {{"original_max_position_embeddings", params.llama4_scaling->original_max_positions},
                               {"beta", params.llama4_scaling->beta}};
  }
  if (params.moe) {
    json["moe"] = {{"num_experts", params.moe->num_experts},
                   {"num_experts_per_tok", params.moe->num_experts_per_tok}};
  }
  if (params.vision) {
    const VisionParams& v = *params.vision;
    nlohmann::ordered_json vision;
    vision["hidden_size"] = v.hidden_size;
    vision["num_channels"] = v.num_channels;
    vision["image_size"] = v.image_size;
    vision["patch_size"] = v.patch_size;
    vision["rope_theta"] = v.rope_theta;
    vision["intermediate_size"] = v.intermediate_size;
    vision["num_hidden_layers"] = v.num_hidden_layers;
    vision["num_attention_heads"] = v.num_attention_heads;
    vision["image_token_id"] = v.image_token_id;
    if (v.image_break_token_id) vision["image_break_token_id"] = *v.image_break_token_id;
    if (v.image_end_token_id) vision["image_end_token_id"] = *v.image_end_token_id;
    if (v.max_image_size) vision["max_image_size"] = *v.max_image_size;
    vision["adapter_bias"] = v.adapter_bias;
    vision["spatial_merge_size"] = v.spatial_merge_size;
    vision["add_pre_mm_projector_layer_norm"] = v.add_pre_mm_projector_layer_norm;
    vision["mm_projector_id"] = v.patch_merger ? "patch_merge" : "";
    json["vision_encoder"] = vision;
  }
  return json.dump(2) + "\n";
}

}  // namespace bora::formats
