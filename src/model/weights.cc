// Mapping of checkpoint tensors onto per-layer weight views.
#include "model/weights.h"

#include "kernels/convert.h"

namespace bora::model {
namespace {

class WeightCollector {
 public:
  explicit WeightCollector(const formats::CheckpointTensors& tensors) : tensors_(tensors) {}

  MatrixView Matrix(const std::string& name, int64_t rows, int64_t cols) {
    used_.push_back(name);
    return tensors_.Get(name, {rows, cols}).AsMatrix();
  }

  std::vector<float> Vector(const std::string& name, int64_t size) {
    used_.push_back(name);
    formats::TensorView view = tensors_.Get(name, {size});
    std::vector<float> values(size);
    kernels::RowToF32(view.dtype, view.bytes.data(), values.data(), size);
    return values;
  }

  const std::vector<std::string>& used() const { return used_; }

 private:
  const formats::CheckpointTensors& tensors_;
  std::vector<std::string> used_;
};

}  // namespace

ModelWeights LoadModelWeights(const formats::ModelFolder& folder) {
  const formats::ModelParams& p = folder.params;
  ModelWeights weights{formats::CheckpointTensors::Open(folder), {}, {}, {}, {}};
  WeightCollector collect(weights.tensors);
  weights.tok_embeddings = collect.Matrix("tok_embeddings.weight", p.vocab_size, p.dim);
  weights.output = collect.Matrix("output.weight", p.vocab_size, p.dim);
  weights.norm = collect.Vector("norm.weight", p.dim);
  const int64_t q_rows = p.n_heads * p.head_dim;
  const int64_t kv_rows = p.n_kv_heads * p.head_dim;
  weights.layers.resize(p.n_layers);
  for (int64_t i = 0; i < p.n_layers; ++i) {
    LayerWeights& layer = weights.layers[i];
    const std::string prefix = "layers." + std::to_string(i) + ".";
    layer.attention_norm = collect.Vector(prefix + "attention_norm.weight", p.dim);
    layer.ffn_norm = collect.Vector(prefix + "ffn_norm.weight", p.dim);
    layer.wq = collect.Matrix(prefix + "attention.wq.weight", q_rows, p.dim);
    layer.wk = collect.Matrix(prefix + "attention.wk.weight", kv_rows, p.dim);
    layer.wv = collect.Matrix(prefix + "attention.wv.weight", kv_rows, p.dim);
    layer.wo = collect.Matrix(prefix + "attention.wo.weight", p.dim, q_rows);
    auto expert = [&](const std::string& base) {
      return ExpertWeights{collect.Matrix(base + "w1.weight", p.hidden_dim, p.dim),
                           collect.Matrix(base + "w2.weight", p.dim, p.hidden_dim),
                           collect.Matrix(base + "w3.weight", p.hidden_dim, p.dim)};
    };
    if (p.moe) {
      layer.gate = collect.Matrix(prefix + "feed_forward.gate.weight", p.moe->num_experts, p.dim);
      for (int64_t e = 0; e < p.moe->num_experts; ++e) {
        layer.experts.push_back(expert(prefix + "feed_forward.experts." + std::to_string(e) + "."));
      }
    } else {
      layer.ffn = expert(prefix + "feed_forward.");
    }
  }
  weights.tensors.RejectUnused(collect.used());
  return weights;
}

}  // namespace bora::model
