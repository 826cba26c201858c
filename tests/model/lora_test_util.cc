// Helpers for LoRA tests.
#include "model/lora_test_util.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/float16.h"
#include "formats/safetensors_writer.h"

namespace bora::testing {

model::LoraAdapter RandomAdapter(const formats::ModelParams& params, int64_t rank, float scaling,
                                 uint32_t seed, float b_std, bool bf16_values) {
  model::LoraAdapter adapter = model::NewLoraAdapter(params, rank, scaling);
  std::mt19937 random(seed);
  adapter.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    std::normal_distribution<float> a_dist(0.0f, 1.0f / std::sqrt(static_cast<float>(m.in)));
    for (float& value : m.a) value = a_dist(random);
    if (b_std > 0) {
      std::normal_distribution<float> b_dist(0.0f, b_std);
      for (float& value : m.b) value = b_dist(random);
    }
    if (bf16_values) {
      for (std::vector<float>* values : {&m.a, &m.b}) {
        for (float& value : *values) value = Bf16ToF32(F32ToBf16(value));
      }
    }
  });
  adapter.fingerprint = model::LoraFingerprint(adapter);
  return adapter;
}

std::vector<float> PromptLogits(model::Transformer& model, const std::vector<int32_t>& tokens,
                                const model::LoraAdapter* lora) {
  model::ContiguousKvCache cache = model.NewCache();
  std::vector<float> logits(tokens.size() * static_cast<size_t>(model.params().vocab_size));
  model.Forward(tokens, cache, logits, true, lora);
  return logits;
}

void WritePeftAdapter(const model::LoraAdapter& adapter, const formats::ModelParams& params,
                      const std::string& dir, bool permute) {
  std::filesystem::create_directories(dir);
  static const char* kHf[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                              "self_attn.o_proj", "mlp.gate_proj",    "mlp.down_proj",
                              "mlp.up_proj"};
  std::vector<formats::TensorSpec> specs;
  std::vector<std::vector<float>> data;
  for (size_t layer = 0; layer < adapter.layers.size(); ++layer) {
    const int64_t experts = params.moe ? params.moe->num_experts : 0;
    for (int t = 0; t < model::kLoraTargets; ++t) {
      const auto target = static_cast<model::LoraTarget>(t);
      const bool ffn = t >= 4;
      for (int64_t e = (ffn && experts > 0) ? 0 : -1; e < (ffn && experts > 0 ? experts : 0); ++e) {
        const model::LoraMatrix& m = *model::FindLoraMatrix(adapter.layers[layer], e, target);
        if (m.empty()) continue;
        const std::string base = "base_model.model.model.layers." + std::to_string(layer) + "." +
                                 (e >= 0 ? "block_sparse_moe.experts." + std::to_string(e) + "." +
                                               model::LoraTargetName(target)
                                         : std::string(kHf[t]));
        std::vector<float> b = m.b;
        if (permute && (target == model::LoraTarget::kWq || target == model::LoraTarget::kWk)) {
          // HF row h*d + c*d/2 + i = native row h*d + 2i + c.
          const int64_t heads =
              target == model::LoraTarget::kWq ? params.n_heads : params.n_kv_heads;
          const int64_t d = params.head_dim;
          for (int64_t h = 0; h < heads; ++h) {
            for (int64_t i = 0; i < d / 2; ++i) {
              for (int64_t c = 0; c < 2; ++c) {
                std::memcpy(b.data() + (h * d + c * d / 2 + i) * m.rank,
                            m.b.data() + (h * d + 2 * i + c) * m.rank, sizeof(float) * m.rank);
              }
            }
          }
        }
        specs.push_back({base + ".lora_A.weight", DType::kF32, {m.rank, m.in}});
        data.push_back(m.a);
        specs.push_back({base + ".lora_B.weight", DType::kF32, {m.out, m.rank}});
        data.push_back(std::move(b));
      }
    }
  }
  formats::SafetensorsWriter writer(dir + "/adapter_model.safetensors", specs);
  for (const auto& values : data) {
    writer.Append(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                           values.size() * sizeof(float)));
  }
  writer.Finish();
  nlohmann::json modules =
      params.moe ? nlohmann::json{"q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"}
                 : nlohmann::json{"q_proj",    "k_proj",    "v_proj", "o_proj",
                                  "gate_proj", "down_proj", "up_proj"};
  const nlohmann::json config = {{"peft_type", "LORA"},
                                 {"r", adapter.rank},
                                 {"lora_alpha", adapter.scaling * static_cast<float>(adapter.rank)},
                                 {"lora_dropout", 0.05},
                                 {"bias", "none"},
                                 {"target_modules", modules},
                                 {"task_type", "CAUSAL_LM"},
                                 {"modules_to_save", nullptr},
                                 {"use_rslora", false},
                                 {"use_dora", false}};
  std::ofstream(dir + "/adapter_config.json") << config.dump(2);
}

double MaxAbsDifference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return worst;
}

}  // namespace bora::testing
