// Tests ops::CausalAttention: hand-computed cases, GQA/MQA head mapping, causality, sliding window,
// the KV ring and a double-precision reference.
#include "ops/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/cpu_features.h"
#include "base/thread_pool.h"

namespace bora::ops {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

AttentionShape Shape(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t window) {
  AttentionShape shape;
  shape.n_heads = n_heads;
  shape.n_kv_heads = n_kv_heads;
  shape.head_dim = head_dim;
  shape.window = window;
  return shape;
}

// Attention of `tokens` queries at positions 0..tokens-1 over their own keys (no cache).
std::vector<float> RunFromStart(ComputeContext& pool, const AttentionShape& shape,
                                const std::vector<float>& q, const std::vector<float>& k,
                                const std::vector<float>& v, int64_t tokens) {
  std::vector<float> out(static_cast<size_t>(tokens * shape.n_heads * shape.head_dim), kNaN);
  KvView empty;
  CausalAttention(pool, shape, q.data(), k.data(), v.data(), 0, tokens, empty, out.data());
  return out;
}

// Naive masked softmax attention in double over positions 0..positions-1; returns the rows for
// positions first..positions-1.
std::vector<double> ReferenceAttention(const AttentionShape& shape, const std::vector<float>& q,
                                       const std::vector<float>& k, const std::vector<float>& v,
                                       int64_t positions, int64_t first) {
  const int64_t d = shape.head_dim;
  const int64_t q_row = shape.n_heads * d;
  const int64_t kv_row = shape.n_kv_heads * d;
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  std::vector<double> out;
  for (int64_t p = first; p < positions; ++p) {
    for (int64_t h = 0; h < shape.n_heads; ++h) {
      const int64_t kv = h / group;
      std::vector<double> scores(static_cast<size_t>(positions), 0.0);
      std::vector<bool> visible(static_cast<size_t>(positions), false);
      double max_score = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < positions; ++j) {
        bool causal = j <= p;
        bool in_window = shape.window == 0 || p - j < shape.window;
        if (!causal || !in_window) continue;
        visible[j] = true;
        double dot = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          dot += static_cast<double>(q[p * q_row + h * d + i]) * k[j * kv_row + kv * d + i];
        }
        scores[j] = dot / std::sqrt(static_cast<double>(d));
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < positions; ++j) {
        if (!visible[j]) continue;
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      for (int64_t i = 0; i < d; ++i) {
        double acc = 0.0;
        for (int64_t j = 0; j < positions; ++j) {
          if (visible[j]) acc += scores[j] / sum * v[j * kv_row + kv * d + i];
        }
        out.push_back(acc);
      }
    }
  }
  return out;
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> values(n);
  for (float& value : values) value = uniform(rng);
  return values;
}

