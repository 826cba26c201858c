// Causal sliding-window attention over a rolling KV buffer plus the chunk's own keys.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>


namespace bora::ops {

void CausalAttention(ComputeContext& ctx, const AttentionShape& shape, const float* q,
                     const float* chunk_k, const float* chunk_v, int64_t start_pos,
                     int64_t tokens, const KvRing& cache, float* out) {
  const int64_t d = shape.head_dim;
  const int64_t q_row = shape.n_heads * d;
  const int64_t kv_row = shape.n_kv_heads * d;
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  const kernels::KernelSet& k = ctx.kernels();
  ctx.pool().ParallelFor(tokens * shape.n_heads, [&](int64_t begin, int64_t end, int) {
    float accumulator[kMaxHeadDim];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / shape.n_heads;
      const int64_t head = item % shape.n_heads;
      const int64_t kv_head = head / group;
      const int64_t position = start_pos + t;
      const int64_t first_key = shape.window > 0 ? std::max<int64_t>(0, position - shape.window + 1) : 0;
      const float* query = q + t * q_row + head * d;

      // Online softmax: running max, running sum of exp, running weighted value sum.
      float running_max = -std::numeric_limits<float>::infinity();
      float running_sum = 0.0f;
      std::fill(accumulator, accumulator + d, 0.0f);
      for (int64_t j = first_key; j <= position; ++j) {
        const float* key;
        const float* value;
        if (j >= start_pos) {
          key = chunk_k + (j - start_pos) * kv_row + kv_head * d;
          value = chunk_v + (j - start_pos) * kv_row + kv_head * d;
        } else {
          int64_t slot = j % cache.capacity;
          key = cache.k + slot * kv_row + kv_head * d;
          value = cache.v + slot * kv_row + kv_head * d;
        }
        float score = k.dot_f32(query, key, d) * scale;
        if (score > running_max) {
          float correction = std::exp(running_max - score);  // 0 on the first key
          for (int64_t i = 0; i < d; ++i) accumulator[i] *= correction;
          running_sum *= correction;
          running_max = score;
        }
        float weight = std::exp(score - running_max);
        running_sum += weight;
        k.axpy(weight, value, accumulator, d);
      }
      float* result = out + t * q_row + head * d;
      const float inverse_sum = 1.0f / running_sum;
      for (int64_t i = 0; i < d; ++i) result[i] = accumulator[i] * inverse_sum;
    }
  });
}

}  // namespace bora::ops
