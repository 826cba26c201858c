// Naive double-precision reference forward pass with an explicit attention mask.
#include "model/reference_forward.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "kernels/convert.h"

namespace bora::testing {
namespace {

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

class RawWeights {
 public:
  RawWeights(const std::string& path, bool hf) : file_(formats::SafetensorsFile::Open(path)), hf_(hf) {}

  Matrix Get(const std::string& native, const std::string& hf_name) const {
    formats::TensorView view = file_.View(hf_ ? hf_name : native);
    MatrixView m = view.AsMatrix();
    Matrix out(m.rows, std::vector<double>(m.cols));
    std::vector<float> row(m.cols);
    for (int64_t r = 0; r < m.rows; ++r) {
      kernels::RowToF32(m.dtype, m.RowBytes(r), row.data(), m.cols);
      for (int64_t c = 0; c < m.cols; ++c) out[r][c] = row[c];
    }
    return out;
  }
  std::vector<double> Vector(const std::string& native, const std::string& hf_name) const {
    return Get(native, hf_name)[0];
  }

 private:
  formats::SafetensorsFile file_;
  bool hf_;
};

Matrix Linear(const Matrix& x, const Matrix& w) {  // x [T, in], w [out, in] → [T, out]
  Matrix y(x.size(), std::vector<double>(w.size()));
  for (size_t t = 0; t < x.size(); ++t) {
    for (size_t o = 0; o < w.size(); ++o) {
      y[t][o] = std::inner_product(x[t].begin(), x[t].end(), w[o].begin(), 0.0);
    }
  }
  return y;
}

Matrix RmsNorm(const Matrix& x, const std::vector<double>& weight, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double mean = 0;
    for (double v : row) mean += v * v;
    mean /= static_cast<double>(row.size());
    double scale = 1.0 / std::sqrt(mean + eps);
    for (size_t i = 0; i < row.size(); ++i) row[i] = row[i] * scale * weight[i];
  }
  return y;
}

// Rotates each head of every row by position t; `half_split` pairs (i, i+d/2), else (2i, 2i+1).
void Rope(Matrix& x, int64_t heads, int64_t d, double theta, bool half_split) {
  for (size_t t = 0; t < x.size(); ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < d / 2; ++i) {
        double angle = static_cast<double>(t) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
        int64_t a = half_split ? h * d + i : h * d + 2 * i;
        int64_t b = half_split ? h * d + i + d / 2 : h * d + 2 * i + 1;
        double re = x[t][a], im = x[t][b];
        x[t][a] = re * std::cos(angle) - im * std::sin(angle);
        x[t][b] = re * std::sin(angle) + im * std::cos(angle);
      }
    }
  }
}

Matrix SwiGlu(const Matrix& x, const Matrix& w1, const Matrix& w2, const Matrix& w3) {
  Matrix gate = Linear(x, w1), up = Linear(x, w3);
  for (size_t t = 0; t < gate.size(); ++t) {
    for (size_t i = 0; i < gate[t].size(); ++i) gate[t][i] = gate[t][i] / (1.0 + std::exp(-gate[t][i])) * up[t][i];
  }
  return Linear(gate, w2);
}

}  // namespace

