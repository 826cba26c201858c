// Contiguous f32 KV cache of one sequence: per layer a rolling buffer of C slots, C = the layer's
// sliding window (capped by the context) or the whole context; position p lives in slot p % C.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/model_params.h"

namespace bora::model {

class KvCache {
 public:
  // max_positions: the context length, the most tokens this sequence may hold.
  KvCache(const formats::ModelParams& params, int64_t max_positions);

  int64_t position() const { return position_; }  // tokens already processed
  int64_t max_positions() const { return max_positions_; }
  int64_t capacity(int64_t layer) const { return capacity_[layer]; }
  // [capacity(layer), n_kv_heads*head_dim] f32, keys after RoPE.
  float* keys(int64_t layer) { return keys_[layer].data(); }
  float* values(int64_t layer) { return values_[layer].data(); }
  const float* keys(int64_t layer) const { return keys_[layer].data(); }
  const float* values(int64_t layer) const { return values_[layer].data(); }

  // Stores the last min(tokens, C) rows of a chunk that started at position(); the caller
  // calls Advance(tokens) once every layer is stored.
  void Store(int64_t layer, const float* chunk_k, const float* chunk_v, int64_t tokens);
  void Advance(int64_t tokens) { position_ += tokens; }
  void Reset() { position_ = 0; }

  // Bytes this cache allocates for a model and context (for the memory estimate).
  static uint64_t BytesFor(const formats::ModelParams& params, int64_t max_positions);

 private:
  int64_t row_ = 0;  // n_kv_heads * head_dim
  int64_t max_positions_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> capacity_;
  std::vector<std::vector<float>> keys_;
  std::vector<std::vector<float>> values_;
};

}  // namespace bora::model
