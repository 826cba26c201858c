// GGUF metadata -> ModelParams for the `llama` (Mistral, Mixtral, NeMo) and `mistral3`
// (Ministral 3, Devstral Small 2) architectures, and GGUF -> Mistral-native tensor names.
#include "formats/gguf_model.h"

#include <cmath>
#include <regex>

#include "base/error.h"
#include "kernels/quant/ggml_blocks.h"

namespace bora::formats {
namespace {

// Keys under "<arch>." that bora reads. Anything else under the architecture prefix is refused.
constexpr std::string_view kArchKeys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "attention.key_length", "attention.value_length",
    "attention.layer_norm_rms_epsilon", "rope.dimension_count", "rope.freq_base", "vocab_size", "expert_count",
    "expert_used_count", "attention.sliding_window", "rope.scaling.type", "rope.scaling.factor",
    "rope.scaling.original_context_length", "rope.scaling.finetuned", "rope.scaling.yarn_beta_fast",
    "rope.scaling.yarn_beta_slow", "rope.scaling.yarn_log_multiplier", "rope.scaling.attn_factor",
    "attention.temperature_scale", "attention.temperature_length", "expert_gating_func",
    // Old convert.py wrote where the weights came from; GGUF q/k rows are in llama.cpp's order
    // whatever it says.
    "tensor_data_layout"};

// Known architecture-prefixed features of other model families, named in the refusal.
constexpr std::pair<std::string_view, std::string_view> kFamilies[] = {
    {"attention.q_lora_rank", "multi-head latent attention (Mistral Small 4 / Large 3)"},
    {"attention.kv_lora_rank", "multi-head latent attention (Mistral Small 4 / Large 3)"},
    {"expert_shared_count", "shared experts (Mistral Small 4 / Large 3)"},
    {"leading_dense_block_count", "leading dense blocks (DeepSeek-style MoE)"},
    {"attention.sliding_window_pattern", "per-layer sliding-window patterns"},
    {"rope.scaling.yarn_ext_factor", "a YaRN extrapolation factor other than transformers'"},
};

// Top-level prefixes that never change the numbers: descriptions, provenance, quantizer notes.
bool IsHarmlessKey(std::string_view key) {
  for (std::string_view prefix : {"general.", "quantize.", "tokenizer."}) {
    if (key.substr(0, prefix.size()) == prefix) return true;
  }
  return key == "split.no" || key == "split.count" || key == "split.tensors.count";
}

int64_t RequireInt(const GgufHeader& h, const std::string& key, int64_t max_value) {
  const std::optional<uint64_t> value = h.GetUint(key);
  if (!value) throw FormatError(h.file_name + ": required key \"" + key + "\" is missing");
  if (*value == 0 || *value > static_cast<uint64_t>(max_value)) {
    throw FormatError(h.file_name + ": \"" + key + "\" = " + std::to_string(*value) + " is out of range");
  }
  return static_cast<int64_t>(*value);
}

// A per-layer key that llama.cpp allows as an array: accepted when all layers agree.
int64_t LayerUniformInt(const GgufHeader& h, const std::string& key, std::optional<int64_t> fallback,
                        int64_t max_value) {
  const GgufValue* value = h.Find(key);
  if (value != nullptr && value->type == GgufValueType::kArray) {
    const std::vector<double> values = h.GetNumberArray(key);
    if (values.empty()) throw FormatError(h.file_name + ": \"" + key + "\" is an empty array");
    for (double v : values) {
      if (v != values[0]) {
        throw Unsupported(h.file_name + ": \"" + key + "\" differs between layers, which bora does not run");
      }
    }
    if (!(values[0] >= 1) || values[0] > static_cast<double>(max_value) || values[0] != std::floor(values[0])) {
      throw FormatError(h.file_name + ": \"" + key + "\" is out of range");
    }
    return static_cast<int64_t>(values[0]);
  }
  if (value == nullptr && fallback) return *fallback;
  return RequireInt(h, key, max_value);
}

// transformers' get_mscale: 0.1 * m * ln(scale) + 1 for scale > 1, else 1.
double GetMscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

}  // namespace

