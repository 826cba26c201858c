// Parsing and validation of params.json / config.json.
#include "formats/model_params.h"

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
    params.moe = MoeParams{reader.Int(moe, "num_experts", "moe."),
                           reader.Int(moe, "num_experts_per_tok", "moe.")};
  }
  ValidateModelParams(params, file_name);
  return params;
}

ModelParams ParseHfConfig(std::string_view json_text, const std::string& file_name) {
  ConfigReader reader(json_text, file_name);
  const Json& root = reader.root();
  std::string architecture;
  if (reader.Has("architectures") && root.at("architectures").is_array() &&
      !root.at("architectures").empty() && root.at("architectures")[0].is_string()) {
    architecture = root.at("architectures")[0].get<std::string>();
  } else if (reader.Has("model_type") && root.at("model_type").is_string()) {
    std::string type = root.at("model_type").get<std::string>();
    architecture = type == "mixtral" ? "MixtralForCausalLM" : type == "mistral" ? "MistralForCausalLM" : type;
  }
  bool mixtral = architecture == "MixtralForCausalLM";
  if (!mixtral && architecture != "MistralForCausalLM") {
    throw Unsupported(file_name + ": architecture \"" + architecture +
                      "\" is not supported (expected MistralForCausalLM or MixtralForCausalLM)");
  }
  if (reader.Has("rope_scaling")) throw Unsupported(file_name + ": rope_scaling is not supported");
  if (reader.Has("hidden_act") && root.at("hidden_act") != "silu") {
    throw Unsupported(file_name + ": hidden_act " + root.at("hidden_act").dump() + " is not supported (silu only)");
  }

  ModelParams params;
  params.dim = reader.Int("hidden_size");
  params.n_layers = reader.Int("num_hidden_layers");
  params.n_heads = reader.Int("num_attention_heads");
  // transformers: absent → the class default 8; explicit null → num_attention_heads.
  params.n_kv_heads = !root.contains("num_key_value_heads") ? 8
                      : root.at("num_key_value_heads").is_null() ? params.n_heads
                                                                 : reader.Int("num_key_value_heads");
  params.head_dim = reader.Has("head_dim") ? reader.Int("head_dim") : DefaultHeadDim(reader, params);
  params.hidden_dim = reader.Int("intermediate_size");
  params.vocab_size = reader.Int("vocab_size");
  params.norm_eps = reader.NumberOr("rms_norm_eps", mixtral ? 1e-5 : 1e-6);  // class defaults
  params.rope_theta = reader.NumberOr("rope_theta", mixtral ? 1e6 : 1e4);
  if (reader.Has("max_position_embeddings")) params.max_positions = reader.Int("max_position_embeddings");
  if (root.contains("tie_word_embeddings") && root.at("tie_word_embeddings").is_boolean()) {
    params.tie_embeddings = root.at("tie_word_embeddings").get<bool>();
  }
  // MistralConfig defaults sliding_window to 4096 when the key is absent; MixtralConfig to None.
  int64_t window = 0;
  if (root.contains("sliding_window")) {
    window = WindowValue(reader, root.at("sliding_window"), "\"sliding_window\"");
  } else if (!mixtral) {
    window = 4096;
  }
  if (params.n_layers > 0 && params.n_layers <= kMaxLayers) params.layer_windows.assign(params.n_layers, window);
  if (mixtral) {
    params.moe = MoeParams{reader.IntOr("num_local_experts", 8), reader.IntOr("num_experts_per_tok", 2)};
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
  if (params.moe) {
    json["moe"] = {{"num_experts", params.moe->num_experts},
                   {"num_experts_per_tok", params.moe->num_experts_per_tok}};
  }
  return json.dump(2) + "\n";
}

}  // namespace bora::formats
