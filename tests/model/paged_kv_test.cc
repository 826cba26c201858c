// Tests the paged KV cache in the forward pass: with f32 blocks it gives bit-identical logits to
// the contiguous cache (and so the shared goldens), with sliding windows releasing old blocks;
// bf16/q8 blocks give the same logits for any split of a prompt; prefix reuse and fork.
#include <gtest/gtest.h>

#include <cmath>

#include <cstring>
#include <memory>
#include <vector>

#include "base/error.h"
#include "kernels/activation.h"
#include "model/golden.h"
#include "model/paged_kv_cache.h"
#include "model/transformer.h"
#include "model_test_util.h"
#include "testdata.h"

namespace bora::testing {
namespace {

using model::ContiguousKvCache;
using model::KvBlockPool;
using model::KvCache;
using model::PagedKvCache;
using model::Transformer;

// Logits [tokens, vocab] of `tokens` from position 0 fed `step` at a time through `cache`.
std::vector<float> RunTokens(Transformer& model, KvCache& cache, const std::vector<int32_t>& tokens,
                             int64_t step) {
  const int64_t vocab = model.params().vocab_size;
  std::vector<float> logits(tokens.size() * vocab);
  for (size_t start = 0; start < tokens.size(); start += step) {
    const size_t count = std::min<size_t>(step, tokens.size() - start);
    model.Forward(std::span<const int32_t>(tokens).subspan(start, count), cache,
                  std::span<float>(logits).subspan(start * vocab), true);
  }
  return logits;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(PagedKvTest, F32PagesMatchTheContiguousCacheBitForBitAndTheGoldens) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* name : {"tiny-dense", "tiny-moe", "tiny-ministral3"}) {
    const std::string ref = shared + "/reference-models/" + name;
    model::LoadOptions options;
    options.context = 256;
    std::unique_ptr<Transformer> model = model::LoadModel(ref + "/mistral", options);
    const model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
    const int64_t vocab = golden.vocab_size;
    for (const model::GoldenCase& c : golden.cases) {
      std::vector<int32_t> tokens = c.prompt_tokens;
      tokens.insert(tokens.end(), c.greedy_tokens.begin(), c.greedy_tokens.end());
      ContiguousKvCache contiguous = model->NewCache();
      const std::vector<float> expected = RunTokens(*model, contiguous, tokens, 5);
      for (int64_t block_size : {int64_t{4}, int64_t{16}}) {
        KvBlockPool pool(model->params(), ops::KvDType::kF32, 64, block_size);
        PagedKvCache paged(pool, model->params(), 256);
        const std::vector<float> logits = RunTokens(*model, paged, tokens, 5);
        EXPECT_TRUE(SameBits(logits, expected))
            << name << " " << c.name << " blocks of " << block_size;
        // Rows of the prompt and of each fed greedy token against mistral-inference's logits.
        const int64_t prompt = static_cast<int64_t>(c.prompt_tokens.size());
        double worst = 0;
        for (int64_t i = 0; i < prompt * vocab; ++i)
          worst = std::max<double>(worst, std::fabs(logits[i] - c.prefill_logits[i]));
        for (size_t g = 0; g + 1 < c.greedy_tokens.size(); ++g) {
          const float* row = logits.data() + (prompt + g) * vocab;
          EXPECT_EQ(kernels::ArgMax(row, vocab), c.greedy_tokens[g + 1])
              << name << " " << c.name << " token " << g;
          for (int64_t i = 0; i < vocab; ++i) {
            worst = std::max<double>(worst, std::fabs(row[i] - c.decode_logits[g * vocab + i]));
          }
        }
        EXPECT_LE(worst, model::kGoldenTolerance) << name << " " << c.name;
        EXPECT_EQ(paged.held_blocks(),
                  (static_cast<int64_t>(tokens.size()) + block_size - 1) / block_size);
      }
    }
  }
}

class PagedWindowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    formats::ModelParams params = SmallParams();
    params.layer_windows = {6, 10};  // per-layer sliding windows
    // Mistral 3 rotary features with a short original context, so that positions cross it
    // inside windows, across blocks and in reused prefixes.
    params.yarn = formats::YarnParams{4.0, 8, 32.0, 1.0, true, 0.1 * std::log(4.0) + 1.0};
    params.llama4_scaling = formats::Llama4Scaling{0.1, 8};
    MakeModel(params, 3, dir_->path() + "/swa");
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::unique_ptr<Transformer> Load() {
    model::LoadOptions options;
    options.context = 80;
    return model::LoadModel(dir_->path() + "/swa", options);
  }
  static TempDir* dir_;
};
TempDir* PagedWindowTest::dir_ = nullptr;

