// KV block pool: allocation, reference counts, copy-on-write copies and the prefix-cache index.
#include "model/kv_block_pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "base/checked_math.h"
#include "base/error.h"

namespace bora::model {
namespace {

uint64_t Mix(uint64_t x) {  // SplitMix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t KvBlockPool::BytesPerBlock(const formats::ModelParams& params, ops::KvDType dtype,
                                    int64_t block_size) {
  return 2ull * static_cast<uint64_t>(params.n_layers) * static_cast<uint64_t>(block_size) *
         static_cast<uint64_t>(ops::KvRowBytes(dtype, params.n_kv_heads, params.head_dim));
}

KvBlockPool::KvBlockPool(const formats::ModelParams& params, ops::KvDType dtype, int64_t blocks,
                         int64_t block_size)
    : dtype_(dtype),
      block_size_(block_size),
      n_layers_(params.n_layers),
      kv_heads_(params.n_kv_heads),
      head_dim_(params.head_dim),
      row_elements_(params.n_kv_heads * params.head_dim) {
  if (blocks < 1 || blocks > (int64_t{1} << 30) || block_size < 1) {
    throw InvalidArgument("KV pool: need 1 to 2^30 blocks of at least 1 token, got " +
                          std::to_string(blocks) + " blocks of " + std::to_string(block_size));
  }
  element_bytes_ = dtype == ops::KvDType::kF32 ? 4 : dtype == ops::KvDType::kBF16 ? 2 : 1;
  const uint64_t slots = static_cast<uint64_t>(blocks) * static_cast<uint64_t>(block_size);
  plane_bytes_ = (slots * static_cast<uint64_t>(row_elements_ * element_bytes_) + 63) / 64 * 64;
  scale_bytes_ = dtype == ops::KvDType::kQ8
                     ? (slots * static_cast<uint64_t>(kv_heads_) * 4 + 63) / 64 * 64
                     : 0;
  layer_bytes_ = 2 * plane_bytes_ + 2 * scale_bytes_;
  const std::optional<uint64_t> total = CheckedMul(layer_bytes_, static_cast<uint64_t>(n_layers_));
  if (!total) throw ResourceExhausted("KV pool: size overflows");
  planes_ = AlignedBuffer(static_cast<size_t>(*total));

  refcount_.assign(static_cast<size_t>(blocks), 0);
  cached_.assign(static_cast<size_t>(blocks), 0);
  free_.reserve(static_cast<size_t>(blocks));
  for (int64_t b = blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));  // 0 first
  lru_prev_.assign(static_cast<size_t>(blocks), -1);
  lru_next_.assign(static_cast<size_t>(blocks), -1);
  block_hash_.assign(static_cast<size_t>(blocks), 0);
  block_parent_.assign(static_cast<size_t>(blocks), 0);
  block_tokens_.assign(static_cast<size_t>(slots), 0);
  const size_t index_size = std::bit_ceil(static_cast<size_t>(2 * blocks));
  index_hash_.assign(index_size, 0);
  index_block_.assign(index_size, -1);
}

float* KvBlockPool::key_scales(int64_t layer) {
  return scale_bytes_ == 0 ? nullptr : reinterpret_cast<float*>(values(layer) + plane_bytes_);
}

float* KvBlockPool::value_scales(int64_t layer) {
  return scale_bytes_ == 0 ? nullptr
                           : reinterpret_cast<float*>(values(layer) + plane_bytes_ + scale_bytes_);
}

int32_t KvBlockPool::Allocate() {
  int32_t block = -1;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    block = lru_head_;
    LruRemove(block);
    Evict(block);
    ++counters_.evicted_blocks;
  } else {
    return -1;
  }
  refcount_[block] = 1;
  return block;
}

void KvBlockPool::Retain(int32_t block) {
  if (refcount_[block] == 0) LruRemove(block);  // only cached blocks are kept at zero
  ++refcount_[block];
}

void KvBlockPool::Release(int32_t block) {
  if (refcount_[block] <= 0) throw std::logic_error("KV pool: releasing a free block");
  if (--refcount_[block] > 0) return;
  if (cached_[block]) {
    LruPushBack(block);
  } else {
    free_.push_back(block);
  }
}