bool SameBits(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

TEST(CausalAttentionTest, SingleKeyReturnsItsValue) {
  ComputeContext pool(1);
  const AttentionShape shape = Shape(1, 1, 4, 0);
  const std::vector<float> q = {0.3f, -1.0f, 2.0f, 0.5f};
  const std::vector<float> k = {1.0f, 2.0f, -3.0f, 4.0f};
  const std::vector<float> v = {5.0f, -6.0f, 7.5f, 0.25f};
  std::vector<float> out = RunFromStart(pool, shape, q, k, v, 1);
  // One key: softmax weight exactly 1, output exactly v.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], v[i]) << i;
}

TEST(CausalAttentionTest, TwoKeysWithKnownScores) {
  ComputeContext pool(2);
  // d = 4, scale 1/2. Query at position 1 is q1 = [1, 0, 0, 0]; keys: k0 = 0 (score 0),
  // k1 = [2 ln 3, 0, 0, 0] (score 2 ln 3 / 2 = ln 3). Weights e^0 : e^ln3 = 1 : 3 -> [1/4, 3/4].
  // v0 = [4, 0, 8, -4], v1 = [0, 4, 0, 4] -> [1, 3, 2, -1 + 3] = [1, 3, 2, 2].
  // Query at position 0 sees only k0 -> exactly v0.
  const AttentionShape shape = Shape(1, 1, 4, 0);
  const float two_ln3 = 2.0f * std::log(3.0f);
  const std::vector<float> q = {7.0f, 7.0f, 7.0f, 7.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> k = {0, 0, 0, 0, two_ln3, 0, 0, 0};
  const std::vector<float> v = {4, 0, 8, -4, 0, 4, 0, 4};
  std::vector<float> out = RunFromStart(pool, shape, q, k, v, 2);
  EXPECT_EQ(out[0], 4.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[2], 8.0f);
  EXPECT_EQ(out[3], -4.0f);
  EXPECT_NEAR(out[4], 1.0f, 1e-5f);
  EXPECT_NEAR(out[5], 3.0f, 1e-5f);
  EXPECT_NEAR(out[6], 2.0f, 1e-5f);
  EXPECT_NEAR(out[7], 2.0f, 1e-5f);
}

TEST(CausalAttentionTest, ScoresAreScaledBySqrtHeadDim) {
  ComputeContext pool(1);
  // d = 16, scale 1/4. q1 = [1, 0, ...], k0 = 0, k1 = [4 ln 3, 0, ...]: score ln 3 -> [1/4, 3/4].
  // (Without the 1/sqrt(d) scale the weights would be 1 : 81.)
  const int64_t d = 16;
  const AttentionShape shape = Shape(1, 1, d, 0);
  std::vector<float> q(2 * d, 0.0f), k(2 * d, 0.0f), v(2 * d, 0.0f);
  q[d] = 1.0f;
  k[d] = 4.0f * std::log(3.0f);
  v[0] = 8.0f;  // v0 = [8, 0, ...], v1 = [0, ..., 0, 4]
  v[2 * d - 1] = 4.0f;
  std::vector<float> out = RunFromStart(pool, shape, q, k, v, 2);
  EXPECT_NEAR(out[d], 2.0f, 1e-5f);          // 8 / 4
  EXPECT_NEAR(out[2 * d - 1], 3.0f, 1e-5f);  // 4 * 3 / 4
}

TEST(CausalAttentionTest, GqaHeadsShareKvHeads) {
  ComputeContext pool(2);
  // H = 4, K = 2, d = 2, scale 1/sqrt(2); every query head at position 1 has q = [1, 0].
  // kv head 0: keys both zero -> uniform; values [1, 2] and [3, 4] -> [2, 3].
  // kv head 1: keys [0, 0] and [sqrt(2) ln 3, 0] -> scores 0, ln 3 -> weights [1/4, 3/4];
  //            values [10, 20] and [30, 40] -> [2.5 + 22.5, 5 + 30] = [25, 35].
  // Heads 0, 1 read kv head 0 -> [2, 3]; heads 2, 3 read kv head 1 -> [25, 35].
  const AttentionShape shape = Shape(4, 2, 2, 0);
  const float key = std::sqrt(2.0f) * std::log(3.0f);
  const std::vector<float> q = {0, 0, 0, 0, 0, 0, 0, 0,   // position 0
                                1, 0, 1, 0, 1, 0, 1, 0};  // position 1
  const std::vector<float> k = {0, 0, 0,   0,             // position 0: kv0, kv1
                                0, 0, key, 0};            // position 1
  const std::vector<float> v = {1, 2, 10, 20,             // position 0
                                3, 4, 30, 40};            // position 1
  std::vector<float> out = RunFromStart(pool, shape, q, k, v, 2);
  // Position 0: one key each -> the kv head's value.
  const float expected0[] = {1, 2, 1, 2, 10, 20, 10, 20};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], expected0[i]) << i;
  const float expected1[] = {2, 3, 2, 3, 25, 35, 25, 35};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(out[8 + i], expected1[i], 1e-4f) << i;
}

TEST(CausalAttentionTest, MqaAllHeadsReadTheOnlyKvHead) {
  ComputeContext pool(3);
  // H = 3, K = 1, d = 2. Keys [0, 0] and [sqrt(2) ln 3, 0]; values [4, 0] and [0, 8].
  // Head 0: q = [0, 0]  -> uniform            -> [2, 4]
  // Head 1: q = [1, 0]  -> scores 0, ln 3     -> [1/4, 3/4] -> [1, 6]
  // Head 2: q = [-1, 0] -> scores 0, -ln 3    -> [3/4, 1/4] -> [3, 2]
  const AttentionShape shape = Shape(3, 1, 2, 0);
  const float key = std::sqrt(2.0f) * std::log(3.0f);
  const std::vector<float> q = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, -1, 0};
  const std::vector<float> k = {0, 0, key, 0};
  const std::vector<float> v = {4, 0, 0, 8};
  std::vector<float> out = RunFromStart(pool, shape, q, k, v, 2);
  const float expected0[] = {4, 0, 4, 0, 4, 0};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[i], expected0[i]) << i;
  const float expected1[] = {2, 4, 1, 6, 3, 2};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[6 + i], expected1[i], 1e-5f) << i;
}

