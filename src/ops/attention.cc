// Causal sliding-window attention over a rolling KV buffer plus the chunk's own keys.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>


namespace bora::ops {
namespace {

// Keys scored together before their weights are exponentiated (stack scratch, 256 bytes).
constexpr int64_t kKeyBlock = 64;

}  // namespace

void CausalAttention(ComputeContext& ctx, const AttentionShape& shape, const float* q,
                     const float* chunk_k, const float* chunk_v, int64_t start_pos,
                     int64_t tokens, const KvRing& cache, float* out) {
  const int64_t d = shape.head_dim;
  const int64_t q_row = shape.n_heads * d;
  const int64_t kv_row = shape.n_kv_heads * d;
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  const kernels::KernelSet& k = ctx.kernels();
  // Head-major items: a thread's static range covers whole heads over every token, so the
  // causal triangle (late tokens see more keys) splits evenly between threads.
  ctx.pool().ParallelFor(tokens * shape.n_heads, [&](int64_t begin, int64_t end, int) {
    float accumulator[kMaxHeadDim];
    float weights[kKeyBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t head = item / tokens;
      const int64_t t = item % tokens;
      const int64_t kv_head = head / group;
      const int64_t position = start_pos + t;
      const int64_t first_key = shape.window > 0 ? std::max<int64_t>(0, position - shape.window + 1) : 0;
      const float* query = q + t * q_row + head * d;

      // Online softmax over blocks of keys: scores of a block, one rescale of the running
      // sums when the block raises the maximum, then the block's weights exponentiated together.
      float running_max = -std::numeric_limits<float>::infinity();
      float running_sum = 0.0f;
      std::fill(accumulator, accumulator + d, 0.0f);
      auto key_row = [&](int64_t j) {
        return j >= start_pos ? chunk_k + (j - start_pos) * kv_row + kv_head * d
                              : cache.k + (j % cache.capacity) * kv_row + kv_head * d;
      };
      auto value_row = [&](int64_t j) {
        return j >= start_pos ? chunk_v + (j - start_pos) * kv_row + kv_head * d
                              : cache.v + (j % cache.capacity) * kv_row + kv_head * d;
      };
      for (int64_t block_start = first_key; block_start <= position; block_start += kKeyBlock) {
        const int64_t count = std::min<int64_t>(kKeyBlock, position - block_start + 1);
        float block_max = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < count; ++i) {
          weights[i] = k.dot_f32(query, key_row(block_start + i), d) * scale;
          block_max = std::max(block_max, weights[i]);
        }
        if (block_max > running_max) {
          const float correction = std::exp(running_max - block_max);  // 0 on the first block
          for (int64_t i = 0; i < d; ++i) accumulator[i] *= correction;
          running_sum *= correction;
          running_max = block_max;
        }
        for (int64_t i = 0; i < count; ++i) weights[i] -= running_max;
        k.exp_inplace(weights, count);
        for (int64_t i = 0; i < count; ++i) {
          running_sum += weights[i];
          k.axpy(weights[i], value_row(block_start + i), accumulator, d);
        }
      }
      float* result = out + t * q_row + head * d;
      const float inverse_sum = 1.0f / running_sum;
      for (int64_t i = 0; i < d; ++i) result[i] = accumulator[i] * inverse_sum;
    }
  });
}

}  // namespace bora::ops