ModelParams GgufModelParams(const GgufHeader& h) {
  const std::optional<std::string> arch_value = h.GetString("general.architecture");
  if (!arch_value) throw FormatError(h.file_name + ": general.architecture is missing");
  const std::string arch = *arch_value;
  if (arch != "llama" && arch != "mistral3") {
    std::string hint;
    if (arch == "mistral4" || arch == "deepseek2") hint = " (latent attention: Mistral Small 4 / Large 3, not supported yet)";
    if (arch == "clip") hint = " (a vision projector file: bora does not read images from GGUF yet)";
    throw Unsupported(h.file_name + ": GGUF architecture \"" + arch + "\"" + hint +
                      " is not supported; bora reads \"llama\" (Mistral, Mixtral, NeMo) and \"mistral3\" (Ministral 3)");
  }
  if (const std::optional<std::string> type = h.GetString("general.type"); type && *type != "model") {
    throw Unsupported(h.file_name + ": general.type is \"" + *type + "\"; bora reads model GGUFs only (LoRA adapters: "
                      "pass the PEFT safetensors adapter with --lora)");
  }
  if (const std::optional<uint64_t> split = h.GetUint("split.count"); split && *split > 1) {
    throw Unsupported(h.file_name + ": part of a " + std::to_string(*split) + "-file split GGUF; merge the parts first "
                      "(llama-gguf-split --merge FIRST.gguf OUT.gguf)");
  }
  if (const std::optional<uint64_t> qv = h.GetUint("general.quantization_version"); qv && *qv != 2) {
    throw Unsupported(h.file_name + ": general.quantization_version " + std::to_string(*qv) +
                      " (bora reads ggml's version 2 block layouts)");
  }
  const std::string p = arch + ".";
  for (const auto& [key, value] : h.metadata) {
    if (IsHarmlessKey(key)) continue;
    if (key.substr(0, p.size()) != p) {
      throw Unsupported(h.file_name + ": unknown GGUF key \"" + std::string(key) +
                        "\"; bora refuses files it does not fully understand rather than compute wrong answers");
    }
    const std::string_view rest = key.substr(p.size());
    bool known = false;
    for (std::string_view k : kArchKeys) known = known || rest == k;
    if (known) continue;
    for (const auto& [family_key, family] : kFamilies) {
      if (rest == family_key) {
        throw Unsupported(h.file_name + ": \"" + std::string(key) + "\" is " + std::string(family) +
                          ", which bora does not run yet");
      }
    }
    throw Unsupported(h.file_name + ": unknown GGUF key \"" + std::string(key) +
                      "\"; bora refuses files it does not fully understand rather than compute wrong answers");
  }

  ModelParams params;
  params.dim = RequireInt(h, p + "embedding_length", 1 << 16);
  params.n_layers = RequireInt(h, p + "block_count", 1024);
  params.n_heads = LayerUniformInt(h, p + "attention.head_count", std::nullopt, 1024);
  params.n_kv_heads = LayerUniformInt(h, p + "attention.head_count_kv", params.n_heads, 1024);
  params.hidden_dim = LayerUniformInt(h, p + "feed_forward_length", std::nullopt, 1 << 20);
  if (params.dim % params.n_heads != 0 && !h.Find(p + "attention.key_length")) {
    throw FormatError(h.file_name + ": attention.key_length is missing and embedding_length is not a multiple of head_count");
  }
  params.head_dim = h.Find(p + "attention.key_length") ? RequireInt(h, p + "attention.key_length", 512)
                                                        : params.dim / params.n_heads;
  if (h.Find(p + "attention.value_length") && RequireInt(h, p + "attention.value_length", 512) != params.head_dim) {
    throw Unsupported(h.file_name + ": attention.value_length differs from attention.key_length (bora runs equal q/k/v head sizes)");
  }
  if (h.Find(p + "rope.dimension_count") && RequireInt(h, p + "rope.dimension_count", 512) != params.head_dim) {
    throw Unsupported(h.file_name + ": rope.dimension_count " + std::to_string(*h.GetUint(p + "rope.dimension_count")) +
                      " is not the head size " + std::to_string(params.head_dim) + " (partial rotary embeddings)");
  }
  const std::optional<double> eps = h.GetFloat(p + "attention.layer_norm_rms_epsilon");
  if (!eps) throw FormatError(h.file_name + ": required key \"" + p + "attention.layer_norm_rms_epsilon\" is missing");
  params.norm_eps = *eps;
  // llama.cpp's default for a missing freq_base is 10000.
  params.rope_theta = h.GetFloat(p + "rope.freq_base").value_or(10000.0);
  const std::vector<std::string_view> tokens = h.GetStringArray("tokenizer.ggml.tokens");
  if (h.Find(p + "vocab_size")) {
    params.vocab_size = RequireInt(h, p + "vocab_size", 1 << 22);
  } else if (const GgufTensorInfo* embd = h.FindTensor("token_embd.weight"); embd != nullptr && embd->ne.size() == 2) {
    params.vocab_size = embd->ne[1];
  } else {
    params.vocab_size = static_cast<int64_t>(tokens.size());
  }
  if (h.Find(p + "context_length")) params.max_positions = RequireInt(h, p + "context_length", int64_t{1} << 24);
  if (const std::optional<uint64_t> experts = h.GetUint(p + "expert_count"); experts && *experts > 0) {
    MoeParams moe;
    moe.num_experts = RequireInt(h, p + "expert_count", 1024);
    moe.num_experts_per_tok = RequireInt(h, p + "expert_used_count", moe.num_experts);
    // llama.cpp: 1 = softmax (Mixtral); others are other model families.
    if (const std::optional<uint64_t> gating = h.GetUint(p + "expert_gating_func"); gating && *gating != 1) {
      throw Unsupported(h.file_name + ": expert_gating_func " + std::to_string(*gating) + " (bora runs softmax routing)");
    }
    params.moe = moe;
  } else if (h.GetUint(p + "expert_used_count").value_or(0) > 0) {
    throw FormatError(h.file_name + ": expert_used_count without expert_count");
  }
  const int64_t window = h.Find(p + "attention.sliding_window") ? RequireInt(h, p + "attention.sliding_window", int64_t{1} << 24) : 0;
  params.layer_windows.assign(static_cast<size_t>(params.n_layers), window);

  // RoPE scaling: none, linear with factor 1, or YaRN (transformers' semantics; see YarnParams).
  const std::string scaling = h.GetString(p + "rope.scaling.type").value_or("none");
  const double factor = h.GetFloat(p + "rope.scaling.factor").value_or(1.0);
  if (scaling == "yarn") {
    YarnParams yarn;
    yarn.factor = factor;
    if (!(factor >= 1)) throw FormatError(h.file_name + ": rope.scaling.factor must be at least 1 for YaRN");
    yarn.original_max_positions = RequireInt(h, p + "rope.scaling.original_context_length", int64_t{1} << 24);
    yarn.beta_fast = h.GetFloat(p + "rope.scaling.yarn_beta_fast").value_or(32.0);
    yarn.beta_slow = h.GetFloat(p + "rope.scaling.yarn_beta_slow").value_or(1.0);
    // The converter writes mscale_all_dim as yarn_log_multiplier for mistral3 (mscale itself is 1 in
    // every Ministral 3 config); an explicit attn_factor wins as transformers' attention_factor does.
    if (const std::optional<double> attn = h.GetFloat(p + "rope.scaling.attn_factor")) {
      yarn.attention_factor = *attn;
    } else if (const std::optional<double> log_mul = h.GetFloat(p + "rope.scaling.yarn_log_multiplier");
               log_mul && *log_mul != 0) {
      if (arch != "mistral3") {
        throw Unsupported(h.file_name + ": rope.scaling.yarn_log_multiplier on architecture \"" + arch +
                          "\" (DeepSeek's convention, not a Mistral model)");
      }
      yarn.attention_factor = GetMscale(factor, 1.0) / GetMscale(factor, *log_mul);
    } else {
      yarn.attention_factor = GetMscale(factor, 1.0);
    }
    params.yarn = yarn;
  } else if (scaling == "linear" || scaling == "none") {
    if (factor != 1.0) {
      throw Unsupported(h.file_name + ": rope.scaling.type \"" + scaling + "\" with factor " + std::to_string(factor) +
                        " (linear position interpolation) is not supported");
    }
  } else {
    throw Unsupported(h.file_name + ": rope.scaling.type \"" + scaling + "\" is not supported (none or yarn)");
  }
  if (const std::optional<double> beta = h.GetFloat(p + "attention.temperature_scale"); beta && *beta != 0) {
    if (arch != "mistral3") {
      throw Unsupported(h.file_name + ": attention.temperature_scale on architecture \"" + arch + "\"");
    }
    Llama4Scaling temperature;
    temperature.beta = *beta;
    // llama.cpp takes the floor length from the YaRN original context for mistral3.
    const std::optional<uint64_t> length = h.GetUint(p + "attention.temperature_length");
    if (length && *length > 0) {
      temperature.original_max_positions = static_cast<int64_t>(*length);
    } else if (params.yarn) {
      temperature.original_max_positions = params.yarn->original_max_positions;
    } else {
      throw FormatError(h.file_name + ": attention.temperature_scale needs rope.scaling.original_context_length");
    }
    params.llama4_scaling = temperature;
  }
  params.tie_embeddings = h.FindTensor("output.weight") == nullptr;
  ValidateModelParams(params, h.file_name);
  return params;
}