TEST(CausalAttentionTest, LaterKeysDoNotAffectEarlierQueries) {
  ComputeContext pool(2);
  const int64_t tokens = 6;
  const AttentionShape shape = Shape(2, 1, 4, 0);
  std::mt19937 rng(7);
  const std::vector<float> q = RandomVector(tokens * 2 * 4, rng, 1.0f);
  const std::vector<float> k = RandomVector(tokens * 4, rng, 1.0f);
  const std::vector<float> v = RandomVector(tokens * 4, rng, 1.0f);
  const std::vector<float> base = RunFromStart(pool, shape, q, k, v, tokens);
  // Change key and value of position 4.
  std::vector<float> k2 = k, v2 = v;
  for (int i = 0; i < 4; ++i) {
    k2[4 * 4 + i] += 1.5f;
    v2[4 * 4 + i] -= 2.0f;
  }
  const std::vector<float> changed = RunFromStart(pool, shape, q, k2, v2, tokens);
  const size_t row = 2 * 4;
  for (int64_t t = 0; t < tokens; ++t) {
    bool same = SameBits(base.data() + t * row, changed.data() + t * row, row);
    if (t < 4) {
      EXPECT_TRUE(same) << "query " << t << " saw the later key at position 4";
    } else {
      EXPECT_FALSE(same) << "query " << t << " ignored the key at position 4";
    }
  }
}

TEST(CausalAttentionTest, SlidingWindowSeesExactlyWKeys) {
  ComputeContext pool(2);
  const int64_t tokens = 8;
  const int64_t window = 3;
  const AttentionShape shape = Shape(2, 2, 4, window);
  const size_t kv_row = 2 * 4;
  const size_t q_row = 2 * 4;
  std::mt19937 rng(11);
  const std::vector<float> q = RandomVector(tokens * q_row, rng, 1.0f);
  const std::vector<float> k = RandomVector(tokens * kv_row, rng, 1.0f);
  const std::vector<float> v = RandomVector(tokens * kv_row, rng, 1.0f);
  const std::vector<float> base = RunFromStart(pool, shape, q, k, v, tokens);
  for (int64_t p = window; p < tokens; ++p) {
    SCOPED_TRACE(::testing::Message() << "query position " << p);
    for (int64_t changed_position : {p - window, p - window + 1}) {
      std::vector<float> k2 = k, v2 = v;
      for (size_t i = 0; i < kv_row; ++i) {
        k2[changed_position * kv_row + i] += 0.75f;
        v2[changed_position * kv_row + i] += 1.0f;
      }
      const std::vector<float> out = RunFromStart(pool, shape, q, k2, v2, tokens);
      const bool same = SameBits(base.data() + p * q_row, out.data() + p * q_row, q_row);
      if (changed_position == p - window) {
        EXPECT_TRUE(same) << "key at p-W=" << changed_position << " is outside the window";
      } else {
        EXPECT_FALSE(same) << "key at p-W+1=" << changed_position << " is inside the window";
      }
    }
  }
}

TEST(CausalAttentionTest, WindowOfOneReturnsOwnValue) {
  ComputeContext pool(2);
  const int64_t tokens = 5;
  const AttentionShape shape = Shape(4, 2, 3, 1);
  std::mt19937 rng(5);
  const std::vector<float> q = RandomVector(tokens * 4 * 3, rng, 1.0f);
  const std::vector<float> k = RandomVector(tokens * 2 * 3, rng, 1.0f);
  const std::vector<float> v = RandomVector(tokens * 2 * 3, rng, 1.0f);
  const std::vector<float> out = RunFromStart(pool, shape, q, k, v, tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < 4; ++h) {
      for (int64_t i = 0; i < 3; ++i) {
        EXPECT_EQ(out[(t * 4 + h) * 3 + i], v[(t * 2 + h / 2) * 3 + i]) << t << " " << h;
      }
    }
  }
}