TEST_F(PagedWindowTest, SlidingWindowReleasesOldBlocksAndKeepsTheLogits) {
  std::unique_ptr<Transformer> model = Load();
  const std::vector<int32_t> tokens = RandomTokens(70, model->params().vocab_size, 5);
  ContiguousKvCache contiguous = model->NewCache();
  const std::vector<float> expected = RunTokens(*model, contiguous, tokens, 7);
  KvBlockPool pool(model->params(), ops::KvDType::kF32, 20, 4);
  PagedKvCache paged(pool, model->params(), 80);
  for (int64_t step : {int64_t{1}, int64_t{3}, int64_t{70}}) {
    paged.Clear();
    EXPECT_TRUE(SameBits(RunTokens(*model, paged, tokens, step), expected)) << "step " << step;
  }
  // Token by token, with the largest window 10: at most 10 + 4 positions' blocks stay held.
  paged.Clear();
  const int64_t vocab = model->params().vocab_size;
  std::vector<float> row(vocab);
  int64_t most_held = 0;
  for (int32_t token : tokens) {
    model->Forward(std::span<const int32_t>(&token, 1), paged, row, false);
    most_held = std::max(most_held, paged.held_blocks());
  }
  EXPECT_LE(most_held, 4);
  EXPECT_EQ(pool.used_blocks(), paged.held_blocks());
}

TEST_F(PagedWindowTest, Bf16AndQ8BlocksGiveTheSameLogitsForAnySplit) {
  std::unique_ptr<Transformer> model = Load();
  const std::vector<int32_t> tokens = RandomTokens(40, model->params().vocab_size, 9);
  ContiguousKvCache contiguous = model->NewCache();
  const std::vector<float> exact = RunTokens(*model, contiguous, tokens, 40);
  for (ops::KvDType dtype : {ops::KvDType::kBF16, ops::KvDType::kQ8}) {
    KvBlockPool pool(model->params(), dtype, 20, 4);
    PagedKvCache paged(pool, model->params(), 80);
    const std::vector<float> one_shot = RunTokens(*model, paged, tokens, 40);
    paged.Clear();
    EXPECT_TRUE(SameBits(RunTokens(*model, paged, tokens, 1), one_shot)) << ops::KvDTypeName(dtype);
    paged.Clear();
    EXPECT_TRUE(SameBits(RunTokens(*model, paged, tokens, 6), one_shot)) << ops::KvDTypeName(dtype);
    double worst = 0;
    for (size_t i = 0; i < exact.size(); ++i)
      worst = std::max<double>(worst, std::fabs(exact[i] - one_shot[i]));
    EXPECT_GT(worst, 0.0) << "rounding had no effect";
    EXPECT_LT(worst, dtype == ops::KvDType::kBF16 ? 0.05 : 0.2) << ops::KvDTypeName(dtype);
  }
}

