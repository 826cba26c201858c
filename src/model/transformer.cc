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
      plan_(PlanShard(folder_.params, options.shard)),
      shard_params_(ShardParams(folder_.params, plan_)),
      weights_(std::move(weights)),
      context_(options.context),
      ctx_(std::move(ctx)),
      rope_cos_sin_(RopeTable(folder_.params, context_)) {
  // Decode steps then never allocate: activations and quantized-activation scratch for 1 token.
  scratch_.Reserve(shard_params_, 1);
  const formats::ModelParams& p = shard_params_;
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

int64_t CountImageTokens(std::span<const int32_t> tokens, int32_t image_token) {
  return std::count(tokens.begin(), tokens.end(), image_token);
}

void Transformer::Forward(std::span<const int32_t> tokens, KvCache& cache, std::span<float> logits,
                          bool all_positions, const LoraAdapter* lora, ImageRows images) {
  BatchItem item;
  item.images = images;
  item.tokens = tokens;
  item.cache = &cache;
  item.logits = logits;
  item.all_positions = all_positions;
  item.lora = lora;
  ForwardBatch(std::span<const BatchItem>(&item, 1));
}

std::optional<LoraRows> Transformer::LoraRowsFor(int64_t layer, int64_t expert) {
  if (!scratch_.lora) return std::nullopt;
  LoraRows rows;
  rows.adapter = expert < 0 ? scratch_.row_lora.data() : scratch_.expert_row_lora.data();
  rows.mid = scratch_.lora_mid.data();
  rows.layer = layer;
  rows.expert = expert;
  return rows;
}

void Transformer::ForwardBatch(std::span<const BatchItem> items) { RunBatch(items, true); }

void Transformer::ForwardFollowerStep(std::span<const BatchItem> items) { RunBatch(items, false); }

void Transformer::RunBatch(std::span<const BatchItem> items, bool root) {
  // Shapes of this rank's part; dim and vocabulary are the whole model's.
  const formats::ModelParams& p = shard_params_;
  if (items.empty()) throw InvalidArgument("forward pass needs at least one sequence");
  int64_t total = 0, output_rows = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    const int64_t count = static_cast<int64_t>(item.tokens.size());
    if (count == 0) throw InvalidArgument("forward pass needs at least one token");
    if (item.cache == nullptr) throw InvalidArgument("forward pass item without a KV cache");
    for (size_t j = 0; j < i; ++j) {
      if (items[j].cache == item.cache) throw InvalidArgument("two batch items share one KV cache");
    }
    KvCache& cache = *item.cache;
    if (cache.position() + count > cache.max_positions()) {
      throw ResourceExhausted("context full: " + std::to_string(cache.position()) + " + " + std::to_string(count) +
                              " tokens exceed the context of " + std::to_string(cache.max_positions()) +
                              " (raise --ctx, up to the model's maximum)");
    }
    for (int32_t id : item.tokens) {
      if (id < 0 || id >= p.vocab_size) {
        throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(p.vocab_size) + ")");
      }
    }
    if (!item.images.empty()) {
      if (group_ != nullptr || !root) {
        throw Unsupported("images under tensor parallelism (mpirun) are not supported yet; run one process");
      }
      const int64_t image_tokens = CountImageTokens(item.tokens, item.images.token);
      if (static_cast<int64_t>(item.images.rows.size()) != image_tokens * p.dim) {
        throw InvalidArgument("image embeddings do not match the prompt's image tokens (" +
                              std::to_string(item.images.rows.size() / std::max<int64_t>(p.dim, 1)) + " rows for " +
                              std::to_string(image_tokens) + " tokens)");
      }
    }
    const int64_t rows_out = !item.hidden.empty() ? 0 : item.all_positions ? count : 1;
    if (!item.hidden.empty() && item.hidden.size() < static_cast<size_t>(count * p.dim)) {
      throw InvalidArgument("hidden-state buffer too small");
    }
    if (root && item.logits.size() < static_cast<size_t>(rows_out * p.vocab_size)) {
      throw InvalidArgument("logits buffer too small");
    }
    // Rank 0 holds whole-model adapters (cut per rank below), the other ranks their parts.
    if (item.lora != nullptr && !LoraMatchesModel(*item.lora, root ? params() : shard_params_)) {
      throw InvalidArgument("a LoRA adapter does not match this model's shapes");
    }
    total += count;
    output_rows += rows_out;
  }
  for (const BatchItem& item : items) item.cache->Reserve(static_cast<int64_t>(item.tokens.size()));
  if (root && group_ != nullptr) group_->BeginStep(items);
  scratch_.Reserve(p, total);
  Activations& a = scratch_;
  // Each row's adapter (runs of rows share one), and room for A x at the largest rank.
  a.lora = false;
  int64_t lora_rank = 0;
  {
    int64_t lora_row = 0;
    for (const BatchItem& item : items) {
      const LoraAdapter* lora = item.lora;
      if (lora != nullptr) {
        if (root && group_ != nullptr) lora = group_->LocalAdapter(lora);
        a.lora = true;
        lora_rank = std::max(lora_rank, lora->rank);
      }
      std::fill_n(a.row_lora.begin() + lora_row, item.tokens.size(), lora);
      lora_row += static_cast<int64_t>(item.tokens.size());
    }
  }
  if (a.lora) a.ReserveLora(total, lora_rank);
  const float eps = static_cast<float>(p.norm_eps);

  int64_t row = 0;
  for (const BatchItem& item : items) {
    const float* image_row = item.images.empty() ? nullptr : item.images.rows.data();
    for (int32_t id : item.tokens) {
      float* out = a.residual.data() + row++ * p.dim;
      if (image_row != nullptr && id == item.images.token) {
        std::copy_n(image_row, p.dim, out);
        image_row += p.dim;
      } else {
        ops::MatrixRowToF32(weights_.tok_embeddings, id, out);
      }
    }
  }
  for (int64_t layer = 0; layer < p.n_layers; ++layer) {
    const LayerWeights& w = weights_.layers[layer];
    ops::RmsNormRows(*ctx_, a.residual.data(), w.attention_norm.data(), a.normed.data(), total, p.dim, eps);
    Attention(layer, items, total);
    AllReduce(a.block_out.data(), total * p.dim);  // row-parallel wo: sum the ranks' partial products
    AddInPlace(a.residual.data(), a.block_out.data(), total * p.dim);
    ops::RmsNormRows(*ctx_, a.residual.data(), w.ffn_norm.data(), a.normed.data(), total, p.dim, eps);
    FeedForward(layer, total);
    AllReduce(a.block_out.data(), total * p.dim);  // row-parallel w2
    AddInPlace(a.residual.data(), a.block_out.data(), total * p.dim);
  }
  for (const BatchItem& item : items) item.cache->Advance(static_cast<int64_t>(item.tokens.size()));

  // Final norm of the rows that produce logits, gathered contiguously into `normed`.
  int64_t first = 0, out_row = 0;
  for (const BatchItem& item : items) {
    const int64_t count = static_cast<int64_t>(item.tokens.size());
    if (!item.hidden.empty()) {  // embeddings: every position's normed state, no logits
      ops::RmsNormRows(*ctx_, a.residual.data() + first * p.dim, weights_.norm.data(), item.hidden.data(), count,
                       p.dim, eps);
      first += count;
      continue;
    }
    const int64_t rows_out = item.all_positions ? count : 1;
    ops::RmsNormRows(*ctx_, a.residual.data() + (first + count - rows_out) * p.dim, weights_.norm.data(),
                     a.normed.data() + out_row * p.dim, rows_out, p.dim, eps);
    first += count;
    out_row += rows_out;
  }
  if (output_rows == 0) return;
  OutputProjection(items, output_rows, root);
}

