// Paged KV cache: block table management, copy-on-write, window release and prefix reuse.
#include "model/paged_kv_cache.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace bora::model {

PagedKvCache::PagedKvCache(KvBlockPool& pool, const formats::ModelParams& params,
                           int64_t max_positions)
    : KvCache(max_positions), pool_(pool), block_size_(pool.block_size()) {
  for (int64_t window : params.layer_windows) {
    if (window <= 0) {
      window_ = 0;
      break;
    }
    window_ = std::max(window_, window);
  }
  table_.assign(static_cast<size_t>((max_positions + block_size_ - 1) / block_size_), -1);
}

PagedKvCache::~PagedKvCache() { Clear(); }

void PagedKvCache::Clear() {
  for (int32_t& block : table_) {
    if (block >= 0) pool_.Release(block);
    block = -1;
  }
  position_ = 0;
  first_live_block_ = 0;
  registered_blocks_ = 0;
  registered_hash_ = prefix_root_;
}

void PagedKvCache::SetPrefixRoot(uint64_t root) {
  if (position_ != 0 || held_blocks() != 0)
    throw std::logic_error("SetPrefixRoot on a non-empty cache");
  prefix_root_ = root;
  registered_hash_ = root;
}

int64_t PagedKvCache::held_blocks() const {
  return std::count_if(table_.begin(), table_.end(), [](int32_t block) { return block >= 0; });
}

int64_t PagedKvCache::AttachPrefix(std::span<const int32_t> prompt) {
  if (position_ != 0 || held_blocks() != 0)
    throw std::logic_error("AttachPrefix on a non-empty cache");
  const int64_t size = static_cast<int64_t>(prompt.size());
  uint64_t parent = prefix_root_;
  int64_t matched = 0;
  for (int64_t b = 0; (b + 1) * block_size_ <= std::min(size, max_positions_); ++b) {
    const std::span<const int32_t> tokens = prompt.subspan(b * block_size_, block_size_);
    const uint64_t hash = KvBlockPool::ChainHash(parent, tokens);
    const int32_t block = pool_.Lookup(hash, parent, tokens);
    if (block < 0) break;
    table_[b] = block;
    parent = hash;
    ++matched;
  }
  registered_blocks_ = matched;
  registered_hash_ = parent;
  position_ = std::min(matched * block_size_, size - 1);  // the last prompt token always runs
  return position_;
}

void PagedKvCache::ForkFrom(const PagedKvCache& other) {
  if (&other.pool_ != &pool_ || held_blocks() != 0)
    throw std::logic_error("ForkFrom: other pool or non-empty cache");
  table_ = other.table_;
  for (int32_t block : table_) {
    if (block >= 0) pool_.Retain(block);
  }
  position_ = other.position_;
  first_live_block_ = other.first_live_block_;
  registered_blocks_ = other.registered_blocks_;
  registered_hash_ = other.registered_hash_;
  prefix_root_ = other.prefix_root_;
}

void PagedKvCache::RegisterFullBlocks(std::span<const int32_t> tokens) {
  while ((registered_blocks_ + 1) * block_size_ <= position_ &&
         (registered_blocks_ + 1) * block_size_ <= static_cast<int64_t>(tokens.size())) {
    const std::span<const int32_t> block_tokens =
        tokens.subspan(registered_blocks_ * block_size_, block_size_);
    const uint64_t hash = KvBlockPool::ChainHash(registered_hash_, block_tokens);
    const int32_t block = table_[registered_blocks_];
    if (block >= 0) pool_.Register(block, hash, registered_hash_, block_tokens);
    registered_hash_ = hash;
    ++registered_blocks_;
  }
}

void PagedKvCache::ReleaseOutsideWindow() {
  if (window_ <= 0) return;
  // The next query (at position_) reads keys from position_ - window + 1 on.
  const int64_t first_needed = std::max<int64_t>(0, position_ - window_ + 1);
  while ((first_live_block_ + 1) * block_size_ <= first_needed) {
    int32_t& block = table_[first_live_block_];
    if (block >= 0) pool_.Release(block);
    block = -1;
    ++first_live_block_;
  }
}