TEST(CausalAttentionTest, WindowAtLeastPositionsEqualsFullAttention) {
  ComputeContext pool(2);
  const int64_t tokens = 7;
  std::mt19937 rng(9);
  const std::vector<float> q = RandomVector(tokens * 2 * 8, rng, 1.0f);
  const std::vector<float> k = RandomVector(tokens * 1 * 8, rng, 1.0f);
  const std::vector<float> v = RandomVector(tokens * 1 * 8, rng, 1.0f);
  const std::vector<float> full = RunFromStart(pool, Shape(2, 1, 8, 0), q, k, v, tokens);
  const std::vector<float> wide = RunFromStart(pool, Shape(2, 1, 8, tokens), q, k, v, tokens);
  EXPECT_TRUE(SameBits(full.data(), wide.data(), full.size()));
}

TEST(CausalAttentionTest, EarlierKeysComeFromTheRingSlot) {
  // 8 positions; the chunk is positions 5..7 (start_pos 5), window 4, so the keys needed from
  // before the chunk are positions 2..4, held in a ring of capacity 3: position j in slot j % 3
  // (2 -> slot 2, 3 -> slot 0, 4 -> slot 1). The result must equal a one-shot computation over
  // all 8 positions bit for bit (same keys, same order, same arithmetic).
  ComputeContext pool(2);
  const int64_t positions = 8;
  const int64_t start_pos = 5;
  const int64_t tokens = positions - start_pos;
  const AttentionShape shape = Shape(4, 2, 8, 4);
  const size_t q_row = 4 * 8;
  const size_t kv_row = 2 * 8;
  std::mt19937 rng(13);
  const std::vector<float> q = RandomVector(positions * q_row, rng, 1.0f);
  const std::vector<float> k = RandomVector(positions * kv_row, rng, 1.0f);
  const std::vector<float> v = RandomVector(positions * kv_row, rng, 1.0f);
  const std::vector<float> one_shot = RunFromStart(pool, shape, q, k, v, positions);

  const int64_t capacity = 3;
  std::vector<float> ring_k(capacity * kv_row, kNaN), ring_v(capacity * kv_row, kNaN);
  for (int64_t j = 2; j <= 4; ++j) {
    std::copy_n(k.begin() + j * kv_row, kv_row, ring_k.begin() + (j % capacity) * kv_row);
    std::copy_n(v.begin() + j * kv_row, kv_row, ring_v.begin() + (j % capacity) * kv_row);
  }
  KvView ring;
  ring.k = ring_k.data();
  ring.v = ring_v.data();
  ring.capacity = capacity;
  std::vector<float> out(tokens * q_row + 1, -123.0f);
  CausalAttention(pool, shape, q.data() + start_pos * q_row, k.data() + start_pos * kv_row,
                  v.data() + start_pos * kv_row, start_pos, tokens, ring, out.data());
  EXPECT_TRUE(SameBits(out.data(), one_shot.data() + start_pos * q_row, tokens * q_row));
  EXPECT_EQ(out.back(), -123.0f);  // nothing written past tokens * H * d
}

// Runs the chunk start_pos..positions-1 with the earlier positions in a ring of `capacity`
// (unused slots hold NaN, so reading one would poison the output).
std::vector<float> RunWithRing(ComputeContext& pool, const AttentionShape& shape,
                               const std::vector<float>& q, const std::vector<float>& k,
                               const std::vector<float>& v, int64_t positions, int64_t start_pos,
                               int64_t capacity) {
  const size_t q_row = shape.n_heads * shape.head_dim;
  const size_t kv_row = shape.n_kv_heads * shape.head_dim;
  std::vector<float> ring_k(capacity * kv_row, kNaN), ring_v(capacity * kv_row, kNaN);
  for (int64_t j = std::max<int64_t>(0, start_pos - capacity); j < start_pos; ++j) {
    std::copy_n(k.begin() + j * kv_row, kv_row, ring_k.begin() + (j % capacity) * kv_row);
    std::copy_n(v.begin() + j * kv_row, kv_row, ring_v.begin() + (j % capacity) * kv_row);
  }
  KvView ring;
  ring.k = ring_k.data();
  ring.v = ring_v.data();
  ring.capacity = capacity;
  const int64_t tokens = positions - start_pos;
  std::vector<float> out(tokens * q_row, kNaN);
  CausalAttention(pool, shape, q.data() + start_pos * q_row, k.data() + start_pos * kv_row,
                  v.data() + start_pos * kv_row, start_pos, tokens, ring, out.data());
  return out;
}

struct BruteForceCase {
  int64_t n_heads;
  int64_t n_kv_heads;
  int64_t head_dim;
};