void Transformer::OutputProjection(std::span<const BatchItem> items, int64_t output_rows, bool root) {
  const int64_t vocab = params().vocab_size;
  Activations& a = scratch_;
  if (group_ == nullptr) {
    if (items.size() == 1) {
      ops::MatMul(*ctx_, a.normed.data(), output_rows, weights_.output, items[0].logits.data());
      return;
    }
    const size_t needed = static_cast<size_t>(output_rows * vocab);
    if (batch_logits_.size() < needed) batch_logits_.resize(needed);
    ops::MatMul(*ctx_, a.normed.data(), output_rows, weights_.output, batch_logits_.data());
    int64_t out_row = 0;
    for (const BatchItem& item : items) {
      if (!item.hidden.empty()) continue;
      const int64_t rows_out = item.all_positions ? static_cast<int64_t>(item.tokens.size()) : 1;
      std::copy_n(batch_logits_.data() + out_row * vocab, rows_out * vocab, item.logits.data());
      out_row += rows_out;
    }
    return;
  }
  // Vocabulary-parallel: each rank its rows of the output projection, gathered to rank 0 as
  // [rank][output rows, rank's vocabulary] blocks, then written into each item's logits.
  const int64_t local = plan_.vocab.size();
  if (local_logits_.size() < static_cast<size_t>(output_rows * local)) local_logits_.resize(output_rows * local);
  ops::MatMul(*ctx_, a.normed.data(), output_rows, weights_.output, local_logits_.data());
  if (root && batch_logits_.size() < static_cast<size_t>(output_rows * vocab)) batch_logits_.resize(output_rows * vocab);
  group_->GatherToRoot(std::span<const float>(local_logits_.data(), static_cast<size_t>(output_rows * local)),
                       std::span<float>(batch_logits_.data(), root ? static_cast<size_t>(output_rows * vocab) : 0));
  if (!root) return;
  const int ranks = plan_.layout.ranks;
  int64_t block_start = 0;
  for (int r = 0; r < ranks; ++r) {
    const IndexRange range = PlanShard(params(), ShardLayout{r, ranks}).vocab;
    const float* block = batch_logits_.data() + block_start;
    int64_t out_row = 0;
    for (const BatchItem& item : items) {
      if (!item.hidden.empty()) continue;
      const int64_t rows_out = item.all_positions ? static_cast<int64_t>(item.tokens.size()) : 1;
      for (int64_t i = 0; i < rows_out; ++i, ++out_row) {
        std::copy_n(block + out_row * range.size(), range.size(), item.logits.data() + i * vocab + range.begin);
      }
    }
    block_start += output_rows * range.size();
  }
}