GgufNativeName GgufToNativeName(std::string_view gguf_name, const std::string& file_name) {
  const std::string name(gguf_name);
  if (name == "token_embd.weight") return {"tok_embeddings.weight"};
  if (name == "output.weight") return {"output.weight"};
  if (name == "output_norm.weight") return {"norm.weight"};
  static const std::regex kBlock(R"(blk\.(\d{1,6})\.([a-z_]+)(\.(\d{1,6}))?\.weight)");
  std::smatch match;
  if (std::regex_match(name, match, kBlock)) {
    const std::string layer = "layers." + match[1].str() + ".";
    const std::string part = match[2].str();
    const bool per_expert = match[4].matched;  // old Mixtral files: blk.N.ffn_gate.E.weight
    static const std::pair<const char*, const char*> kMap[] = {
        {"attn_norm", "attention_norm.weight"}, {"ffn_norm", "ffn_norm.weight"},
        {"attn_q", "attention.wq.weight"},      {"attn_k", "attention.wk.weight"},
        {"attn_v", "attention.wv.weight"},      {"attn_output", "attention.wo.weight"},
        {"ffn_gate", "feed_forward.w1.weight"}, {"ffn_down", "feed_forward.w2.weight"},
        {"ffn_up", "feed_forward.w3.weight"},   {"ffn_gate_inp", "feed_forward.gate.weight"}};
    static const std::pair<const char*, const char*> kExperts[] = {
        {"ffn_gate", "w1"}, {"ffn_down", "w2"}, {"ffn_up", "w3"}};
    if (per_expert) {
      for (const auto& [from, to] : kExperts) {
        if (part == from) return {layer + "feed_forward.experts." + match[4].str() + "." + to + ".weight"};
      }
    } else {
      for (const auto& [from, to] : kMap) {
        if (part == from) return {layer + to};
      }
      for (const auto& [from, to] : kExperts) {
        if (part == std::string(from) + "_exps") return {layer + "feed_forward.experts.{e}." + to + ".weight", true};
      }
    }
  }
  if (name == "rope_freqs.weight") {
    throw Unsupported(file_name + ": tensor \"rope_freqs.weight\" (llama-3 rotary frequency factors) is not supported");
  }
  throw FormatError(file_name + ": unexpected tensor \"" + name + "\" (biases, fused or other-model tensors are not "
                    "part of a Mistral model)");
}

uint64_t GgufDecodedBytes(const GgufHeader& header, bool exact) {
  uint64_t total = 0;
  for (const GgufTensorInfo& info : header.tensors) {
    const auto type = static_cast<kernels::GgmlType>(info.type);
    const uint64_t elements = static_cast<uint64_t>(info.NumElements());
    if (type == kernels::GgmlType::kF32 || type == kernels::GgmlType::kF16 || type == kernels::GgmlType::kBF16) {
      total += info.size;
    } else if (exact || info.ne.size() == 1 || info.name.find("ffn_gate_inp") != std::string_view::npos) {
      total += 4 * elements;  // dequantized to f32 (vectors and MoE routers are never packed)
    } else if (type == kernels::GgmlType::kQ8_0 || type == kernels::GgmlType::kQ4_0) {
      total += info.size;  // same bits per weight in bora's panels (rows padded to 16 aside)
    } else {
      total += elements / 32 * 34;  // q8: 8.5 bits per weight
    }
  }
  return total;
}

}  // namespace bora::formats
