// Causal (optionally sliding-window) multi-head attention of a chunk of queries over a rolling or
// paged KV cache (f32, bf16 or q8) plus the chunk's own keys, GQA/MQA sharing, online softmax.
#pragma once

#include <cstdint>

#include "ops/compute_context.h"

namespace bora::ops {

struct AttentionShape {
  int64_t n_heads = 0;     // query heads H
  int64_t n_kv_heads = 0;  // key/value heads K; query head h reads kv head h / (H / K)
  int64_t head_dim = 0;    // d
  int64_t window = 0;      // W keys including the query itself; 0 = full causal attention
};

// How the KV cache stores a key or value row: f32 (exact), bf16 (round to nearest even), or q8
// (per position and kv head: d int8 values and one f32 scale, value = int8 * scale).
enum class KvDType : uint8_t { kF32, kBF16, kQ8 };

// Bytes one row of `heads` kv heads of width `head_dim` takes in `dtype` (q8: scales included).
int64_t KvRowBytes(KvDType dtype, int64_t heads, int64_t head_dim);
const char* KvDTypeName(KvDType dtype);  // "f32", "bf16", "q8"

// Where attention finds the keys/values of earlier positions of one layer. Position j lives in
// slot j % capacity (a rolling buffer; block_table null) or, paged, in slot
// block_table[j / block_size] * block_size + j % block_size. k/v: [slots, n_kv_heads*head_dim]
// elements of `dtype` (q8: int8); k_scales/v_scales (q8 only): [slots, n_kv_heads] f32.
struct KvView {
  KvDType dtype = KvDType::kF32;
  const void* k = nullptr;
  const void* v = nullptr;
  const float* k_scales = nullptr;
  const float* v_scales = nullptr;
  int64_t capacity = 0;
  const int32_t* block_table = nullptr;
  int64_t block_size = 0;

  int64_t Slot(int64_t position) const {
    return block_table != nullptr
               ? int64_t{block_table[position / block_size]} * block_size + position % block_size
               : position % capacity;
  }
};

// Stores one position's row [heads*head_dim] as a slot of `dtype`: data `slot_data`
// ([heads*head_dim] elements) and, for q8, `slot_scales` ([heads] f32). Replaces `row` by the
// values read back from the slot, so a chunk attending to its own keys sees exactly what later
// chunks read from the cache (any split of a prompt gives the same logits).
void StoreKvRow(KvDType dtype, float* row, int64_t heads, int64_t head_dim, void* slot_data,
                float* slot_scales);

// Largest head_dim the attention kernel supports (its accumulator lives on the stack).
constexpr int64_t kMaxHeadDim = 512;

// q: [tokens, H*d] (post-RoPE), chunk_k/chunk_v: [tokens, K*d] (keys post-RoPE) for positions
// start_pos .. start_pos+tokens-1. Query at position p attends key positions j with
// max(0, p-W+1) <= j <= p; those below start_pos are read from `cache`, which must still hold
// them (a ring: start_pos - capacity <= j). out: [tokens, H*d].
void CausalAttention(ComputeContext& ctx, const AttentionShape& shape, const float* q,
                     const float* chunk_k, const float* chunk_v, int64_t start_pos, int64_t tokens,
                     const KvView& cache, float* out);

}  // namespace bora::ops