void Transformer::Attention(int64_t layer, std::span<const BatchItem> items, int64_t total_rows) {
  const formats::ModelParams& p = shard_params_;  // this rank's heads
  const LayerWeights& w = weights_.layers[layer];
  Activations& a = scratch_;
  const MatrixView* qkv[] = {&w.wq, &w.wk, &w.wv};
  float* const qkv_out[] = {a.q.data(), a.k.data(), a.v.data()};
  ops::MatMulShared(*ctx_, a.normed.data(), total_rows, qkv, qkv_out);
  const std::optional<LoraRows> lora = LoraRowsFor(layer);
  if (lora) {
    AddLoraTerms(*ctx_, *lora, total_rows, LoraTarget::kWq, a.normed.data(), a.q.data());
    AddLoraTerms(*ctx_, *lora, total_rows, LoraTarget::kWk, a.normed.data(), a.k.data());
    AddLoraTerms(*ctx_, *lora, total_rows, LoraTarget::kWv, a.normed.data(), a.v.data());
  }
  const int64_t half = p.head_dim / 2;
  const bool query_scaled = HasQueryScale(p);
  const int64_t q_row = p.n_heads * p.head_dim;
  const int64_t kv_row = p.n_kv_heads * p.head_dim;
  const ops::AttentionShape shape{p.n_heads, p.n_kv_heads, p.head_dim, p.layer_windows[layer]};
  int64_t first = 0;
  for (const BatchItem& item : items) {
    KvCache& cache = *item.cache;
    const int64_t count = static_cast<int64_t>(item.tokens.size());
    float* q = a.q.data() + first * q_row;
    float* k = a.k.data() + first * kv_row;
    float* v = a.v.data() + first * kv_row;
    for (int64_t t = 0; t < count; ++t) {
      const float* cos_sin = rope_cos_sin_.data() + (cache.position() + t) * half * 2;
      kernels::RopeInterleaved(q + t * q_row, cos_sin, p.n_heads, p.head_dim);
      kernels::RopeInterleaved(k + t * kv_row, cos_sin, p.n_kv_heads, p.head_dim);
      if (query_scaled) {  // llama-4 temperature: the query only, keys are cached unscaled
        const float scale = QueryScale(p, cache.position() + t);
        float* row = q + t * q_row;
        for (int64_t i = 0; i < q_row; ++i) row[i] *= scale;
      }
    }
    cache.StoreBeforeAttention(layer, k, v, count);
    ops::CausalAttention(*ctx_, shape, q, k, v, cache.position(), count, cache.View(layer),
                         a.attention.data() + first * q_row);
    cache.StoreAfterAttention(layer, k, v, count);
    first += count;
  }
  ops::MatMul(*ctx_, a.attention.data(), total_rows, w.wo, a.block_out.data());
  if (lora)
    AddLoraTerms(*ctx_, *lora, total_rows, LoraTarget::kWo, a.attention.data(), a.block_out.data());
}

}  // namespace bora::model
