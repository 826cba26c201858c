// Deterministic, seeded random-weight model folders.
#include "model/random_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/error.h"
#include "base/float16.h"
#include "base/progress.h"
#include "base/random.h"
#include "formats/safetensors_writer.h"

namespace bora::model {
namespace {

namespace fs = std::filesystem;

// Values are generated in blocks, each seeded from (tensor seed, block index), so threads can
// fill blocks in any order and the bytes stay the same.
constexpr int64_t kBlockElements = 1 << 16;
constexpr int64_t kBlocksPerBatch = 256;  // 16 Mi elements (32 MiB of BF16) per write

uint64_t HashName(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

// xoshiro256** seeded by SplitMix64; standard normals by Box-Muller in double precision.
class NormalGenerator {
 public:
  explicit NormalGenerator(uint64_t seed) : bits_(seed) {}
  double Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = (static_cast<double>(bits_.Next() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    double u2 = bits_.Uniform();                                              // [0, 1)
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 2.0 * M_PI * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  Xoshiro256 bits_;
  double spare_ = 0;
  bool has_spare_ = false;
};

struct InitRule {
  double mean = 0;
  double stddev = 1;
};

struct PlannedTensor {
  formats::TensorSpec spec;
  InitRule rule;
};

std::vector<PlannedTensor> PlanTensors(const formats::ModelParams& p) {
  const double attention_in = 1.0 / std::sqrt(static_cast<double>(p.dim));
  const double residual_scale = 1.0 / std::sqrt(2.0 * static_cast<double>(p.n_layers));
  const InitRule norm{1.0, 0.1};
  std::vector<PlannedTensor> plan;
  auto add = [&](std::string name, std::vector<int64_t> shape, InitRule rule) {
    plan.push_back({formats::TensorSpec{std::move(name), DType::kBF16, std::move(shape)}, rule});
  };
  const int64_t q_rows = p.n_heads * p.head_dim;
  const int64_t kv_rows = p.n_kv_heads * p.head_dim;
  add("tok_embeddings.weight", {p.vocab_size, p.dim}, {0, 0.02});
  for (int64_t i = 0; i < p.n_layers; ++i) {
    const std::string prefix = "layers." + std::to_string(i) + ".";
    add(prefix + "attention_norm.weight", {p.dim}, norm);
    add(prefix + "attention.wq.weight", {q_rows, p.dim}, {0, attention_in});
    add(prefix + "attention.wk.weight", {kv_rows, p.dim}, {0, attention_in});
    add(prefix + "attention.wv.weight", {kv_rows, p.dim}, {0, attention_in});
    add(prefix + "attention.wo.weight", {p.dim, q_rows},
        {0, residual_scale / std::sqrt(static_cast<double>(q_rows))});
    add(prefix + "ffn_norm.weight", {p.dim}, norm);
    auto expert = [&](const std::string& base) {
      add(base + "w1.weight", {p.hidden_dim, p.dim}, {0, attention_in});
      add(base + "w2.weight", {p.dim, p.hidden_dim},
          {0, residual_scale / std::sqrt(static_cast<double>(p.hidden_dim))});
      add(base + "w3.weight", {p.hidden_dim, p.dim}, {0, attention_in});
    };
    if (p.moe) {
      add(prefix + "feed_forward.gate.weight", {p.moe->num_experts, p.dim}, {0, attention_in});
      for (int64_t e = 0; e < p.moe->num_experts; ++e) {
        expert(prefix + "feed_forward.experts." + std::to_string(e) + ".");
      }
    } else {
      expert(prefix + "feed_forward.");
    }
  }
  add("norm.weight", {p.dim}, norm);
  add("output.weight", {p.vocab_size, p.dim}, {0, attention_in});
  return plan;
}

}  // namespace

formats::ModelParams PresetParams(const std::string& preset) {
  formats::ModelParams p;
  if (preset == "tiny") {
    p.dim = 256, p.n_layers = 4, p.n_heads = 8, p.n_kv_heads = 2, p.head_dim = 32, p.hidden_dim = 768;
  } else if (preset == "1b") {
    p.dim = 2048, p.n_layers = 22, p.n_heads = 32, p.n_kv_heads = 4, p.head_dim = 64, p.hidden_dim = 5632;
  } else if (preset == "mistral-7b") {
    p.dim = 4096, p.n_layers = 32, p.n_heads = 32, p.n_kv_heads = 8, p.head_dim = 128, p.hidden_dim = 14336;
  } else {
    throw InvalidArgument("unknown preset \"" + preset + "\" (expected tiny, 1b or mistral-7b)");
  }
  p.vocab_size = 32768;
  p.norm_eps = 1e-5;
  p.rope_theta = 1e6;
  p.layer_windows.assign(p.n_layers, 0);
  return p;
}

void WriteRandomModel(const formats::ModelParams& params, uint64_t seed, const std::string& out_dir,
                      ThreadPool& pool, bool show_progress) {
  formats::ValidateModelParams(params, "model parameters");
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error) throw IoError(out_dir + ": cannot create folder: " + error.message());

  std::vector<PlannedTensor> plan = PlanTensors(params);
  std::vector<formats::TensorSpec> specs;
  for (const PlannedTensor& tensor : plan) specs.push_back(tensor.spec);
  formats::SafetensorsWriter writer((fs::path(out_dir) / "consolidated.safetensors").string(), specs);
  std::unique_ptr<ProgressBar> progress;
  if (show_progress) progress = std::make_unique<ProgressBar>("make-model", writer.total_data_bytes());

  std::vector<uint16_t> batch(static_cast<size_t>(kBlockElements * kBlocksPerBatch));
  for (const PlannedTensor& tensor : plan) {
    const uint64_t tensor_seed = seed ^ HashName(tensor.spec.name);
    const int64_t elements = static_cast<int64_t>(tensor.spec.ByteSize() / 2);
    const int64_t blocks = (elements + kBlockElements - 1) / kBlockElements;
    for (int64_t first_block = 0; first_block < blocks; first_block += kBlocksPerBatch) {
      const int64_t batch_blocks = std::min(kBlocksPerBatch, blocks - first_block);
      pool.ParallelFor(batch_blocks, [&](int64_t begin, int64_t end, int) {
        for (int64_t b = begin; b < end; ++b) {
          uint64_t block_seed_state = tensor_seed + static_cast<uint64_t>(first_block + b) * 0x9e3779b97f4a7c15ull;
          NormalGenerator normal(SplitMix64(block_seed_state));
          const int64_t start = (first_block + b) * kBlockElements;
          const int64_t count = std::min(kBlockElements, elements - start);
          uint16_t* out = batch.data() + b * kBlockElements;
          for (int64_t i = 0; i < count; ++i) {
            out[i] = F32ToBf16(static_cast<float>(tensor.rule.mean + tensor.rule.stddev * normal.Next()));
          }
        }
      });
      const int64_t batch_elements = std::min(batch_blocks * kBlockElements, elements - first_block * kBlockElements);
      std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(batch.data()),
                                     static_cast<size_t>(batch_elements) * 2);
      writer.Append(bytes);
      if (progress) progress->Advance(bytes.size());
    }
  }
  writer.Finish();
  if (progress) progress->Finish();
  std::ofstream params_file(fs::path(out_dir) / "params.json");
  params_file << formats::MistralParamsJson(params);
  if (!params_file) throw IoError(out_dir + "/params.json: write failed");
}

}  // namespace bora::model