void KvBlockPool::CopyBlock(int32_t from, int32_t to) {
  if (log_copies_) copy_log_.emplace_back(from, to);
  const uint64_t block_data = static_cast<uint64_t>(block_size_ * row_elements_ * element_bytes_);
  const uint64_t block_scales = static_cast<uint64_t>(block_size_ * kv_heads_) * 4;
  for (int64_t layer = 0; layer < n_layers_; ++layer) {
    std::memcpy(keys(layer) + to * block_data, keys(layer) + from * block_data, block_data);
    std::memcpy(values(layer) + to * block_data, values(layer) + from * block_data, block_data);
    if (scale_bytes_ != 0) {
      std::memcpy(reinterpret_cast<uint8_t*>(key_scales(layer)) + to * block_scales,
                  reinterpret_cast<uint8_t*>(key_scales(layer)) + from * block_scales,
                  block_scales);
      std::memcpy(reinterpret_cast<uint8_t*>(value_scales(layer)) + to * block_scales,
                  reinterpret_cast<uint8_t*>(value_scales(layer)) + from * block_scales,
                  block_scales);
    }
  }
  ++counters_.copied_blocks;
}

uint64_t KvBlockPool::ChainHash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t hash = Mix(parent + 0x9e3779b97f4a7c15ull);
  for (int32_t token : tokens) hash = Mix(hash ^ static_cast<uint32_t>(token));
  return hash | 1;  // never 0, the parent of the first block
}

int64_t KvBlockPool::IndexFind(uint64_t hash) const {
  const size_t mask = index_hash_.size() - 1;
  for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
    if (index_block_[slot] < 0) return -1;
    if (index_hash_[slot] == hash) return static_cast<int64_t>(slot);
  }
}

void KvBlockPool::IndexErase(int64_t erased) {
  // Backward-shift deletion keeps every remaining entry reachable from its home slot.
  const size_t mask = index_hash_.size() - 1;
  size_t hole = static_cast<size_t>(erased);
  index_block_[hole] = -1;
  for (size_t slot = (hole + 1) & mask; index_block_[slot] >= 0; slot = (slot + 1) & mask) {
    const size_t home = index_hash_[slot] & mask;
    // The entry may move into the hole when its home is not within (hole, slot] cyclically.
    const bool home_in_range =
        hole <= slot ? (hole < home && home <= slot) : (hole < home || home <= slot);
    if (home_in_range) continue;
    index_hash_[hole] = index_hash_[slot];
    index_block_[hole] = index_block_[slot];
    index_block_[slot] = -1;
    hole = slot;
  }
}

int32_t KvBlockPool::Lookup(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  const int64_t slot = IndexFind(hash);
  if (slot >= 0) {
    const int32_t block = index_block_[slot];
    const int32_t* stored = block_tokens_.data() + static_cast<int64_t>(block) * block_size_;
    if (block_parent_[block] == parent && std::equal(tokens.begin(), tokens.end(), stored)) {
      Retain(block);
      ++counters_.prefix_hit_blocks;
      return block;
    }
  }
  ++counters_.prefix_miss_blocks;
  return -1;
}

void KvBlockPool::Register(int32_t block, uint64_t hash, uint64_t parent,
                           std::span<const int32_t> tokens) {
  if (cached_[block] || IndexFind(hash) >= 0) return;
  const size_t mask = index_hash_.size() - 1;
  size_t slot = hash & mask;
  while (index_block_[slot] >= 0) slot = (slot + 1) & mask;  // at most half full: terminates
  index_hash_[slot] = hash;
  index_block_[slot] = block;
  cached_[block] = 1;
  ++cached_count_;
  block_hash_[block] = hash;
  block_parent_[block] = parent;
  std::copy(tokens.begin(), tokens.end(),
            block_tokens_.begin() + static_cast<int64_t>(block) * block_size_);
}

void KvBlockPool::Evict(int32_t block) {
  const int64_t slot = IndexFind(block_hash_[block]);
  if (slot >= 0 && index_block_[slot] == block) IndexErase(slot);
  cached_[block] = 0;
  --cached_count_;
}

void KvBlockPool::LruRemove(int32_t block) {
  const int32_t prev = lru_prev_[block], next = lru_next_[block];
  (prev >= 0 ? lru_next_[prev] : lru_head_) = next;
  (next >= 0 ? lru_prev_[next] : lru_tail_) = prev;
  lru_prev_[block] = lru_next_[block] = -1;
  --lru_size_;
}

void KvBlockPool::LruPushBack(int32_t block) {
  lru_prev_[block] = lru_tail_;
  lru_next_[block] = -1;
  (lru_tail_ >= 0 ? lru_next_[lru_tail_] : lru_head_) = block;
  lru_tail_ = block;
  ++lru_size_;
}

}  // namespace bora::model
