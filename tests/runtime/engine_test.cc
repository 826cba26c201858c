// Tests runtime::Engine on a seeded random tiny model: one request equals the plain forward
// loop, eight seeded requests give the same tokens alone and batched together (prefill chunks
// interleaved with decode), cancellation, refusals, stop strings over text deltas, and the
// context end.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/activation.h"
#include "model/random_model.h"
#include "tokenizer/load_tokenizer.h"
#include "testdata.h"

namespace bora::runtime {
namespace {

using testing::TempDir;

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kError;
  Usage usage;
};

Outcome Drain(RequestStream& stream) {
  Outcome out;
  Event event;
  while (stream.Next(event, std::chrono::seconds(120))) {
    out.text += event.text;
    if (event.kind == Event::Kind::kDone) {
      out.finish = event.finish;
      out.usage = event.usage;
      return out;
    }
    out.tokens.push_back(event.token.id);
  }
  ADD_FAILURE() << "no kDone event within the timeout";
  return out;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ThreadPool pool(2);
    model::WriteRandomModel(model::PresetParams("tiny"), 7, dir_->path() + "/tiny", pool, false);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::unique_ptr<model::Transformer> Load(int64_t context) {
    model::LoadOptions options;
    options.context = context;
    options.threads = 2;
    return model::LoadModel(dir_->path() + "/tiny", options);
  }

  static GenerationRequest Request(std::vector<int32_t> prompt, int64_t max_tokens, float temperature,
                                   uint64_t seed) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    r.ignore_eos = true;
    return r;
  }

  static std::vector<int32_t> Prompt(int length, int salt) {
    std::vector<int32_t> prompt = {1};
    for (int i = 1; i < length; ++i) prompt.push_back((i * 7919 + salt * 104729) % 32000 + 10);
    return prompt;
  }

  static TempDir* dir_;
};

TempDir* EngineTest::dir_ = nullptr;

TEST_F(EngineTest, OneGreedyRequestEqualsThePlainForwardLoop) {
  auto model = Load(128);
  const std::vector<int32_t> prompt = Prompt(20, 1);
  std::vector<int32_t> expected;
  {
    model::ContiguousKvCache cache = model->NewCache();
    std::vector<float> logits(model->params().vocab_size);
    model->Forward(prompt, cache, logits, false);
    for (int i = 0; i < 12; ++i) {
      const int32_t next = static_cast<int32_t>(kernels::ArgMax(logits.data(), logits.size()));
      expected.push_back(next);
      model->Forward(std::span<const int32_t>(&next, 1), cache, logits, false);
    }
  }
  EngineOptions exact;
  exact.kv_dtype = ops::KvDType::kF32;  // the paged f32 cache computes what the contiguous one does
  Engine engine(*model, nullptr, exact);
  const Outcome out = Drain(*engine.Submit(Request(prompt, 12, 0.0f, 0)));
  EXPECT_EQ(out.tokens, expected);
  EXPECT_EQ(out.finish, FinishReason::kLength);
  EXPECT_EQ(out.usage.prompt_tokens, 20);
  EXPECT_EQ(out.usage.completion_tokens, 12);
}

TEST_F(EngineTest, SeededRequestsGiveTheSameTokensAloneAndBatchedWithSevenOthers) {
  auto model = Load(256);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(Request(Prompt(5 + 9 * i, i), 10 + i, 0.9f, 100 + i));
  std::vector<Outcome> alone;
  {
    Engine engine(*model, nullptr, {1, 64, 256});
    for (const GenerationRequest& r : requests) alone.push_back(Drain(*engine.Submit(r)));
  }
  EngineOptions batched_options{8, 64, 16};  // small prefill budget: prompts chunked between decode steps
  Engine engine(*model, nullptr, batched_options);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerationRequest& r : requests) streams.push_back(engine.Submit(r));
  for (size_t i = 0; i < streams.size(); ++i) {
    const Outcome together = Drain(*streams[i]);
    EXPECT_EQ(together.tokens, alone[i].tokens) << "request " << i;
    EXPECT_EQ(together.tokens.size(), static_cast<size_t>(10 + i));
  }
  const EngineCounters counters = engine.counters();
  EXPECT_LT(counters.steps, 60) << "requests were not batched (alone: 8 requests x 11..18 steps)";
  EXPECT_EQ(counters.generated_tokens, 8 * 10 + 28);
}