std::vector<double> ReferenceLogits(const std::string& dir, const std::vector<int32_t>& tokens) {
  formats::ModelFolder folder = formats::InspectModelFolder(dir);
  const formats::ModelParams& p = folder.params;
  const bool hf = folder.layout == formats::CheckpointLayout::kHuggingFace;
  RawWeights w(folder.weight_files.at(0), hf);
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t d = p.head_dim;

  Matrix embedding = w.Get("tok_embeddings.weight", "model.embed_tokens.weight");
  Matrix h(T);
  for (int64_t t = 0; t < T; ++t) h[t] = embedding[tokens[t]];

  for (int64_t layer = 0; layer < p.n_layers; ++layer) {
    const std::string n = "layers." + std::to_string(layer) + ".";
    const std::string m = "model.layers." + std::to_string(layer) + ".";
    Matrix a = RmsNorm(h, w.Vector(n + "attention_norm.weight", m + "input_layernorm.weight"), p.norm_eps);
    Matrix q = Linear(a, w.Get(n + "attention.wq.weight", m + "self_attn.q_proj.weight"));
    Matrix k = Linear(a, w.Get(n + "attention.wk.weight", m + "self_attn.k_proj.weight"));
    Matrix v = Linear(a, w.Get(n + "attention.wv.weight", m + "self_attn.v_proj.weight"));
    Rope(q, p.n_heads, d, p.rope_theta, hf);
    Rope(k, p.n_kv_heads, d, p.rope_theta, hf);
    // Explicit mask: query i sees key j iff j <= i and i - j < W.
    const int64_t window = p.layer_windows[layer];
    std::vector<std::vector<bool>> mask(T, std::vector<bool>(T));
    for (int64_t i = 0; i < T; ++i) {
      for (int64_t j = 0; j < T; ++j) mask[i][j] = j <= i && (window == 0 || i - j < window);
    }
    Matrix attention(T, std::vector<double>(p.n_heads * d, 0.0));
    const int64_t group = p.n_heads / p.n_kv_heads;
    for (int64_t i = 0; i < T; ++i) {
      for (int64_t head = 0; head < p.n_heads; ++head) {
        const int64_t kv = head / group;
        std::vector<double> scores(T, -INFINITY);
        double max_score = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          if (!mask[i][j]) continue;
          double s = 0;
          for (int64_t c = 0; c < d; ++c) s += q[i][head * d + c] * k[j][kv * d + c];
          scores[j] = s / std::sqrt(static_cast<double>(d));
          max_score = std::max(max_score, scores[j]);
        }
        double total = 0;
        for (int64_t j = 0; j < T; ++j) total += mask[i][j] ? std::exp(scores[j] - max_score) : 0.0;
        for (int64_t j = 0; j < T; ++j) {
          if (!mask[i][j]) continue;
          double weight = std::exp(scores[j] - max_score) / total;
          for (int64_t c = 0; c < d; ++c) attention[i][head * d + c] += weight * v[j][kv * d + c];
        }
      }
    }
    Matrix out = Linear(attention, w.Get(n + "attention.wo.weight", m + "self_attn.o_proj.weight"));
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < p.dim; ++c) h[t][c] += out[t][c];
    }
    Matrix f = RmsNorm(h, w.Vector(n + "ffn_norm.weight", m + "post_attention_layernorm.weight"), p.norm_eps);
    Matrix ffn(T, std::vector<double>(p.dim, 0.0));
    if (!p.moe) {
      ffn = SwiGlu(f, w.Get(n + "feed_forward.w1.weight", m + "mlp.gate_proj.weight"),
                   w.Get(n + "feed_forward.w2.weight", m + "mlp.down_proj.weight"),
                   w.Get(n + "feed_forward.w3.weight", m + "mlp.up_proj.weight"));
    } else {
      // HF convention: softmax over all experts, keep the top k, renormalise.
      Matrix router = Linear(f, w.Get(n + "feed_forward.gate.weight", m + "block_sparse_moe.gate.weight"));
      for (int64_t t = 0; t < T; ++t) {
        std::vector<int> order(p.moe->num_experts);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return router[t][x] > router[t][y]; });
        double max_logit = router[t][order[0]];
        double total = 0;
        for (int64_t s = 0; s < p.moe->num_experts_per_tok; ++s) total += std::exp(router[t][order[s]] - max_logit);
        for (int64_t s = 0; s < p.moe->num_experts_per_tok; ++s) {
          const std::string e = std::to_string(order[s]);
          const std::string ne = n + "feed_forward.experts." + e + ".";
          const std::string me = m + "block_sparse_moe.experts." + e + ".";
          Matrix y = SwiGlu(Matrix{f[t]}, w.Get(ne + "w1.weight", me + "w1.weight"), w.Get(ne + "w2.weight", me + "w2.weight"),
                            w.Get(ne + "w3.weight", me + "w3.weight"));
          double weight = std::exp(router[t][order[s]] - max_logit) / total;
          for (int64_t c = 0; c < p.dim; ++c) ffn[t][c] += weight * y[0][c];
        }
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < p.dim; ++c) h[t][c] += ffn[t][c];
    }
  }
  Matrix logits = Linear(RmsNorm(h, w.Vector("norm.weight", "model.norm.weight"), p.norm_eps),
                         w.Get("output.weight", "lm_head.weight"));
  std::vector<double> flat;
  for (const auto& row : logits) flat.insert(flat.end(), row.begin(), row.end());
  return flat;
}

}  // namespace bora::testing
