// A sequence's KV cache as a table of blocks from a shared KvBlockPool: blocks are allocated as
// the sequence grows, freed once they fall out of the sliding window, shared copy-on-write
// between the choices of one request, and found again through the pool's prefix cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/kv_block_pool.h"
#include "model/kv_cache.h"

namespace bora::model {

class PagedKvCache final : public KvCache {
 public:
  // max_positions: the context length. Allocates only the block table (no blocks).
  PagedKvCache(KvBlockPool& pool, const formats::ModelParams& params, int64_t max_positions);
  ~PagedKvCache() override;  // releases its blocks
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  // On an empty cache: takes the longest run of `prompt`'s full blocks the pool has cached,
  // leaving at least the last prompt token to run (its logits are needed). Returns the
  // positions reused; the cache stands at that position.
  int64_t AttachPrefix(std::span<const int32_t> prompt);
  // Makes this (empty) cache share every block of `other` and stand at its position; the
  // first write into a shared block copies it.
  void ForkFrom(const PagedKvCache& other);
  // Registers the blocks filled since the last call in the pool's prefix cache. `tokens`: the
  // ids of positions 0 .. position()-1.
  void RegisterFullBlocks(std::span<const int32_t> tokens);
  // Releases every block and returns to position 0 (preemption, cancellation).
  void Clear();
  // Keys this (empty) cache's prefix-cache blocks under `root` instead of 0: sequences whose KV
  // differs for the same tokens (a LoRA adapter's fingerprint) share blocks only among
  // themselves. Kept across Clear().
  void SetPrefixRoot(uint64_t root);

  // Blocks a Reserve(tokens) would take from the pool (new blocks and copies).
  int64_t BlocksNeeded(int64_t tokens) const;
  int64_t held_blocks() const;

  void Reserve(int64_t tokens) override;
  void StoreBeforeAttention(int64_t layer, float* keys, float* values, int64_t tokens) override;
  void StoreAfterAttention(int64_t, const float*, const float*, int64_t) override {}
  ops::KvView View(int64_t layer) const override;
  KvBlockPool* block_pool() const override { return &pool_; }
  std::span<const int32_t> block_table() const override { return table_; }

 private:
  void ReleaseOutsideWindow();

  KvBlockPool& pool_;
  int64_t block_size_;
  int64_t window_ = 0;             // largest layer window; 0 when a layer sees every key
  std::vector<int32_t> table_;     // [ceil(max_positions / block_size)] block ids, -1 none
  int64_t first_live_block_ = 0;   // blocks below were released (outside the window)
  int64_t registered_blocks_ = 0;  // full blocks already offered to the prefix cache
  uint64_t registered_hash_ = 0;   // chain hash of the last of those
  uint64_t prefix_root_ = 0;       // parent hash of the first block
};

// A tensor-parallel rank's copy of one of rank 0's paged caches for one step: the block table
// rank 0 sent, over this rank's own pool (same block ids, this rank's KV heads). It allocates
// nothing (rank 0 did), so Reserve is a no-op.
class MirrorKvCache final : public KvCache {
 public:
  MirrorKvCache() : KvCache(0) {}
  // Points this mirror at rank 0's cache for one step (the table is copied, reusing capacity).
  void Reset(KvBlockPool& pool, int64_t max_positions, int64_t position, std::span<const int32_t> table);
  void StoreBeforeAttention(int64_t layer, float* keys, float* values, int64_t tokens) override;
  void StoreAfterAttention(int64_t, const float*, const float*, int64_t) override {}
  ops::KvView View(int64_t layer) const override;

 private:
  KvBlockPool* pool_ = nullptr;
  std::vector<int32_t> table_;
};

// The slot writes and the attention view of a block table over `pool` (shared by both caches).
void StorePagedRows(KvBlockPool& pool, const int32_t* table, int64_t position, int64_t layer, float* keys,
                    float* values, int64_t tokens);
ops::KvView PagedView(KvBlockPool& pool, const int32_t* table, int64_t layer);

}  // namespace bora::model