TEST_F(EngineTest, CancelEndsARequestAndTheEngineGoesOn) {
  auto model = Load(256);
  Engine engine(*model, nullptr, {});
  auto stream = engine.Submit(Request(Prompt(8, 3), 200, 0.0f, 0));
  Event event;
  ASSERT_TRUE(stream->Next(event, std::chrono::seconds(60)));
  stream->Cancel();
  Outcome rest = Drain(*stream);
  EXPECT_EQ(rest.finish, FinishReason::kCancelled);
  EXPECT_LT(rest.usage.completion_tokens, 200);
  const Outcome next = Drain(*engine.Submit(Request(Prompt(8, 3), 4, 0.0f, 0)));
  EXPECT_EQ(next.finish, FinishReason::kLength);
  EXPECT_EQ(next.tokens.size(), 4u);
}

TEST_F(EngineTest, AbortAllEndsRunningAndQueuedRequestsWithTheReason) {
  auto model = Load(256);
  EngineOptions one;
  one.max_sequences = 1;
  Engine engine(*model, nullptr, one);
  auto running = engine.Submit(Request(Prompt(8, 3), 200, 0.0f, 0));
  auto queued = engine.Submit(Request(Prompt(8, 4), 200, 0.0f, 0));
  Event event;
  ASSERT_TRUE(running->Next(event, std::chrono::seconds(60)));
  engine.AbortAll("the server is stopping");
  EXPECT_EQ(Drain(*running).finish, FinishReason::kError);
  EXPECT_EQ(Drain(*queued).finish, FinishReason::kError);
  try {
    engine.Submit(Request(Prompt(8, 3), 4, 0.0f, 0));
    ADD_FAILURE() << "a request was accepted after AbortAll";
  } catch (const ResourceExhausted& e) {
    EXPECT_NE(std::string(e.what()).find("the server is stopping"), std::string::npos);
  }
}

TEST_F(EngineTest, RefusalsAreTypedErrorsAndTheContextEndIsModelLength) {
  auto model = Load(32);
  {
    Engine engine(*model, nullptr, {});
    EXPECT_THROW(engine.Submit(Request(Prompt(33, 1), 4, 0.0f, 0)), InvalidArgument);  // longer than the context
    EXPECT_THROW(engine.Submit(Request({}, 4, 0.0f, 0)), InvalidArgument);
    EXPECT_THROW(engine.Submit(Request({1, 40000}, 4, 0.0f, 0)), InvalidArgument);
    GenerationRequest bad = Request(Prompt(4, 1), 4, 0.0f, 0);
    bad.sampling.top_p = 0.0f;
    EXPECT_THROW(engine.Submit(bad), InvalidArgument);
    GenerationRequest stops = Request(Prompt(4, 1), 4, 0.0f, 0);
    stops.stop = {"x"};
    EXPECT_THROW(engine.Submit(stops), InvalidArgument);  // no tokenizer
    // Prompt of 30 in a context of 32: tokens at positions 30 and 31, then the context is full.
    const Outcome out = Drain(*engine.Submit(Request(Prompt(30, 2), 10, 0.0f, 0)));
    EXPECT_EQ(out.finish, FinishReason::kModelLength);
    EXPECT_EQ(out.tokens.size(), 3u);
  }
  Engine full(*model, nullptr, {1, 0, 16});
  EXPECT_THROW(full.Submit(Request(Prompt(4, 1), 4, 0.0f, 0)), ResourceExhausted);
  GenerationRequest too_many = Request(Prompt(4, 1), 4, 0.0f, 0);
  too_many.n = 2;  // more choices than parallel sequences
  EXPECT_THROW(full.Submit(too_many), InvalidArgument);
  // A KV pool that does not fit in memory is refused at start, with the numbers.
  EngineOptions huge;
  huge.kv_memory_bytes = uint64_t{1} << 50;
  try {
    Engine engine(*model, nullptr, huge);
    ADD_FAILURE() << "expected ResourceExhausted";
  } catch (const ResourceExhausted& e) {
    EXPECT_NE(std::string(e.what()).find("lower --kv-memory"), std::string::npos) << e.what();
  }
  // ... and so is one smaller than a single context (32 tokens = 2 blocks of 16).
  EngineOptions tiny_pool;
  tiny_pool.kv_blocks = 1;
  EXPECT_THROW(Engine(*model, nullptr, tiny_pool), InvalidArgument);
}

