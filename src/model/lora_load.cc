// Reading LoRA adapter folders: mistral-finetune's consolidated layout and PEFT's, validated
// key by key against the base model.
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <tuple>

#include "base/error.h"
#include "base/float16.h"
#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "model/lora_adapter.h"

namespace bora::model {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 16 << 20;

enum class Layout { kMistral, kPeft };

// Where a tensor goes: layer, expert (-1: attention or dense feed-forward), target.
using SlotKey = std::tuple<int64_t, int64_t, int>;

struct SlotTensors {
  const formats::TensorInfo* a = nullptr;
  const formats::TensorInfo* b = nullptr;
};

// What the folder's config says about the adapter.
struct AdapterConfig {
  std::optional<int64_t> rank;
  float scaling = 2.0f;
  float dropout = 0.0f;
  std::string instruct_version;
  // Targets the config promises (PEFT target_modules as a list); none: the file decides.
  std::optional<std::array<bool, kLoraTargets>> expected;
};

bool IsFeedForward(LoraTarget target) {
  return target == LoraTarget::kW1 || target == LoraTarget::kW2 || target == LoraTarget::kW3;
}

Json ReadJsonFile(const fs::path& path) {
  std::error_code error;
  const uint64_t size = fs::file_size(path, error);
  if (error) throw IoError(path.string() + ": cannot read: " + error.message());
  if (size > kMaxConfigBytes) {
    throw FormatError(path.string() + ": larger than 16 MiB, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  Json root;
  try {
    root = Json::parse(text.str());
  } catch (const Json::exception& e) {
    throw FormatError(path.string() + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw FormatError(path.string() + ": top level is not a JSON object");
  return root;
}

// A JSON integer (or integral float) in [low, high].
int64_t IntIn(const Json& value, int64_t low, int64_t high, const std::string& what) {
  double number = 0;
  if (value.is_number_integer()) {
    const int64_t integer = value.get<int64_t>();
    if (integer >= low && integer <= high) return integer;
    number = static_cast<double>(integer);
  } else if (value.is_number_float()) {
    number = value.get<double>();
    if (std::isfinite(number) && std::floor(number) == number &&
        number >= static_cast<double>(low) && number <= static_cast<double>(high)) {
      return static_cast<int64_t>(number);
    }
  } else {
    throw FormatError(what + " must be an integer");
  }
  throw FormatError(what + " = " + value.dump() + " is outside [" + std::to_string(low) + ", " +
                    std::to_string(high) + "]");
}

double FiniteNumber(const Json& value, const std::string& what) {
  if (!value.is_number()) throw FormatError(what + " must be a number");
  const double number = value.get<double>();
  if (!std::isfinite(number)) throw FormatError(what + " must be finite");
  return number;
}

bool Present(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

// "v3", "v11": the instruct versions mistral-common names (checked against the list later,
// where the tokenizer layer is visible).
std::string InstructVersionField(const Json& root, const std::string& file) {
  if (!Present(root, kLoraInstructVersionKey)) return "";
  const Json& value = root.at(kLoraInstructVersionKey);
  static const std::regex kVersion(R"(v\d{1,3})");
  if (!value.is_string() || !std::regex_match(value.get<std::string>(), kVersion)) {
    throw FormatError(file + ": \"" + kLoraInstructVersionKey +
                      "\" must be a string like \"v3\", got " + value.dump());
  }
  return value.get<std::string>();
}

// mistral-finetune's params.json: the `lora` block, the instruct version, and the base model
// the adapter was trained for (which must be `base`).
AdapterConfig ReadMistralParams(const fs::path& path, const formats::ModelParams& base) {
  AdapterConfig config;
  if (!fs::exists(path)) return config;
  const std::string file = path.string();
  Json root = ReadJsonFile(path);
  if (Present(root, "lora")) {
    const Json& lora = root.at("lora");
    if (!lora.is_object()) throw FormatError(file + ": \"lora\" must be an object");
    if (Present(lora, "rank"))
      config.rank = IntIn(lora.at("rank"), 1, kMaxLoraRank, file + ": lora.rank");
    if (Present(lora, "scaling")) {
      config.scaling =
          static_cast<float>(FiniteNumber(lora.at("scaling"), file + ": lora.scaling"));
    }
    if (Present(lora, "dropout")) {
      const double dropout = FiniteNumber(lora.at("dropout"), file + ": lora.dropout");
      if (dropout < 0 || dropout >= 1) throw FormatError(file + ": lora.dropout must be in [0, 1)");
      config.dropout = static_cast<float>(dropout);
    }
  }
  config.instruct_version = InstructVersionField(root, file);
  if (!Present(root, "dim")) return config;  // only the lora block: nothing to compare
  root.erase("lora");
  root.erase(kLoraInstructVersionKey);
  const formats::ModelParams trained = formats::ParseMistralParams(root.dump(), file);
  std::string differences;
  auto compare = [&](const char* name, int64_t adapter_value, int64_t base_value) {
    if (adapter_value == base_value) return;
    differences += std::string(differences.empty() ? "" : ", ") + name + " " +
                   std::to_string(adapter_value) + " (base " + std::to_string(base_value) + ")";
  };
  compare("dim", trained.dim, base.dim);
  compare("n_layers", trained.n_layers, base.n_layers);
  compare("head_dim", trained.head_dim, base.head_dim);
  compare("hidden_dim", trained.hidden_dim, base.hidden_dim);
  compare("n_heads", trained.n_heads, base.n_heads);
  compare("n_kv_heads", trained.n_kv_heads, base.n_kv_heads);
  compare("vocab_size", trained.vocab_size, base.vocab_size);
  compare("moe.num_experts", trained.moe ? trained.moe->num_experts : 0,
          base.moe ? base.moe->num_experts : 0);
  if (!differences.empty()) {
    throw FormatError(file + ": the adapter was trained for another base model: " + differences);
  }
  return config;
}

// PEFT's adapter_config.json.
AdapterConfig ReadPeftConfig(const fs::path& path) {
  const std::string file = path.string();
  const Json root = ReadJsonFile(path);
  AdapterConfig config;
  if (Present(root, "peft_type") && root.at("peft_type") != "LORA") {
    throw Unsupported(file + ": peft_type " + root.at("peft_type").dump() +
                      " is not supported (LoRA only)");
  }
  auto refuse_if = [&](bool condition, const std::string& what) {
    if (condition) throw Unsupported(file + ": " + what + " is not supported");
  };
  refuse_if(Present(root, "use_dora") && root.at("use_dora") == true, "use_dora (DoRA)");
  refuse_if(Present(root, "fan_in_fan_out") && root.at("fan_in_fan_out") == true,
            "fan_in_fan_out (transposed weights)");
  refuse_if(Present(root, "bias") && root.at("bias") != "none",
            "bias " + root.value("bias", Json()).dump());
  refuse_if(Present(root, "modules_to_save") && !root.at("modules_to_save").empty(),
            "modules_to_save (fully trained extra modules)");
  refuse_if(Present(root, "rank_pattern") && !root.at("rank_pattern").empty(),
            "rank_pattern (per-module ranks)");
  refuse_if(Present(root, "alpha_pattern") && !root.at("alpha_pattern").empty(),
            "alpha_pattern (per-module alphas)");
  refuse_if(Present(root, "layer_replication"), "layer_replication");
  if (!Present(root, "r")) throw FormatError(file + ": \"r\" (the LoRA rank) is missing");
  const int64_t rank = IntIn(root.at("r"), 1, kMaxLoraRank, file + ": r");
  config.rank = rank;
  // PEFT's default lora_alpha is 8.
  const double alpha = Present(root, "lora_alpha")
                           ? FiniteNumber(root.at("lora_alpha"), file + ": lora_alpha")
                           : 8.0;
  const bool rslora = Present(root, "use_rslora") && root.at("use_rslora") == true;
  config.scaling = static_cast<float>(rslora ? alpha / std::sqrt(static_cast<double>(rank))
                                             : alpha / static_cast<double>(rank));
  if (Present(root, "lora_dropout")) {
    const double dropout = FiniteNumber(root.at("lora_dropout"), file + ": lora_dropout");
    if (dropout >= 0 && dropout < 1) config.dropout = static_cast<float>(dropout);
  }
  config.instruct_version = InstructVersionField(root, file);
  if (Present(root, "target_modules") && root.at("target_modules").is_array()) {
    std::array<bool, kLoraTargets> expected{};
    static const std::pair<const char*, LoraTarget> kModules[] = {
        {"q_proj", LoraTarget::kWq},    {"k_proj", LoraTarget::kWk},
        {"v_proj", LoraTarget::kWv},    {"o_proj", LoraTarget::kWo},
        {"gate_proj", LoraTarget::kW1}, {"down_proj", LoraTarget::kW2},
        {"up_proj", LoraTarget::kW3},   {"w1", LoraTarget::kW1},
        {"w2", LoraTarget::kW2},        {"w3", LoraTarget::kW3}};
    for (const Json& module : root.at("target_modules")) {
      if (!module.is_string()) throw FormatError(file + ": target_modules must list strings");
      const std::string name = module.get<std::string>();
      bool known = false;
      for (const auto& entry : kModules) {
        if (name == entry.first) {
          expected[static_cast<int>(entry.second)] = true;
          known = true;
        }
      }
      if (!known) {
        throw Unsupported(file + ": target module \"" + name +
                          "\" is not supported; bora applies LoRA to q_proj, k_proj, v_proj, "
                          "o_proj and the feed-forward projections only");
      }
    }
    config.expected = expected;
  }
  return config;
}

// The tensor name of a slot in the file's own naming, for messages.
std::string KeyName(Layout layout, int64_t layer, int64_t expert, LoraTarget target, bool is_b) {
  const std::string suffix = is_b ? ".lora_B.weight" : ".lora_A.weight";
  const std::string l = std::to_string(layer);
  if (layout == Layout::kMistral) {
    if (!IsFeedForward(target))
      return "layers." + l + ".attention." + LoraTargetName(target) + suffix;
    return "layers." + l + ".feed_forward." +
           (expert >= 0 ? "experts." + std::to_string(expert) + "." : "") + LoraTargetName(target) +
           suffix;
  }
  static const char* kHf[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                              "self_attn.o_proj", "mlp.gate_proj",    "mlp.down_proj",
                              "mlp.up_proj"};
  const std::string prefix = "base_model.model.model.layers." + l + ".";
  if (expert >= 0) {
    return prefix + "block_sparse_moe.experts." + std::to_string(expert) + "." +
           LoraTargetName(target) + suffix;
  }
  return prefix + kHf[static_cast<int>(target)] + suffix;
}

// Parses a tensor name into its slot; false for names that are no LoRA A/B of a known linear.
bool ParseKey(Layout layout, const std::string& name, int64_t& layer, int64_t& expert,
              LoraTarget& target, bool& is_b) {
  static const std::regex kMistral(
      R"(layers\.(\d{1,6})\.(?:attention\.(wq|wk|wv|wo)|feed_forward\.(?:experts\.(\d{1,6})\.)?(w1|w2|w3))\.lora_(A|B)\.weight)");
  static const std::regex kPeft(
      R"(base_model\.model\.model\.layers\.(\d{1,6})\.(?:self_attn\.(q|k|v|o)_proj|mlp\.(gate|down|up)_proj|block_sparse_moe\.experts\.(\d{1,6})\.(w1|w2|w3))\.lora_(A|B)\.weight)");
  std::smatch m;
  if (layout == Layout::kMistral) {
    if (!std::regex_match(name, m, kMistral)) return false;
    layer = std::stoll(m[1].str());
    expert = m[3].matched ? std::stoll(m[3].str()) : -1;
    const std::string which = m[2].matched ? m[2].str() : m[4].str();
    static const char* kNames[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
    for (int t = 0; t < kLoraTargets; ++t) {
      if (which == kNames[t]) target = static_cast<LoraTarget>(t);
    }
    is_b = m[5].str() == "B";
    return true;
  }
  if (!std::regex_match(name, m, kPeft)) return false;
  layer = std::stoll(m[1].str());
  expert = -1;
  if (m[2].matched) {
    const char c = m[2].str()[0];
    target = c == 'q'   ? LoraTarget::kWq
             : c == 'k' ? LoraTarget::kWk
             : c == 'v' ? LoraTarget::kWv
                        : LoraTarget::kWo;
  } else if (m[3].matched) {
    const std::string which = m[3].str();
    target = which == "gate"   ? LoraTarget::kW1
             : which == "down" ? LoraTarget::kW2
                               : LoraTarget::kW3;
  } else {
    expert = std::stoll(m[4].str());
    const std::string which = m[5].str();
    target = which == "w1" ? LoraTarget::kW1 : which == "w2" ? LoraTarget::kW2 : LoraTarget::kW3;
  }
  is_b = m[6].str() == "B";
  return true;
}

// Every element of a BF16/F16/F32 tensor as f32 (byte-wise reads: data may be unaligned).
std::vector<float> ToF32(const formats::TensorView& view, const std::string& file,
                         const std::string& key) {
  const size_t count = static_cast<size_t>(view.NumElements());
  std::vector<float> values(count);
  const uint8_t* bytes = view.bytes.data();
  for (size_t i = 0; i < count; ++i) {
    if (view.dtype == DType::kF32) {
      std::memcpy(&values[i], bytes + 4 * i, 4);
    } else {
      uint16_t bits = 0;
      std::memcpy(&bits, bytes + 2 * i, 2);
      values[i] = view.dtype == DType::kBF16 ? Bf16ToF32(bits) : F16ToF32(bits);
    }
    if (!std::isfinite(values[i])) {
      throw FormatError(file + ": tensor \"" + key +
                        "\" holds a non-finite value (NaN or infinity) at element " +
                        std::to_string(i));
    }
  }
  return values;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Builds the adapter from one safetensors file of `layout`.
LoraAdapter BuildAdapter(Layout layout, const formats::SafetensorsFile& file,
                         const AdapterConfig& config, const formats::ModelParams& base) {
  const std::string& path = file.path();
  std::map<SlotKey, SlotTensors> slots;
  for (const formats::TensorInfo& info : file.header().tensors) {
    int64_t layer = 0, expert = -1;
    LoraTarget target = LoraTarget::kWq;
    bool is_b = false;
    if (!ParseKey(layout, info.name, layer, expert, target, is_b)) {
      throw FormatError(path + ": unexpected tensor \"" + info.name +
                        "\"; expected LoRA A/B matrices named like \"" +
                        KeyName(layout, 0, -1, LoraTarget::kWq, false) + "\"");
    }
    if (layer >= base.n_layers) {
      throw FormatError(path + ": tensor \"" + info.name + "\" belongs to layer " +
                        std::to_string(layer) + " but the base model has " +
                        std::to_string(base.n_layers) + " layers");
    }
    if (IsFeedForward(target)) {
      if (base.moe && expert < 0) {
        throw FormatError(
            path + ": tensor \"" + info.name +
            "\" adapts a dense feed-forward, but the base model is a mixture of experts");
      }
      if (!base.moe && expert >= 0) {
        throw FormatError(path + ": tensor \"" + info.name +
                          "\" adapts an expert, but the base model is dense");
      }
      if (base.moe && expert >= base.moe->num_experts) {
        throw FormatError(path + ": tensor \"" + info.name + "\" adapts expert " +
                          std::to_string(expert) + " but the base model has " +
                          std::to_string(base.moe->num_experts) + " experts");
      }
    }
    if (info.dtype_name != "F32" && info.dtype_name != "BF16" && info.dtype_name != "F16") {
      throw FormatError(path + ": tensor \"" + info.name + "\" has dtype " + info.dtype_name +
                        "; LoRA matrices must be BF16, F16 or F32");
    }
    SlotTensors& slot = slots[SlotKey{layer, expert, static_cast<int>(target)}];
    (is_b ? slot.b : slot.a) = &info;
  }
  if (slots.empty()) throw FormatError(path + ": holds no LoRA tensors");

  // Which targets every layer (and expert) must have: the config's list, else what the file has.
  std::array<bool, kLoraTargets> wanted{};
  if (config.expected) {
    wanted = *config.expected;
  } else {
    for (const auto& entry : slots) wanted[std::get<2>(entry.first)] = true;
  }
  int64_t rank = config.rank.value_or(0);
  LoraAdapter adapter;
  adapter.scaling = config.scaling;
  adapter.dropout = config.dropout;
  adapter.instruct_version = config.instruct_version;
  adapter.layers.resize(static_cast<size_t>(base.n_layers));
  for (LoraLayer& layer : adapter.layers) {
    if (base.moe) layer.experts.resize(static_cast<size_t>(base.moe->num_experts));
  }
  for (int64_t layer = 0; layer < base.n_layers; ++layer) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraTarget target = static_cast<LoraTarget>(t);
      const bool per_expert = IsFeedForward(target) && base.moe;
      const int64_t experts = per_expert ? base.moe->num_experts : 1;
      for (int64_t e = 0; e < experts; ++e) {
        const int64_t expert = per_expert ? e : -1;
        auto it = slots.find(SlotKey{layer, expert, t});
        if (it == slots.end()) {
          if (!wanted[t]) continue;
          throw FormatError(path + ": tensor \"" + KeyName(layout, layer, expert, target, false) +
                            "\" is missing (the adapter " +
                            (config.expected ? std::string("config lists this module")
                                             : std::string("adapts this linear in other layers")) +
                            ")");
        }
        if (!wanted[t]) {
          throw FormatError(path + ": tensor \"" + KeyName(layout, layer, expert, target, false) +
                            "\" adapts a module that target_modules does not list");
        }
        const SlotTensors& pair = it->second;
        for (bool is_b : {false, true}) {
          if ((is_b ? pair.b : pair.a) == nullptr) {
            throw FormatError(path + ": tensor \"" + KeyName(layout, layer, expert, target, is_b) +
                              "\" is missing (its " + (is_b ? "lora_A" : "lora_B") +
                              " is present)");
          }
        }
        const auto [in, out] = LoraTargetShape(base, target);
        const std::vector<int64_t>& a_shape = pair.a->shape;
        const std::vector<int64_t>& b_shape = pair.b->shape;
        const std::string a_key = pair.a->name, b_key = pair.b->name;
        if (a_shape.size() != 2 || a_shape[1] != in || a_shape[0] < 1 ||
            a_shape[0] > kMaxLoraRank) {
          throw FormatError(path + ": tensor \"" + a_key + "\" has shape " + ShapeText(a_shape) +
                            ", expected [rank, " + std::to_string(in) + "] with rank in [1, " +
                            std::to_string(kMaxLoraRank) + "]");
        }
        if (rank == 0) rank = a_shape[0];
        if (a_shape[0] != rank) {
          throw FormatError(path + ": tensor \"" + a_key + "\" has rank " +
                            std::to_string(a_shape[0]) + ", but " +
                            (config.rank ? "the config says rank " : "other matrices have rank ") +
                            std::to_string(rank));
        }
        if (b_shape.size() != 2 || b_shape[0] != out || b_shape[1] != rank) {
          throw FormatError(path + ": tensor \"" + b_key + "\" has shape " + ShapeText(b_shape) +
                            ", expected [" + std::to_string(out) + ", " + std::to_string(rank) +
                            "]");
        }
        LoraMatrix& m = *FindLoraMatrix(adapter.layers[static_cast<size_t>(layer)], expert, target);
        m.rank = rank;
        m.in = in;
        m.out = out;
        m.a = ToF32(file.View(*pair.a), path, a_key);
        m.b = ToF32(file.View(*pair.b), path, b_key);
        if (layout == Layout::kPeft && (target == LoraTarget::kWq || target == LoraTarget::kWk)) {
          // B's output rows follow HF's half-split RoPE order; back to interleaved pairs.
          const int64_t heads = target == LoraTarget::kWq ? base.n_heads : base.n_kv_heads;
          const std::vector<uint8_t> native = formats::UnpermuteHfRope(
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m.b.data()),
                                       m.b.size() * sizeof(float)),
              heads, base.head_dim, rank, sizeof(float));
          std::memcpy(m.b.data(), native.data(), native.size());
        }
      }
    }
  }
  adapter.rank = rank;
  ValidateLoraAdapter(adapter, base);  // guards the invariants above
  adapter.fingerprint = LoraFingerprint(adapter);
  return adapter;
}

}  // namespace

LoraAdapter LoadLoraAdapter(const std::string& dir_text, const formats::ModelParams& base) {
  fs::path dir(dir_text);
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    throw IoError(dir_text +
                  ": not a LoRA adapter folder (expected a directory with lora.safetensors "
                  "or adapter_config.json)");
  }
  // A mistral-finetune checkpoint folder: the adapter lives in consolidated/.
  if (!fs::exists(dir / "lora.safetensors") && !fs::exists(dir / "adapter_config.json") &&
      fs::exists(dir / "consolidated" / "lora.safetensors")) {
    dir /= "consolidated";
  }
  if (fs::exists(dir / "lora.safetensors")) {
    const AdapterConfig config = ReadMistralParams(dir / "params.json", base);
    const formats::SafetensorsFile file =
        formats::SafetensorsFile::Open((dir / "lora.safetensors").string());
    return BuildAdapter(Layout::kMistral, file, config, base);
  }
  if (fs::exists(dir / "adapter_config.json")) {
    const AdapterConfig config = ReadPeftConfig(dir / "adapter_config.json");
    const fs::path weights = dir / "adapter_model.safetensors";
    if (!fs::exists(weights)) {
      if (fs::exists(dir / "adapter_model.bin")) {
        throw Unsupported(
            (dir / "adapter_model.bin").string() +
            ": PyTorch pickle adapters are not loaded (unsafe and unportable); save the "
            "adapter as adapter_model.safetensors (PEFT: save_pretrained(..., "
            "safe_serialization=True))");
      }
      throw IoError(dir.string() + ": adapter_config.json found but no adapter_model.safetensors");
    }
    const formats::SafetensorsFile file = formats::SafetensorsFile::Open(weights.string());
    return BuildAdapter(Layout::kPeft, file, config, base);
  }
  throw IoError(
      dir_text +
      ": no lora.safetensors (mistral-finetune) or adapter_config.json (PEFT) in the folder");
}

}  // namespace bora::model
