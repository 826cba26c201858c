// Causal sliding-window attention over a rolling KV buffer plus the chunk's own keys.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/float16.h"

namespace bora::ops {
namespace {

// Keys scored together before their weights are exponentiated (stack scratch, 256 bytes).
constexpr int64_t kKeyBlock = 64;

// q8 scale: the row's largest magnitude maps to 127.
float Q8Scale(const float* values, int64_t count) {
  float max_abs = 0.0f;
  for (int64_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(values[i]));
  return max_abs / 127.0f;
}

int8_t Q8Code(float value, float inverse_scale) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(value * inverse_scale), -127.0f, 127.0f));
}

// Row of one kv head (d values) at `slot` of a cache plane, as f32: a pointer into the cache
// for f32, else converted into `buffer`.
const float* CacheRow(const KvView& cache, const void* plane, const float* scales, int64_t slot,
                      int64_t kv_head, int64_t n_kv_heads, int64_t d, float* buffer) {
  const int64_t offset = (slot * n_kv_heads + kv_head) * d;
  switch (cache.dtype) {
    case KvDType::kF32:
      return static_cast<const float*>(plane) + offset;
    case KvDType::kBF16: {
      const uint16_t* row = static_cast<const uint16_t*>(plane) + offset;
      for (int64_t i = 0; i < d; ++i) buffer[i] = Bf16ToF32(row[i]);
      return buffer;
    }
    case KvDType::kQ8: {
      const int8_t* row = static_cast<const int8_t*>(plane) + offset;
      const float scale = scales[slot * n_kv_heads + kv_head];
      for (int64_t i = 0; i < d; ++i) buffer[i] = static_cast<float>(row[i]) * scale;
      return buffer;
    }
  }
  return nullptr;
}

}  // namespace

int64_t KvRowBytes(KvDType dtype, int64_t heads, int64_t head_dim) {
  switch (dtype) {
    case KvDType::kF32:
      return heads * head_dim * 4;
    case KvDType::kBF16:
      return heads * head_dim * 2;
    case KvDType::kQ8:
      return heads * head_dim + heads * 4;
  }
  return 0;
}

const char* KvDTypeName(KvDType dtype) {
  switch (dtype) {
    case KvDType::kF32:
      return "f32";
    case KvDType::kBF16:
      return "bf16";
    case KvDType::kQ8:
      return "q8";
  }
  return "?";
}

void StoreKvRow(KvDType dtype, float* row, int64_t heads, int64_t head_dim, void* slot_data,
                float* slot_scales) {
  const int64_t width = heads * head_dim;
  switch (dtype) {
    case KvDType::kF32:
      std::memcpy(slot_data, row, sizeof(float) * width);
      return;
    case KvDType::kBF16: {
      uint16_t* out = static_cast<uint16_t*>(slot_data);
      for (int64_t i = 0; i < width; ++i) {
        out[i] = F32ToBf16(row[i]);
        row[i] = Bf16ToF32(out[i]);
      }
      return;
    }
    case KvDType::kQ8: {
      int8_t* out = static_cast<int8_t*>(slot_data);
      for (int64_t h = 0; h < heads; ++h) {
        float* values = row + h * head_dim;
        int8_t* codes = out + h * head_dim;
        const float scale = Q8Scale(values, head_dim);
        const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
        slot_scales[h] = scale;
        for (int64_t i = 0; i < head_dim; ++i) {
          codes[i] = Q8Code(values[i], inverse);
          values[i] = static_cast<float>(codes[i]) * scale;  // as CacheRow reads it back
        }
      }
      return;
    }
  }
}

void CausalAttention(ComputeContext& ctx, const AttentionShape& shape, const float* q,
                     const float* chunk_k, const float* chunk_v, int64_t start_pos, int64_t tokens,
                     const KvView& cache, float* out) {
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
    float converted_key[kMaxHeadDim];  // bf16/q8 cache rows as f32
    float converted_value[kMaxHeadDim];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t head = item / tokens;
      const int64_t t = item % tokens;
      const int64_t kv_head = head / group;
      const int64_t position = start_pos + t;
      const int64_t first_key =
          shape.window > 0 ? std::max<int64_t>(0, position - shape.window + 1) : 0;
      const float* query = q + t * q_row + head * d;

      // Online softmax over blocks of keys: scores of a block, one rescale of the running
      // sums when the block raises the maximum, then the block's weights exponentiated together.
      float running_max = -std::numeric_limits<float>::infinity();
      float running_sum = 0.0f;
      std::fill(accumulator, accumulator + d, 0.0f);
      auto key_row = [&](int64_t j) {
        return j >= start_pos ? chunk_k + (j - start_pos) * kv_row + kv_head * d
                              : CacheRow(cache, cache.k, cache.k_scales, cache.Slot(j), kv_head,
                                         shape.n_kv_heads, d, converted_key);
      };
      auto value_row = [&](int64_t j) {
        return j >= start_pos ? chunk_v + (j - start_pos) * kv_row + kv_head * d
                              : CacheRow(cache, cache.v, cache.v_scales, cache.Slot(j), kv_head,
                                         shape.n_kv_heads, d, converted_value);
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
