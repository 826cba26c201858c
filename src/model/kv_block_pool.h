// One preallocated pool of fixed-size KV blocks shared by every sequence of an engine, with
// reference counts (copy-on-write sharing) and a prefix cache: full blocks are keyed by a hash of
// all tokens up to and including them, kept after their last user leaves, and evicted LRU.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/aligned_buffer.h"
#include "formats/model_params.h"
#include "ops/attention.h"

namespace bora::model {

struct KvPoolCounters {
  int64_t prefix_hit_blocks = 0;   // blocks of prompts found in the prefix cache
  int64_t prefix_miss_blocks = 0;  // full prompt blocks looked up and not found
  int64_t evicted_blocks = 0;      // cached blocks reused for other data
  int64_t copied_blocks = 0;       // copy-on-write copies
};

class KvBlockPool {
 public:
  static constexpr int64_t kDefaultBlockSize = 16;

  // Storage is allocated up front but its pages are only touched when blocks are written.
  KvBlockPool(const formats::ModelParams& params, ops::KvDType dtype, int64_t blocks,
              int64_t block_size = kDefaultBlockSize);
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  // Bytes of one block (all layers, keys and values).
  static uint64_t BytesPerBlock(const formats::ModelParams& params, ops::KvDType dtype,
                                int64_t block_size = kDefaultBlockSize);

  ops::KvDType dtype() const { return dtype_; }
  int64_t block_size() const { return block_size_; }
  int64_t total_blocks() const { return static_cast<int64_t>(refcount_.size()); }
  // Blocks Allocate() can still return: free ones plus unreferenced cached ones.
  int64_t available_blocks() const { return static_cast<int64_t>(free_.size()) + lru_size_; }
  int64_t used_blocks() const { return total_blocks() - available_blocks(); }
  int64_t cached_blocks() const { return cached_count_; }
  const KvPoolCounters& counters() const { return counters_; }

  // A block with reference count 1, or -1 when none is available. Takes a free block first,
  // then evicts the least recently used unreferenced cached block.
  int32_t Allocate();
  void Retain(int32_t block);
  // Drops a reference; at zero a cached block joins the LRU list, any other becomes free.
  void Release(int32_t block);
  int32_t refcount(int32_t block) const { return refcount_[block]; }
  // Whether writing into `block` would change data someone else may read (shared or cached).
  bool Shared(int32_t block) const { return refcount_[block] > 1 || cached_[block]; }
  // Copies every layer's keys and values of `from` into `to`.
  void CopyBlock(int32_t from, int32_t to);
  // Tensor parallelism: when on, CopyBlock also appends (from, to) to copy_log(), which rank 0
  // drains into each step's message so the other ranks copy the same blocks of their pools.
  void LogCopies(bool on) { log_copies_ = on; }
  std::vector<std::pair<int32_t, int32_t>>& copy_log() { return copy_log_; }

  // Prefix cache. Hash of a full block: `parent` (the previous block's hash, 0 for the first)
  // and its block_size tokens.
  static uint64_t ChainHash(uint64_t parent, std::span<const int32_t> tokens);
  // The cached block holding exactly these tokens after that parent, retained for the caller;
  // -1 when absent. Counts a hit or a miss.
  int32_t Lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);
  // Makes a full block findable by Lookup (no-op when an equal block is already cached).
  void Register(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);

  // Planes of a layer: keys/values [total_blocks * block_size, n_kv_heads*head_dim] elements of
  // dtype(); q8 scales [total_blocks * block_size, n_kv_heads] f32 (null otherwise).
  uint8_t* keys(int64_t layer) { return planes_.data() + layer * layer_bytes_; }
  uint8_t* values(int64_t layer) { return keys(layer) + plane_bytes_; }
  float* key_scales(int64_t layer);
  float* value_scales(int64_t layer);
  int64_t row_bytes() const { return row_elements_ * element_bytes_; }  // one slot's data row
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  void Evict(int32_t block);  // removes a cached block from the index
  void LruRemove(int32_t block);
  void LruPushBack(int32_t block);
  int64_t IndexFind(uint64_t hash) const;  // slot in index_ or -1
  void IndexErase(int64_t slot);

  ops::KvDType dtype_;
  int64_t block_size_;
  int64_t n_layers_;
  int64_t kv_heads_;
  int64_t head_dim_;
  int64_t row_elements_;
  int64_t element_bytes_;
  uint64_t plane_bytes_ = 0;  // one of keys/values/key scales/value scales of a layer
  uint64_t scale_bytes_ = 0;
  uint64_t layer_bytes_ = 0;
  AlignedBuffer planes_;

  std::vector<int32_t> refcount_;
  std::vector<uint8_t> cached_;               // block is in the prefix index
  std::vector<int32_t> free_;                 // stack of free, uncached blocks
  std::vector<int32_t> lru_prev_, lru_next_;  // unreferenced cached blocks, oldest first
  int32_t lru_head_ = -1, lru_tail_ = -1;
  int64_t lru_size_ = 0;
  int64_t cached_count_ = 0;
  // Per block: its hash, parent hash and tokens (to confirm a hash match).
  std::vector<uint64_t> block_hash_, block_parent_;
  std::vector<int32_t> block_tokens_;  // [total_blocks, block_size]
  // Open-addressing index hash -> block (linear probing, 2x the blocks, -1 empty): fixed size,
  // so registering a block during decode allocates nothing.
  std::vector<uint64_t> index_hash_;
  std::vector<int32_t> index_block_;
  KvPoolCounters counters_;
  bool log_copies_ = false;
  std::vector<std::pair<int32_t, int32_t>> copy_log_;
};

}  // namespace bora::model