TEST(CausalAttentionTest, MatchesDoubleReference) {
  const int64_t positions = 9;
  ComputeContext pool(3);
  ComputeContext single(1);
  uint32_t seed = 21;
  for (BruteForceCase c :
       {BruteForceCase{4, 2, 8}, BruteForceCase{3, 3, 5}, BruteForceCase{4, 1, 8}}) {
    for (int64_t window : {0, 1, 3, 9}) {
      SCOPED_TRACE(::testing::Message() << "H=" << c.n_heads << " K=" << c.n_kv_heads
                                        << " d=" << c.head_dim << " window=" << window);
      const AttentionShape shape = Shape(c.n_heads, c.n_kv_heads, c.head_dim, window);
      std::mt19937 rng(seed++);
      const std::vector<float> q = RandomVector(positions * c.n_heads * c.head_dim, rng, 1.5f);
      const std::vector<float> k = RandomVector(positions * c.n_kv_heads * c.head_dim, rng, 1.5f);
      const std::vector<float> v = RandomVector(positions * c.n_kv_heads * c.head_dim, rng, 1.0f);
      const std::vector<double> reference = ReferenceAttention(shape, q, k, v, positions, 0);

      // All positions in one chunk.
      const std::vector<float> out = RunFromStart(pool, shape, q, k, v, positions);
      ASSERT_EQ(out.size(), reference.size());
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_NEAR(out[i], reference[i], 1e-5) << "element " << i;
      }

      // Thread count does not change a single bit.
      const std::vector<float> out_single = RunFromStart(single, shape, q, k, v, positions);
      EXPECT_TRUE(SameBits(out.data(), out_single.data(), out.size()));

      // Positions 4..8 as a chunk over a ring holding just what the window needs (wrapping for
      // window 3: capacity 2 holds positions 2 and 3 in slots 0 and 1).
      const int64_t start_pos = 4;
      const int64_t capacity = window == 0 ? 6 : std::max<int64_t>(1, window - 1);
      const std::vector<float> chunked =
          RunWithRing(pool, shape, q, k, v, positions, start_pos, capacity);
      const size_t offset = start_pos * c.n_heads * c.head_dim;
      ASSERT_EQ(chunked.size(), out.size() - offset);
      for (size_t i = 0; i < chunked.size(); ++i) {
        ASSERT_NEAR(chunked[i], reference[offset + i], 1e-5) << "chunked element " << i;
      }
      EXPECT_TRUE(SameBits(chunked.data(), out.data() + offset, chunked.size()));
    }
  }
}

// Hundreds of keys (several 64-key softmax blocks, a window that starts mid-block, a ring that
// wraps) on every instruction set the host supports: within f32 rounding of the double reference,
// and chunked prefill over the ring gives the one-shot bits.
TEST(CausalAttentionTest, MatchesDoubleReferenceOverManyKeyBlocksOnEveryIsa) {
  const int64_t positions = 200;
  const CpuFeatures cpu = DetectCpuFeatures();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (!IsaSupported(isa, cpu)) continue;
    ComputeContext pool(2, isa);
    for (int64_t window : {0, 70, 130}) {
      SCOPED_TRACE(::testing::Message() << IsaName(isa) << " window=" << window);
      const AttentionShape shape = Shape(4, 2, 16, window);
      std::mt19937 rng(static_cast<uint32_t>(window) + 3);
      const std::vector<float> q = RandomVector(positions * 4 * 16, rng, 0.8f);
      const std::vector<float> k = RandomVector(positions * 2 * 16, rng, 0.8f);
      const std::vector<float> v = RandomVector(positions * 2 * 16, rng, 1.0f);
      const std::vector<double> reference = ReferenceAttention(shape, q, k, v, positions, 0);
      const std::vector<float> out = RunFromStart(pool, shape, q, k, v, positions);
      ASSERT_EQ(out.size(), reference.size());
      for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], reference[i], 2e-5) << "element " << i;
      const int64_t start_pos = 150;
      const int64_t capacity = window == 0 ? 150 : window - 1;
      const std::vector<float> chunked = RunWithRing(pool, shape, q, k, v, positions, start_pos, capacity);
      const size_t offset = start_pos * 4 * 16;
      ASSERT_EQ(chunked.size(), out.size() - offset);
      EXPECT_TRUE(SameBits(chunked.data(), out.data() + offset, chunked.size()));
    }
  }
}

}  // namespace
}  // namespace bora::ops