TEST_F(PagedWindowTest, PrefixReuseAndForkGiveTheLogitsOfAFreshRun) {
  std::unique_ptr<Transformer> model = Load();
  formats::ModelParams full = model->params();
  const int64_t vocab = full.vocab_size;
  std::vector<int32_t> prompt = RandomTokens(30, vocab, 2);
  KvBlockPool pool(full, ops::KvDType::kBF16, 40, 4);
  std::vector<float> fresh;
  {
    PagedKvCache cache(pool, full, 80);
    fresh = RunTokens(*model, cache, prompt, 30);
    cache.RegisterFullBlocks(prompt);
  }
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_GE(pool.cached_blocks(), 7);
  // A second sequence with the same first 30 tokens: 7 full blocks (28 tokens) come from the cache.
  PagedKvCache reused(pool, full, 80);
  EXPECT_EQ(reused.AttachPrefix(prompt), 28);
  std::vector<float> last(vocab);
  model->Forward(std::span<const int32_t>(prompt).subspan(28), reused, std::span<float>(last),
                 false);
  EXPECT_EQ(0, std::memcmp(last.data(), fresh.data() + 29 * vocab, vocab * sizeof(float)));
  // A fork shares every block; its first write copies the partial block, not the original's.
  PagedKvCache fork(pool, full, 80);
  fork.ForkFrom(reused);
  const int64_t copies = pool.counters().copied_blocks;
  const int32_t a = 5, b = 6;
  std::vector<float> row_a(vocab), row_b(vocab), row_a_again(vocab);
  model->Forward(std::span<const int32_t>(&a, 1), reused, row_a, false);
  model->Forward(std::span<const int32_t>(&b, 1), fork, row_b, false);
  EXPECT_EQ(pool.counters().copied_blocks, copies + 1);
  PagedKvCache check(pool, full, 80);
  EXPECT_EQ(check.AttachPrefix(prompt), 28);
  model->Forward(std::span<const int32_t>(prompt).subspan(28), check, std::span<float>(last),
                 false);
  model->Forward(std::span<const int32_t>(&a, 1), check, row_a_again, false);
  EXPECT_EQ(0, std::memcmp(row_a.data(), row_a_again.data(), vocab * sizeof(float)));
}

TEST(PagedKvPoolTest, ExhaustionIsATypedErrorThatChangesNothing) {
  formats::ModelParams params = SmallParams();
  KvBlockPool pool(params, ops::KvDType::kQ8, 3, 4);
  PagedKvCache a(pool, params, 40), b(pool, params, 40);
  a.Reserve(8);
  EXPECT_EQ(pool.available_blocks(), 1);
  EXPECT_THROW(b.Reserve(8), ResourceExhausted);
  EXPECT_EQ(pool.available_blocks(), 1);
  EXPECT_EQ(b.held_blocks(), 0);
  a.Clear();
  EXPECT_EQ(pool.available_blocks(), 3);
}

TEST(PagedKvPoolTest, CachedBlocksAreEvictedLeastRecentlyUsedFirst) {
  formats::ModelParams params = SmallParams();
  KvBlockPool pool(params, ops::KvDType::kF32, 3, 2);
  std::vector<uint64_t> hashes;
  for (int32_t i = 0; i < 3; ++i) {
    const std::vector<int32_t> tokens = {i, i + 100};
    const int32_t block = pool.Allocate();
    hashes.push_back(KvBlockPool::ChainHash(0, tokens));
    pool.Register(block, hashes.back(), 0, tokens);
    pool.Release(block);  // cached, unreferenced, in release order 0, 1, 2
  }
  EXPECT_EQ(pool.available_blocks(), 3);
  EXPECT_EQ(pool.cached_blocks(), 3);
  const std::vector<int32_t> first = {0, 100}, second = {1, 101}, third = {2, 102};
  const int32_t hit = pool.Lookup(hashes[0], 0, first);  // touch block 0: now 1 is the oldest
  ASSERT_GE(hit, 0);
  pool.Release(hit);
  const int32_t taken = pool.Allocate();
  EXPECT_EQ(pool.Lookup(hashes[1], 0, second), -1);  // evicted
  int32_t still = pool.Lookup(hashes[2], 0, third);
  EXPECT_GE(still, 0);
  pool.Release(still);
  still = pool.Lookup(hashes[0], 0, first);
  EXPECT_GE(still, 0);
  pool.Release(still);
  EXPECT_EQ(pool.Lookup(hashes[0], 0, second), -1);  // same hash, other tokens: no false hit
  pool.Release(taken);
  EXPECT_EQ(pool.counters().evicted_blocks, 1);
}

}  // namespace
}  // namespace bora::testing
