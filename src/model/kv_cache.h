// The KV cache interface the forward pass writes and attention reads, and its contiguous f32
// implementation: per layer a rolling buffer of C slots, C = the layer's sliding window (capped by
// the context) or the whole context; position p lives in slot p % C.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/model_params.h"
#include "ops/attention.h"

namespace bora::model {

class KvBlockPool;

// One sequence's keys and values. The forward pass calls, per chunk of `tokens` new positions
// starting at position(): Reserve(tokens); per layer StoreBeforeAttention, attention over
// View(layer) plus the chunk, StoreAfterAttention; then Advance(tokens).
class KvCache {
 public:
  virtual ~KvCache() = default;

  int64_t position() const { return position_; }  // tokens already processed
  int64_t max_positions() const { return max_positions_; }

  // Makes room for `tokens` more positions. Throws ResourceExhausted when that is impossible
  // (a paged cache whose pool is out of blocks); nothing changes then.
  virtual void Reserve(int64_t tokens) { (void)tokens; }
  // Chunk keys/values [tokens, n_kv_heads*head_dim] (keys after RoPE) of positions position()...
  // A cache may store them here and round them in place to its stored precision.
  virtual void StoreBeforeAttention(int64_t layer, float* keys, float* values, int64_t tokens) = 0;
  // ... or store them here, after the chunk's attention has read the older positions.
  virtual void StoreAfterAttention(int64_t layer, const float* keys, const float* values,
                                   int64_t tokens) = 0;
  virtual ops::KvView View(int64_t layer) const = 0;
  virtual void Advance(int64_t tokens) { position_ += tokens; }
  // Tensor parallelism: a paged cache's pool and block table (rank 0 sends the table so the
  // other ranks write and read the same slots of their own pools); null / empty otherwise.
  virtual KvBlockPool* block_pool() const { return nullptr; }
  virtual std::span<const int32_t> block_table() const { return {}; }

 protected:
  explicit KvCache(int64_t max_positions) : max_positions_(max_positions) {}
  KvCache(const KvCache&) = default;
  KvCache& operator=(const KvCache&) = default;

  int64_t max_positions_ = 0;
  int64_t position_ = 0;
};

class ContiguousKvCache final : public KvCache {
 public:
  // max_positions: the context length, the most tokens this sequence may hold.
  ContiguousKvCache(const formats::ModelParams& params, int64_t max_positions);

  int64_t capacity(int64_t layer) const { return capacity_[layer]; }
  // [capacity(layer), n_kv_heads*head_dim] f32, keys after RoPE.
  float* keys(int64_t layer) { return keys_[layer].data(); }
  float* values(int64_t layer) { return values_[layer].data(); }
  const float* keys(int64_t layer) const { return keys_[layer].data(); }
  const float* values(int64_t layer) const { return values_[layer].data(); }

  void StoreBeforeAttention(int64_t, float*, float*, int64_t) override {}
  // Stores the last min(tokens, C) rows of the chunk (older rows would be overwritten).
  void StoreAfterAttention(int64_t layer, const float* keys, const float* values,
                           int64_t tokens) override;
  ops::KvView View(int64_t layer) const override;
  void Reset() { position_ = 0; }

  // Bytes this cache allocates for a model and context (for the memory estimate).
  static uint64_t BytesFor(const formats::ModelParams& params, int64_t max_positions);

 private:
  int64_t row_ = 0;  // n_kv_heads * head_dim
  std::vector<int64_t> capacity_;
  std::vector<std::vector<float>> keys_;
  std::vector<std::vector<float>> values_;
};

}  // namespace bora::model