int64_t PagedKvCache::BlocksNeeded(int64_t tokens) const {
  if (tokens <= 0) return 0;
  const int64_t first = position_ / block_size_, last = (position_ + tokens - 1) / block_size_;
  int64_t needed = 0;
  for (int64_t b = first; b <= last; ++b) {
    const int32_t block = table_[b];
    if (block < 0 || pool_.Shared(block)) ++needed;
  }
  return needed;
}

void PagedKvCache::Reserve(int64_t tokens) {
  if (position_ + tokens > max_positions_) {
    throw ResourceExhausted("context full: " + std::to_string(position_) + " + " +
                            std::to_string(tokens) + " tokens exceed the context of " +
                            std::to_string(max_positions_));
  }
  ReleaseOutsideWindow();
  const int64_t needed = BlocksNeeded(tokens);
  if (needed > pool_.available_blocks()) {
    throw ResourceExhausted("KV cache full: " + std::to_string(needed) + " more blocks needed, " +
                            std::to_string(pool_.available_blocks()) + " of " +
                            std::to_string(pool_.total_blocks()) +
                            " free (raise --kv-memory or lower the parallel sequences)");
  }
  if (tokens <= 0) return;
  const int64_t first = position_ / block_size_, last = (position_ + tokens - 1) / block_size_;
  for (int64_t b = first; b <= last; ++b) {
    int32_t& block = table_[b];
    if (block >= 0 && !pool_.Shared(block)) continue;
    const int32_t fresh = pool_.Allocate();  // cannot fail: counted above
    if (block >= 0) {  // copy on write: the partial block holds earlier positions
      pool_.CopyBlock(block, fresh);
      pool_.Release(block);
    }
    block = fresh;
  }
}

void StorePagedRows(KvBlockPool& pool, const int32_t* table, int64_t position, int64_t layer, float* keys,
                    float* values, int64_t tokens) {
  const int64_t heads = pool.kv_heads(), d = pool.head_dim(), block_size = pool.block_size();
  const int64_t row = heads * d, row_bytes = pool.row_bytes();
  float* key_scales = pool.key_scales(layer);
  float* value_scales = pool.value_scales(layer);
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t at = position + t;
    const int64_t slot = int64_t{table[at / block_size]} * block_size + at % block_size;
    ops::StoreKvRow(pool.dtype(), keys + t * row, heads, d, pool.keys(layer) + slot * row_bytes,
                    key_scales != nullptr ? key_scales + slot * heads : nullptr);
    ops::StoreKvRow(pool.dtype(), values + t * row, heads, d, pool.values(layer) + slot * row_bytes,
                    value_scales != nullptr ? value_scales + slot * heads : nullptr);
  }
}

ops::KvView PagedView(KvBlockPool& pool, const int32_t* table, int64_t layer) {
  ops::KvView view;
  view.dtype = pool.dtype();
  view.k = pool.keys(layer);
  view.v = pool.values(layer);
  view.k_scales = pool.key_scales(layer);
  view.v_scales = pool.value_scales(layer);
  view.block_table = table;
  view.block_size = pool.block_size();
  return view;
}

void PagedKvCache::StoreBeforeAttention(int64_t layer, float* keys, float* values, int64_t tokens) {
  StorePagedRows(pool_, table_.data(), position_, layer, keys, values, tokens);
}

ops::KvView PagedKvCache::View(int64_t layer) const { return PagedView(pool_, table_.data(), layer); }

void MirrorKvCache::Reset(KvBlockPool& pool, int64_t max_positions, int64_t position,
                          std::span<const int32_t> table) {
  pool_ = &pool;
  max_positions_ = max_positions;
  position_ = position;
  table_.assign(table.begin(), table.end());
}

void MirrorKvCache::StoreBeforeAttention(int64_t layer, float* keys, float* values, int64_t tokens) {
  StorePagedRows(*pool_, table_.data(), position_, layer, keys, values, tokens);
}

ops::KvView MirrorKvCache::View(int64_t layer) const { return PagedView(*pool_, table_.data(), layer); }

}  // namespace bora::model
