// Helpers for model tests.
#include "model/model_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "kernels/activation.h"
#include "model/random_model.h"
#include "model/transformer.h"

namespace bora::testing {

namespace fs = std::filesystem;

formats::ModelParams SmallParams() {
  formats::ModelParams p = model::PresetParams("tiny");
  p.dim = 64;
  p.n_layers = 2;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.head_dim = 16;
  p.hidden_dim = 128;
  p.vocab_size = 300;
  p.layer_windows.assign(p.n_layers, 0);
  return p;
}

void MakeModel(const formats::ModelParams& params, uint64_t seed, const std::string& dir) {
  ThreadPool pool(2);
  model::WriteRandomModel(params, seed, dir, pool, /*show_progress=*/false);
}

void ConvertToHf(const std::string& native_dir, const std::string& hf_dir) {
  formats::ModelFolder folder = formats::InspectModelFolder(native_dir);
  const formats::ModelParams& p = folder.params;
  formats::SafetensorsFile native = formats::SafetensorsFile::Open(folder.weight_files.at(0));
  auto hf_name = [&](const std::string& name) -> std::string {
    if (name == "tok_embeddings.weight") return "model.embed_tokens.weight";
    if (name == "norm.weight") return "model.norm.weight";
    if (name == "output.weight") return "lm_head.weight";
    std::string rest = name.substr(name.find('.', 7) + 1);  // after "layers.N."
    std::string prefix = "model." + name.substr(0, name.size() - rest.size());
    const std::pair<const char*, const char*> map[] = {
        {"attention_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attention.wq.weight", "self_attn.q_proj.weight"},  {"attention.wk.weight", "self_attn.k_proj.weight"},
        {"attention.wv.weight", "self_attn.v_proj.weight"},  {"attention.wo.weight", "self_attn.o_proj.weight"},
        {"feed_forward.w1.weight", "mlp.gate_proj.weight"},  {"feed_forward.w2.weight", "mlp.down_proj.weight"},
        {"feed_forward.w3.weight", "mlp.up_proj.weight"},    {"feed_forward.gate.weight", "block_sparse_moe.gate.weight"}};
    for (const auto& [from, to] : map) {
      if (rest == from) return prefix + to;
    }
    if (rest.rfind("feed_forward.experts.", 0) == 0) return prefix + "block_sparse_moe." + rest.substr(13);
    throw std::runtime_error("no HF name for " + name);
  };
  std::vector<formats::TensorSpec> specs;
  for (const auto& info : native.header().tensors) {
    specs.push_back({hf_name(info.name), *ParseComputeDType(info.dtype_name), info.shape});
  }
  fs::create_directories(hf_dir);
  formats::SafetensorsWriter writer(hf_dir + "/model.safetensors", specs);
  for (const auto& info : native.header().tensors) {
    formats::TensorView view = native.View(info);
    bool is_q = info.name.find("attention.wq") != std::string::npos;
    bool is_k = info.name.find("attention.wk") != std::string::npos;
    if (!is_q && !is_k) {
      writer.Append(view.bytes);
      continue;
    }
    // HF row h*d + c*d/2 + i = native row h*d + 2i + c.
    const int64_t heads = is_q ? p.n_heads : p.n_kv_heads, d = p.head_dim;
    const size_t row_bytes = view.bytes.size() / static_cast<size_t>(heads * d);
    std::vector<uint8_t> permuted(view.bytes.size());
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < d / 2; ++i) {
        for (int64_t c = 0; c < 2; ++c) {
          std::memcpy(permuted.data() + (h * d + c * d / 2 + i) * row_bytes,
                      view.bytes.data() + (h * d + 2 * i + c) * row_bytes, row_bytes);
        }
      }
    }
    writer.Append(permuted);
  }
  writer.Finish();
  bool uniform = std::all_of(p.layer_windows.begin(), p.layer_windows.end(),
                             [&](int64_t w) { return w == p.layer_windows[0]; });
  if (!uniform) throw std::runtime_error("HF configs cannot express per-layer windows");
  nlohmann::json config = {
      {"architectures", {p.moe ? "MixtralForCausalLM" : "MistralForCausalLM"}},
      {"hidden_size", p.dim},
      {"intermediate_size", p.hidden_dim},
      {"num_hidden_layers", p.n_layers},
      {"num_attention_heads", p.n_heads},
      {"num_key_value_heads", p.n_kv_heads},
      {"head_dim", p.head_dim},
      {"vocab_size", p.vocab_size},
      {"rms_norm_eps", p.norm_eps},
      {"rope_theta", p.rope_theta},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", false},
      {"sliding_window", p.layer_windows[0] > 0 ? nlohmann::json(p.layer_windows[0]) : nlohmann::json(nullptr)}};
  if (p.moe) {
    config["num_local_experts"] = p.moe->num_experts;
    config["num_experts_per_tok"] = p.moe->num_experts_per_tok;
  }
  std::ofstream(hf_dir + "/config.json") << config.dump(2);
}

std::vector<float> EngineLogits(const std::string& dir, const std::vector<int32_t>& tokens, int64_t step) {
  model::LoadOptions options;
  options.context = static_cast<int64_t>(tokens.size());
  options.threads = 2;
  auto engine = model::LoadModel(dir, options);
  const int64_t vocab = engine->params().vocab_size;
  const int64_t count = static_cast<int64_t>(tokens.size());
  std::vector<float> logits(static_cast<size_t>(count * vocab));
  model::ContiguousKvCache cache = engine->NewCache();
  for (int64_t start = 0; start < count; start += step) {
    int64_t n = std::min(step, count - start);
    engine->Forward(std::span<const int32_t>(tokens).subspan(start, n), cache,
                    std::span<float>(logits).subspan(start * vocab), true);
  }
  return logits;
}

std::vector<int32_t> RandomTokens(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<int32_t> tokens(count);
  for (int32_t& id : tokens) id = static_cast<int32_t>(random() % static_cast<uint32_t>(vocab));
  return tokens;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

std::vector<int32_t> GreedyTokens(model::Transformer& engine, const std::vector<int32_t>& prompt, size_t count) {
  model::ContiguousKvCache cache = engine.NewCache();
  const int64_t vocab = engine.params().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  engine.Forward(prompt, cache, logits, false);
  std::vector<int32_t> out;
  while (out.size() < count) {
    out.push_back(static_cast<int32_t>(kernels::ArgMax(logits.data(), vocab)));
    if (out.size() < count) engine.Forward(std::span<const int32_t>(&out.back(), 1), cache, logits, false);
  }
  return out;
}

}  // namespace bora::testing
