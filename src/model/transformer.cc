// The decoder stack shared by Mistral-family architectures.
#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"
#include "kernels/convert.h"
#include "kernels/rope.h"
#include "model/rope_table.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/pack_weights.h"

namespace bora::model {
namespace {

void AddInPlace(float* target, const float* addend, int64_t count) {
  for (int64_t i = 0; i < count; ++i) target[i] += addend[i];
}

}  // namespace

Transformer::Transformer(formats::ModelFolder folder, ModelWeights weights, const LoadOptions& options,
                         std::unique_ptr<ops::ComputeContext> ctx)
    : folder_(std::move(folder)),
      weights_(std::move(weights)),
      context_(options.context),
      ctx_(std::move(ctx)),
      rope_cos_sin_(RopeTable(folder_.params.rope_theta, folder_.params.head_dim, context_)) {
  // Decode steps then never allocate: activations and quantized-activation scratch for 1 token.
  scratch_.Reserve(params(), 1);
  const formats::ModelParams& p = params();
  const int64_t widest = std::max({p.dim, p.hidden_dim, p.n_heads * p.head_dim});
  ctx_->Scratch(kernels::QuantizedRowsBytes(1, (widest + 31) / 32 * 32));
}

namespace {

// Sums `measure(matrix)` over what one token multiplies with; experts count k/E of theirs.
template <typename Measure>
double PerTokenSum(ModelWeights& weights, const formats::ModelParams& p, Measure measure) {
  double total = measure(weights.output);
  for (LayerWeights& layer : weights.layers) {
    for (const MatrixView* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn.w1, &layer.ffn.w2,
                                &layer.ffn.w3, &layer.gate}) {
      if (!m->empty()) total += measure(*m);
    }
    const double share = p.moe ? static_cast<double>(p.moe->num_experts_per_tok) / p.moe->num_experts : 0.0;
    for (const ExpertWeights& e : layer.experts) total += share * (measure(e.w1) + measure(e.w2) + measure(e.w3));
  }
  return total;
}

}  // namespace

uint64_t Transformer::streamed_weight_bytes() {
  return static_cast<uint64_t>(PerTokenSum(weights_, params(), [](const MatrixView& m) {
    return static_cast<double>(ops::MatrixBytes(m.dtype, m.rows, m.cols));
  }));
}

uint64_t Transformer::streamed_weight_count() {
  return static_cast<uint64_t>(PerTokenSum(weights_, params(), [](const MatrixView& m) {
    return static_cast<double>(m.rows) * static_cast<double>(m.cols);
  }));
}

void Transformer::Forward(std::span<const int32_t> tokens, KvCache& cache, std::span<float> logits,
                          bool all_positions) {
  const formats::ModelParams& p = params();
  const int64_t count = static_cast<int64_t>(tokens.size());
  if (count == 0) throw InvalidArgument("forward pass needs at least one token");
  if (cache.position() + count > cache.max_positions()) {
    throw ResourceExhausted("context full: " + std::to_string(cache.position()) + " + " + std::to_string(count) +
                            " tokens exceed the context of " + std::to_string(cache.max_positions()) +
                            " (raise --ctx, up to the model's maximum)");
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= p.vocab_size) {
      throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(p.vocab_size) + ")");
    }
  }
  const size_t needed = static_cast<size_t>((all_positions ? count : 1) * p.vocab_size);
  if (logits.size() < needed) throw InvalidArgument("logits buffer too small");
  scratch_.Reserve(p, count);
  Activations& a = scratch_;
  const float eps = static_cast<float>(p.norm_eps);

  for (int64_t t = 0; t < count; ++t) {
    ops::MatrixRowToF32(weights_.tok_embeddings, tokens[t], a.residual.data() + t * p.dim);
  }
  for (int64_t layer = 0; layer < p.n_layers; ++layer) {
    const LayerWeights& w = weights_.layers[layer];
    ops::RmsNormRows(*ctx_, a.residual.data(), w.attention_norm.data(), a.normed.data(), count, p.dim, eps);
    Attention(layer, count, cache);
    AddInPlace(a.residual.data(), a.block_out.data(), count * p.dim);
    ops::RmsNormRows(*ctx_, a.residual.data(), w.ffn_norm.data(), a.normed.data(), count, p.dim, eps);
    FeedForward(layer, count);
    AddInPlace(a.residual.data(), a.block_out.data(), count * p.dim);
  }
  cache.Advance(count);

  const int64_t first_row = all_positions ? 0 : count - 1;
  const int64_t rows = count - first_row;
  ops::RmsNormRows(*ctx_, a.residual.data() + first_row * p.dim, weights_.norm.data(), a.normed.data(), rows, p.dim, eps);
  ops::MatMul(*ctx_, a.normed.data(), rows, weights_.output, logits.data());
}

void Transformer::Attention(int64_t layer, int64_t count, KvCache& cache) {
  const formats::ModelParams& p = params();
  const LayerWeights& w = weights_.layers[layer];
  Activations& a = scratch_;
  const MatrixView* qkv[] = {&w.wq, &w.wk, &w.wv};
  float* const qkv_out[] = {a.q.data(), a.k.data(), a.v.data()};
  ops::MatMulShared(*ctx_, a.normed.data(), count, qkv, qkv_out);
  const int64_t half = p.head_dim / 2;
  const int64_t q_row = p.n_heads * p.head_dim;
  const int64_t kv_row = p.n_kv_heads * p.head_dim;
  for (int64_t t = 0; t < count; ++t) {
    const float* cos_sin = rope_cos_sin_.data() + (cache.position() + t) * half * 2;
    kernels::RopeInterleaved(a.q.data() + t * q_row, cos_sin, p.n_heads, p.head_dim);
    kernels::RopeInterleaved(a.k.data() + t * kv_row, cos_sin, p.n_kv_heads, p.head_dim);
  }
  ops::AttentionShape shape{p.n_heads, p.n_kv_heads, p.head_dim, p.layer_windows[layer]};
  ops::KvRing ring{cache.keys(layer), cache.values(layer), cache.capacity(layer)};
  ops::CausalAttention(*ctx_, shape, a.q.data(), a.k.data(), a.v.data(), cache.position(), count, ring,
                       a.attention.data());
  cache.Store(layer, a.k.data(), a.v.data(), count);
  ops::MatMul(*ctx_, a.attention.data(), count, w.wo, a.block_out.data());
}

}  // namespace bora::model
