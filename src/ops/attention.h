// Causal (optionally sliding-window) multi-head attention of a chunk of queries over a rolling
// KV buffer plus the chunk's own keys, with GQA/MQA head sharing and online softmax.
#pragma once

#include <cstdint>

#include "ops/compute_context.h"

namespace bora::ops {

struct AttentionShape {
  int64_t n_heads = 0;      // query heads H
  int64_t n_kv_heads = 0;   // key/value heads K; query head h reads kv head h / (H / K)
  int64_t head_dim = 0;     // d
  int64_t window = 0;       // W keys including the query itself; 0 = full causal attention
};

// Keys/values of earlier positions: position j lives in slot j % capacity.
// k, v: [capacity, n_kv_heads * head_dim] f32.
struct KvRing {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t capacity = 0;
};

// Largest head_dim the attention kernel supports (its accumulator lives on the stack).
constexpr int64_t kMaxHeadDim = 512;

// q: [tokens, H*d] (post-RoPE), chunk_k/chunk_v: [tokens, K*d] (keys post-RoPE) for positions
// start_pos .. start_pos+tokens-1. Query at position p attends key positions j with
// max(0, p-W+1) <= j <= p; those below start_pos are read from `cache`, which must still hold
// them (start_pos - capacity <= j). out: [tokens, H*d].
void CausalAttention(ComputeContext& ctx, const AttentionShape& shape, const float* q,
                     const float* chunk_k, const float* chunk_v, int64_t start_pos,
                     int64_t tokens, const KvRing& cache, float* out);

}  // namespace bora::ops
