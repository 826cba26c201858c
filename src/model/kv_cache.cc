// Contiguous rolling-buffer KV cache.
#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace bora::model {
namespace {

int64_t LayerCapacity(const formats::ModelParams& params, int64_t layer, int64_t max_positions) {
  int64_t window = params.layer_windows[layer];
  return window > 0 ? std::min(window, max_positions) : max_positions;
}

}  // namespace

ContiguousKvCache::ContiguousKvCache(const formats::ModelParams& params, int64_t max_positions)
    : KvCache(max_positions), row_(params.n_kv_heads * params.head_dim) {
  for (int64_t layer = 0; layer < params.n_layers; ++layer) {
    int64_t capacity = LayerCapacity(params, layer, max_positions);
    capacity_.push_back(capacity);
    keys_.emplace_back(static_cast<size_t>(capacity * row_), 0.0f);
    values_.emplace_back(static_cast<size_t>(capacity * row_), 0.0f);
  }
}

void ContiguousKvCache::StoreAfterAttention(int64_t layer, const float* chunk_k,
                                            const float* chunk_v, int64_t tokens) {
  const int64_t capacity = capacity_[layer];
  const int64_t first = std::max<int64_t>(0, tokens - capacity);  // older rows would be overwritten
  for (int64_t t = first; t < tokens; ++t) {
    int64_t slot = (position_ + t) % capacity;
    std::memcpy(keys_[layer].data() + slot * row_, chunk_k + t * row_, sizeof(float) * row_);
    std::memcpy(values_[layer].data() + slot * row_, chunk_v + t * row_, sizeof(float) * row_);
  }
}

ops::KvView ContiguousKvCache::View(int64_t layer) const {
  ops::KvView view;
  view.dtype = ops::KvDType::kF32;
  view.k = keys_[layer].data();
  view.v = values_[layer].data();
  view.capacity = capacity_[layer];
  return view;
}

uint64_t ContiguousKvCache::BytesFor(const formats::ModelParams& params, int64_t max_positions) {
  uint64_t total = 0;
  const uint64_t row = static_cast<uint64_t>(params.n_kv_heads * params.head_dim);
  for (int64_t layer = 0; layer < params.n_layers; ++layer) {
    total += 2 * sizeof(float) * row *
             static_cast<uint64_t>(LayerCapacity(params, layer, max_positions));
  }
  return total;
}

}  // namespace bora::model