TEST_F(EngineTest, TextDeltasAddUpAndStopStringsEndTheRequest) {
  BORA_REQUIRE_SHARED(shared);
  auto loaded = tokenizer::LoadTokenizer(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3");
  auto model = Load(128);
  Engine engine(*model, loaded.tokenizer.get(), {});
  std::vector<int32_t> prompt = loaded.tokenizer->Encode("Once upon a time");
  prompt.insert(prompt.begin(), loaded.tokenizer->bos_id());
  const Outcome full = Drain(*engine.Submit(Request(prompt, 16, 0.0f, 0)));
  EXPECT_EQ(full.text, loaded.tokenizer->Decode(full.tokens, tokenizer::SpecialTokenPolicy::kIgnore));
  ASSERT_GE(full.text.size(), 10u);
  size_t start = 4;
  while ((static_cast<unsigned char>(full.text[start]) & 0xC0) == 0x80) ++start;  // a character boundary
  const std::string stop = full.text.substr(start, 2);
  GenerationRequest with_stop = Request(prompt, 16, 0.0f, 0);
  with_stop.stop = {stop};
  const Outcome stopped = Drain(*engine.Submit(with_stop));
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
}

// Waits until the engine thread has published its counters after the last step.
EngineCounters SettledCounters(Engine& engine) {
  EngineCounters counters = engine.counters();
  for (int i = 0; i < 200 && (counters.running > 0 || counters.kv_blocks_used > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    counters = engine.counters();
  }
  return counters;
}

TEST_F(EngineTest, APromptSharingAThousandTokenPrefixSkipsItsPrefill) {
  auto model = Load(1100);
  std::vector<int32_t> first = Prompt(1000, 5), second = Prompt(1000, 5);
  first.insert(first.end(), {11, 12, 13, 14, 15});
  second.insert(second.end(), {21, 22, 23});
  EngineOptions no_cache;
  no_cache.prefix_cache = false;
  std::vector<int32_t> expected;
  {
    Engine engine(*model, nullptr, no_cache);
    expected = Drain(*engine.Submit(Request(second, 8, 0.8f, 42))).tokens;
  }
  Engine engine(*model, nullptr, {});
  Drain(*engine.Submit(Request(first, 8, 0.8f, 41)));
  const EngineCounters before = SettledCounters(engine);
  EXPECT_EQ(before.prefix_hit_tokens, 0);
  const Outcome out = Drain(*engine.Submit(Request(second, 8, 0.8f, 42)));
  const EngineCounters after = SettledCounters(engine);
  EXPECT_EQ(out.tokens, expected);  // the cached blocks hold exactly what a fresh prefill computes
  EXPECT_EQ(after.prefix_hit_tokens, 992);  // 62 full blocks of 16 of the shared 1000 tokens
  EXPECT_EQ(after.prompt_tokens - before.prompt_tokens, 1003 - 992);
  EXPECT_EQ(after.pool.prefix_hit_blocks, 62);
  EXPECT_EQ(after.kv_blocks_used, 0);
  EXPECT_GT(after.kv_blocks_cached, 62);
}

TEST_F(EngineTest, CancellingFreesEveryBlock) {
  auto model = Load(512);
  EngineOptions options;
  options.prefix_cache = false;
  Engine engine(*model, nullptr, options);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Request(Prompt(100 + 10 * i, i), 300, 0.7f, i)));
  Event event;
  for (auto& stream : streams) ASSERT_TRUE(stream->Next(event, std::chrono::seconds(60)));
  EXPECT_GT(engine.counters().kv_blocks_used, 0);
  for (auto& stream : streams) stream->Cancel();
  for (auto& stream : streams) EXPECT_EQ(Drain(*stream).finish, FinishReason::kCancelled);
  const EngineCounters counters = SettledCounters(engine);
  EXPECT_EQ(counters.kv_blocks_used, 0);
  EXPECT_EQ(counters.kv_blocks_cached, 0);
}

