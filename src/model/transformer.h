// The decoder stack shared by Mistral-family architectures: embedding, attention blocks with a
// rolling KV cache, final norm and output projection; subclasses supply the feed-forward block.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/cpu_features.h"
#include "base/dtype.h"
#include "formats/model_folder.h"
#include "model/activations.h"
#include "model/kv_cache.h"
#include "model/lora_adapter.h"
#include "model/lora_apply.h"
#include "model/shard.h"
#include "model/shard_group.h"
#include "model/weights.h"
#include "ops/compute_context.h"

namespace bora::model {

struct LoadOptions {
  int64_t context = 4096;  // --ctx: tokens per sequence, capped by the model's maximum
  int threads = 0;         // 0: every CPU this process may use
  // --dtype: kF32 (exact, weights as stored), kBF16, kQ8, kQ4; none: as the folder stores them.
  std::optional<DType> dtype;
  std::optional<Isa> isa;  // none: BORA_ISA or the best the CPU supports
  // --mmap: compute straight from the mapped files (fastest start, page cache shared between
  // processes) instead of copying them to huge-page memory (faster decode).
  bool mmap = false;
  // Tensor parallelism: the part of the model this process holds ({0, 1}: all of it). Each rank
  // reads only its slices of the weights; the group is attached with SetShardGroup.
  ShardLayout shard;
};

// Multimodal input of one forward call: rows [k, dim] that replace, in order, the embeddings of
// the call's tokens equal to `token` (the [IMG] positions; k must equal their count). Other
// tokens, [IMG_BREAK] and [IMG_END] included, embed as usual.
struct ImageRows {
  std::span<const float> rows;
  int32_t token = -1;
  bool empty() const { return rows.empty(); }
};

// How many of `tokens` are `image_token` (where a chunk's image rows start).
int64_t CountImageTokens(std::span<const int32_t> tokens, int32_t image_token);

// One sequence's share of a batched forward call: its new tokens, its own KV cache (advanced
// by the call), and where its logits go ([tokens, vocab] when all_positions, else [vocab]).
struct BatchItem {
  std::span<const int32_t> tokens;
  KvCache* cache = nullptr;
  std::span<float> logits;
  bool all_positions = false;
  // When set: the final-normed hidden states [tokens, dim] of every position go here instead of
  // logits (embeddings); `logits` is then unused.
  std::span<float> hidden;
  // When set: this sequence's LoRA adapter (matching the model, alive for the call). Its
  // low-rank terms are added on this item's rows only; the base products still run once over
  // every row of the batch.
  const LoraAdapter* lora = nullptr;
  // Image embeddings for this item's [IMG] tokens (see ImageRows).
  ImageRows images;
};

class Transformer {
 public:
  virtual ~Transformer() = default;
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  // The whole model's params (vocabulary, layers, heads as the checkpoint has them).
  const formats::ModelParams& params() const { return folder_.params; }
  // The params of the part this rank computes: its query heads, KV heads (what KV caches are
  // sized by) and feed-forward rows. Equal to params() without tensor parallelism.
  const formats::ModelParams& shard_params() const { return shard_params_; }
  const ShardPlan& shard_plan() const { return plan_; }
  // Attaches the tensor-parallel group (ranks > 1; must outlive the model's use).
  void SetShardGroup(ShardGroup* group) { group_ = group; }
  const formats::ModelFolder& folder() const { return folder_; }
  int64_t context_length() const { return context_; }
  int num_threads() const { return ctx_->num_threads(); }
  Isa isa() const { return ctx_->isa(); }
  DType compute_dtype() const { return weights_.compute_dtype; }
  // Bytes of all weight matrices in their compute format.
  uint64_t weight_bytes() { return MatrixBytesOf(weights_); }
  // Bytes and weights of the matrices every token multiplies with (all but the embeddings;
  // MoE: the active experts' share).
  uint64_t streamed_weight_bytes();
  uint64_t streamed_weight_count();
  ops::ComputeContext& compute() { return *ctx_; }

