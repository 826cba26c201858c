// Tensor parallelism on one machine: N in-process shards against one rank on the reference
// models (tokens equal, logits within 1e-4), the serving engine's paged caches, batching,
// copy-on-write and adapters through the step messages, and every rank's part counting.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "base/error.h"
#include "model/lora_adapter.h"
#include "model/shard.h"
#include "model/model_test_util.h"
#include "runtime/engine.h"
#include "testdata.h"
#include "tp_test_util.h"

namespace bora::testing {
namespace {

constexpr int kSteps = 64;

model::LoadOptions OneThread() {
  model::LoadOptions options;
  options.threads = 1;
  options.context = 256;
  return options;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

void ExpectMatchesOneRank(const std::string& dir, int ranks, std::optional<DType> dtype = std::nullopt) {
  model::LoadOptions options = OneThread();
  options.dtype = dtype;
  const std::vector<int32_t> prompt = {1, 100, 200, 299, 5, 17};
  std::unique_ptr<model::Transformer> whole = model::LoadModel(dir, options);
  const GreedyRun one = RunGreedy(*whole, prompt, kSteps);
  GreedyRun group;
  WithEmulatedGroup(dir, ranks, options, [&](model::Transformer& model) { group = RunGreedy(model, prompt, kSteps); });
  EXPECT_EQ(group.tokens, one.tokens) << dir << " on " << ranks << " ranks";
  ASSERT_EQ(group.logits.size(), one.logits.size());
  EXPECT_LE(MaxDiff(group.logits, one.logits), 1e-4) << dir << " on " << ranks << " ranks";
  // And the run is deterministic: the same group gives the same bits again.
  GreedyRun again;
  WithEmulatedGroup(dir, ranks, options, [&](model::Transformer& model) { again = RunGreedy(model, prompt, kSteps); });
  EXPECT_EQ(again.logits, group.logits);
}

TEST(TensorParallel, ReferenceModelsOnTwoRanksMatchOneRank) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* model : {"tiny-dense/mistral", "tiny-moe/mistral", "tiny-ministral3/mistral", "tiny-dense/hf"}) {
    ExpectMatchesOneRank(shared + "/reference-models/" + model, 2);
  }
}

TEST(TensorParallel, RealModelOnTwoAndFourRanks) {
  BORA_REQUIRE_SHARED(shared);
  ExpectMatchesOneRank(shared + "/real-models/stories260K", 2);
  ExpectMatchesOneRank(shared + "/real-models/stories260K", 4);
  ExpectMatchesOneRank(shared + "/real-models/stories260K", 2, DType::kQ8);
}

formats::ModelParams SixKvHeads() {
  formats::ModelParams p = SmallParams();
  p.n_heads = 12;
  p.n_kv_heads = 6;
  p.head_dim = 16;
  p.hidden_dim = 192;
  return p;
}

TEST(TensorParallel, SixKvHeadsOnTwoThreeAndSixRanks) {
  TempDir dir;
  MakeModel(SixKvHeads(), 7, dir.path());
  for (int ranks : {2, 3, 6}) ExpectMatchesOneRank(dir.path(), ranks);
}

TEST(TensorParallel, RankCountMustDivideKvHeads) {
  TempDir dir;
  MakeModel(SixKvHeads(), 7, dir.path());
  model::LoadOptions options = OneThread();
  options.shard = model::ShardLayout{0, 4};
  try {
    model::LoadModel(dir.path(), options);
    FAIL() << "4 ranks over 6 KV heads loaded";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("KV heads"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1, 2, 3, 6"), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, EveryRankPartCounts) {
  // A follower holding other weights changes rank 0's logits: rank 0 does not compute alone.
  TempDir a, b;
  MakeModel(SixKvHeads(), 7, a.path());
  MakeModel(SixKvHeads(), 8, b.path());
  const std::vector<int32_t> prompt = {1, 2, 3};
  GreedyRun same, other;
  WithEmulatedGroup(a.path(), 2, OneThread(), [&](model::Transformer& m) { same = RunGreedy(m, prompt, 4); });
  WithEmulatedGroup(a.path(), 2, OneThread(), [&](model::Transformer& m) { other = RunGreedy(m, prompt, 4); },
                    {b.path()});
  EXPECT_GT(MaxDiff(same.logits, other.logits), 1e-3);
}

TEST(ShardPlan, RangesCoverEverythingOnGranules) {
  int64_t at = 0;
  for (int r = 0; r < 4; ++r) {
    const model::IndexRange range = model::ShardRange(192, r, 4, 32);
    EXPECT_EQ(range.begin, at);
    EXPECT_EQ(range.begin % 32, 0);
    EXPECT_GT(range.size(), 0);
    at = range.end;
  }
  EXPECT_EQ(at, 192);
  EXPECT_EQ(model::ShardRange(1000, 2, 3, 16).end, 1000);
}

// The serving engine under the group: paged caches mirrored through block tables, batching of
// several requests, n > 1 choices (copy-on-write forks), the prefix cache and a LoRA adapter.
std::vector<std::vector<int32_t>> EngineTokens(model::Transformer& model,
                                               std::shared_ptr<const model::LoraAdapter> lora) {
  runtime::EngineOptions options;
  options.max_sequences = 4;
  options.block_size = 4;
  options.kv_dtype = ops::KvDType::kF32;
  runtime::Engine engine(model, nullptr, options);
  std::vector<std::shared_ptr<runtime::RequestStream>> streams;
  const std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 13, 17, 21, 25, 29, 33}, {1, 5, 9, 13, 17, 21, 40},
                                                     {2, 4, 6}};
  for (size_t i = 0; i < prompts.size(); ++i) {
    runtime::GenerationRequest request;
    request.prompt = prompts[i];
    request.max_tokens = 12;
    request.sampling.temperature = i == 2 ? 0.8 : 0.0;
    request.sampling.seed = 42;
    request.n = i == 2 ? 2 : 1;
    if (i == 1) request.lora = lora;
    streams.push_back(engine.Submit(std::move(request)));
  }
  // Each choice's tokens (choice index * 100000 + id), until every choice is done.
  auto drain = [](runtime::RequestStream& stream, int choices) {
    std::vector<int32_t> tokens;
    runtime::Event event;
    int done = 0;
    while (done < choices && stream.Next(event, std::chrono::seconds(120))) {
      if (event.kind == runtime::Event::Kind::kToken) tokens.push_back(event.index * 100000 + event.token.id);
      if (event.kind == runtime::Event::Kind::kDone) ++done;
    }
    return tokens;
  };
  std::vector<std::vector<int32_t>> out;
  for (size_t i = 0; i < streams.size(); ++i) out.push_back(drain(*streams[i], i == 2 ? 2 : 1));
  // Again, now with the prompts' blocks in the prefix cache.
  runtime::GenerationRequest again;
  again.prompt = prompts[0];
  again.max_tokens = 12;
  again.sampling.temperature = 0.0;
  out.push_back(drain(*engine.Submit(std::move(again)), 1));
  return out;
}

TEST(TensorParallel, EngineWithPagedCachesBatchingForksAndAdapters) {
  TempDir dir;
  const formats::ModelParams p = SixKvHeads();
  MakeModel(p, 7, dir.path());
  auto lora = std::make_shared<model::LoraAdapter>(model::NewLoraAdapter(p, 4, 2.0f));
  uint32_t seed = 1;
  lora->ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    for (float& x : m.a) x = static_cast<float>((seed = seed * 1103515245u + 12345u) >> 16 & 255) / 2048.0f - 0.06f;
    for (float& x : m.b) x = static_cast<float>((seed = seed * 1103515245u + 12345u) >> 16 & 255) / 2048.0f - 0.06f;
  });
  lora->fingerprint = model::LoraFingerprint(*lora);
  std::unique_ptr<model::Transformer> whole = model::LoadModel(dir.path(), OneThread());
  const auto one = EngineTokens(*whole, lora);
  ASSERT_EQ(one.size(), 4u);
  EXPECT_EQ(one[0], one[3]);
  for (int ranks : {2, 3}) {
    std::vector<std::vector<int32_t>> group;
    WithEmulatedGroup(dir.path(), ranks, OneThread(), [&](model::Transformer& m) { group = EngineTokens(m, lora); });
    EXPECT_EQ(group, one) << ranks << " ranks";
  }
}

}  // namespace
}  // namespace bora::testing