TEST_F(EngineTest, ExhaustedKvPreemptsAndRecomputesWithoutChangingTheOutput) {
  auto model = Load(128);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request(Prompt(40 + 5 * i, 10 + i), 60, 0.9f, 7 + i));
  EngineOptions exact;
  exact.kv_dtype = ops::KvDType::kF32;
  std::vector<Outcome> alone;
  {
    Engine engine(*model, nullptr, exact);
    for (const GenerationRequest& r : requests) alone.push_back(Drain(*engine.Submit(r)));
  }
  // 4 sequences growing to ~100-115 tokens need ~28 blocks; the pool has one context: 8.
  EngineOptions small = exact;
  small.kv_blocks = 8;
  Engine engine(*model, nullptr, small);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const GenerationRequest& r : requests) streams.push_back(engine.Submit(r));
  for (size_t i = 0; i < streams.size(); ++i) {
    const Outcome together = Drain(*streams[i]);
    EXPECT_EQ(together.finish, FinishReason::kLength);
    EXPECT_EQ(together.tokens, alone[i].tokens) << "request " << i;
  }
  const EngineCounters counters = SettledCounters(engine);
  EXPECT_GT(counters.preemptions, 0);
  EXPECT_EQ(counters.kv_blocks_used, 0);
}

TEST_F(EngineTest, ChoicesShareThePromptCopyOnWriteAndEachIsReproducible) {
  auto model = Load(256);
  GenerationRequest request = Request(Prompt(37, 9), 20, 1.0f, 99);  // 37: the last block is partial
  request.n = 4;
  auto run = [&](Engine& engine) {
    std::vector<std::vector<int32_t>> choices(4);
    int done = 0;
    auto stream = engine.Submit(request);
    Event event;
    while (done < 4 && stream->Next(event, std::chrono::seconds(60))) {
      if (event.kind == Event::Kind::kDone) {
        ++done;
        EXPECT_EQ(event.usage.completion_tokens, 20);
        EXPECT_EQ(event.usage.prompt_tokens, 37);
      } else {
        choices.at(event.index).push_back(event.token.id);
      }
    }
    EXPECT_EQ(done, 4);
    return choices;
  };
  EngineOptions options;
  options.prefix_cache = false;
  Engine engine(*model, nullptr, options);
  const auto first = run(engine);
  const EngineCounters counters = SettledCounters(engine);
  EXPECT_EQ(counters.prompt_tokens, 37);  // the prompt ran once for four choices
  EXPECT_EQ(counters.pool.copied_blocks, 3);  // the shared partial block, copied by all but the last writer
  EXPECT_EQ(counters.kv_blocks_used, 0);
  EXPECT_EQ(run(engine), first);
  for (int i = 1; i < 4; ++i) EXPECT_NE(first[i], first[0]) << "choice " << i << " repeats choice 0";
  // Choice i equals a single-choice request whose sampler stream is i: choice 0 is the plain request.
  GenerationRequest single = request;
  single.n = 1;
  EXPECT_EQ(Drain(*engine.Submit(single)).tokens, first[0]);
}

TEST_F(EngineTest, QuantizedKvCachesStayCloseToF32) {
  auto model = Load(256);
  const std::vector<int32_t> prompt = Prompt(50, 4);
  std::vector<std::vector<int32_t>> outputs;
  for (ops::KvDType dtype : {ops::KvDType::kF32, ops::KvDType::kBF16, ops::KvDType::kQ8}) {
    EngineOptions options;
    options.kv_dtype = dtype;
    Engine engine(*model, nullptr, options);
    outputs.push_back(Drain(*engine.Submit(Request(prompt, 16, 0.0f, 0))).tokens);
  }
  // Greedy tokens of a random model: bf16 keys/values keep the first tokens.
  EXPECT_EQ(std::vector<int32_t>(outputs[1].begin(), outputs[1].begin() + 4),
            std::vector<int32_t>(outputs[0].begin(), outputs[0].begin() + 4));
  EXPECT_EQ(outputs[2].size(), 16u);
}

}  // namespace
}  // namespace bora::runtime