  // A contiguous f32 cache sized for this model's context (tests, benchmarks, golden checks;
  // the serving engine uses paged caches from a KvBlockPool).
  ContiguousKvCache NewCache() const { return ContiguousKvCache(shard_params(), context_); }

  // Runs `tokens` at positions cache.position() ... and advances the cache. Writes logits
  // [tokens, vocab] when `all_positions`, else only the last row [vocab]. Any split of a prompt
  // into calls (one-shot, chunks, token by token) gives the same logits.
  // Throws InvalidArgument for ids outside the vocabulary, ResourceExhausted past the context.
  // With `lora`: y = W x + scaling * B (A x) on every adapted linear.
  // With `images`: the [IMG] tokens take those rows instead of their embeddings.
  void Forward(std::span<const int32_t> tokens, KvCache& cache, std::span<float> logits,
               bool all_positions, const LoraAdapter* lora = nullptr, ImageRows images = {});

  // Several sequences in one pass (continuous batching): the matrix products run over the rows
  // of every item together, attention and RoPE per item over its own cache. Each item's logits
  // are bit-identical to those of the same tokens run alone (batch-invariant kernels), so a
  // sequence never changes with its batch-mates. Items must use distinct caches. Throws
  // InvalidArgument for an item whose adapter does not match the model.
  // Under tensor parallelism this is rank 0's call: it sends the step to the other ranks.
  void ForwardBatch(std::span<const BatchItem> items);

  // A rank >= 1 runs the step rank 0 sent: items with this rank's mirrored caches and adapters
  // already cut to this rank; logits are not written (rank 0 gathers them), `hidden` is.
  void ForwardFollowerStep(std::span<const BatchItem> items);

 protected:
  Transformer(formats::ModelFolder folder, ModelWeights weights, const LoadOptions& options,
              std::unique_ptr<ops::ComputeContext> ctx);

  // out[t] = FFN(normed[t]) for t < tokens, rows of width dim (reads scratch().normed,
  // writes scratch().block_out).
  virtual void FeedForward(int64_t layer, int64_t tokens) = 0;

  const ModelWeights& weights() const { return weights_; }
  Activations& scratch() { return scratch_; }
  ops::ComputeContext& ctx() { return *ctx_; }
  // The LoRA rows of the current call for `layer`: its rows in order (expert < 0), or the rows
  // gathered for MoE `expert` (scratch().expert_row_lora). Null when no row has an adapter.
  std::optional<LoraRows> LoraRowsFor(int64_t layer, int64_t expert = -1);

 private:
  void RunBatch(std::span<const BatchItem> items, bool root);
  void Attention(int64_t layer, std::span<const BatchItem> items, int64_t total_rows);
  void AllReduce(float* data, int64_t count) {
    if (group_ != nullptr) group_->AllReduceSum(std::span<float>(data, static_cast<size_t>(count)));
  }
  void OutputProjection(std::span<const BatchItem> items, int64_t output_rows, bool root);

  formats::ModelFolder folder_;
  ShardPlan plan_;
  formats::ModelParams shard_params_;
  ShardGroup* group_ = nullptr;
  ModelWeights weights_;
  int64_t context_;
  std::unique_ptr<ops::ComputeContext> ctx_;
  std::vector<float> rope_cos_sin_;  // [context, head_dim/2, 2] float32, as torch.polar
  Activations scratch_;
  std::vector<float> batch_logits_;  // [output rows, vocab] of a multi-item call, grown on demand
  std::vector<float> local_logits_;  // tensor parallel: [output rows, this rank's vocabulary]
};

// Loads the model folder `dir` after checking that weights + KV cache fit in memory.
std::unique_ptr<Transformer> LoadModel(const std::string& dir, const LoadOptions& options);

}  // namespace bora::model
