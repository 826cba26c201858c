// The serving engine with LoRA adapters per request: a request equals the plain forward loop
// with its adapter, requests with two adapters and none batched together give their tokens
// alone, the prefix cache never hands one adapter's KV to another (or to the base model), and
// a mismatched adapter is refused at Submit.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/error.h"
#include "kernels/activation.h"
#include "model/lora_test_util.h"
#include "model/model_test_util.h"
#include "runtime/engine.h"
#include "testdata.h"

namespace bora::runtime {
namespace {

using testing::TempDir;

std::vector<int32_t> Drain(RequestStream& stream, Usage* usage = nullptr) {
  std::vector<int32_t> tokens;
  Event event;
  while (stream.Next(event, std::chrono::seconds(120))) {
    if (event.kind == Event::Kind::kDone) {
      EXPECT_NE(event.finish, FinishReason::kError) << event.error;
      if (usage != nullptr) *usage = event.usage;
      return tokens;
    }
    tokens.push_back(event.token.id);
  }
  ADD_FAILURE() << "no kDone event within the timeout";
  return tokens;
}

class EngineLoraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::MakeModel(params_, 9, dir_.path());
    model::LoadOptions options;
    options.context = 128;
    options.threads = 2;
    model_ = model::LoadModel(dir_.path(), options);
    first_ = std::make_shared<const model::LoraAdapter>(
        testing::RandomAdapter(params_, 8, 2.0f, 1, 0.1f));
    second_ = std::make_shared<const model::LoraAdapter>(
        testing::RandomAdapter(params_, 4, 1.0f, 2, 0.2f));
  }

  GenerationRequest Request(std::vector<int32_t> prompt,
                            std::shared_ptr<const model::LoraAdapter> lora) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.max_tokens = 10;
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    r.lora = std::move(lora);
    return r;
  }

  // Greedy tokens of the plain forward loop with `lora`.
  std::vector<int32_t> ForwardLoop(const std::vector<int32_t>& prompt,
                                   const model::LoraAdapter* lora) {
    model::ContiguousKvCache cache = model_->NewCache();
    std::vector<float> logits(static_cast<size_t>(params_.vocab_size));
    model_->Forward(prompt, cache, logits, false, lora);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 10; ++i) {
      tokens.push_back(static_cast<int32_t>(kernels::ArgMax(logits.data(), params_.vocab_size)));
      model_->Forward(std::span<const int32_t>(&tokens.back(), 1), cache, logits, false, lora);
    }
    return tokens;
  }

  formats::ModelParams params_ = testing::SmallParams();
  TempDir dir_;
  std::unique_ptr<model::Transformer> model_;
  std::shared_ptr<const model::LoraAdapter> first_, second_;
};

TEST_F(EngineLoraTest, MixedBatchGivesEveryRequestItsTokensAlone) {
  const std::vector<std::vector<int32_t>> prompts = {testing::RandomTokens(20, 300, 1),
                                                     testing::RandomTokens(7, 300, 2),
                                                     testing::RandomTokens(33, 300, 3)};
  const std::shared_ptr<const model::LoraAdapter> adapters[] = {first_, nullptr, second_};
  EngineOptions exact;
  exact.kv_dtype = ops::KvDType::kF32;
  exact.prefix_cache = false;
  std::vector<std::vector<int32_t>> alone;
  {
    Engine engine(*model_, nullptr, exact);
    for (size_t i = 0; i < prompts.size(); ++i) {
      alone.push_back(Drain(*engine.Submit(Request(prompts[i], adapters[i]))));
      EXPECT_EQ(alone.back(), ForwardLoop(prompts[i], adapters[i].get())) << i;
    }
  }
  EXPECT_NE(alone[0], ForwardLoop(prompts[0], nullptr));  // the adapter changes the output
  exact.prefill_budget = 8;  // prompts chunked between other requests' decode steps
  Engine engine(*model_, nullptr, exact);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < prompts.size(); ++i)
    streams.push_back(engine.Submit(Request(prompts[i], adapters[i])));
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(Drain(*streams[i]), alone[i]) << "request " << i;
  EXPECT_LT(engine.counters().steps, 30) << "the requests were not batched";
}

TEST_F(EngineLoraTest, PrefixCacheIsKeyedByAdapter) {
  const std::vector<int32_t> prompt =
      testing::RandomTokens(50, 300, 5);  // three full 16-token blocks
  EngineOptions options;
  options.kv_dtype = ops::KvDType::kF32;
  Engine engine(*model_, nullptr, options);
  Usage usage;
  const std::vector<int32_t> tuned = Drain(*engine.Submit(Request(prompt, first_)), &usage);
  EXPECT_EQ(usage.cached_tokens, 0);
  // The base model and another adapter must not reuse the first adapter's KV.
  const std::vector<int32_t> base = Drain(*engine.Submit(Request(prompt, nullptr)), &usage);
  EXPECT_EQ(usage.cached_tokens, 0);
  EXPECT_EQ(base, ForwardLoop(prompt, nullptr));
  const std::vector<int32_t> other = Drain(*engine.Submit(Request(prompt, second_)), &usage);
  EXPECT_EQ(usage.cached_tokens, 0);
  EXPECT_EQ(other, ForwardLoop(prompt, second_.get()));
  // The same adapter (an equal copy: the key is its content) does.
  auto copy = std::make_shared<const model::LoraAdapter>(*first_);
  EXPECT_EQ(Drain(*engine.Submit(Request(prompt, copy)), &usage), tuned);
  EXPECT_EQ(usage.cached_tokens, 48);
  // An adapter without a fingerprint neither takes nor offers cached blocks.
  auto unknown = std::make_shared<model::LoraAdapter>(*first_);
  unknown->fingerprint = 0;
  EXPECT_EQ(Drain(*engine.Submit(Request(prompt, unknown)), &usage), tuned);
  EXPECT_EQ(usage.cached_tokens, 0);
}

TEST_F(EngineLoraTest, MismatchedAdapterIsRefused) {
  formats::ModelParams other = params_;
  other.n_layers = 3;
  other.layer_windows.assign(3, 0);
  Engine engine(*model_, nullptr, {});
  auto wrong =
      std::make_shared<const model::LoraAdapter>(testing::RandomAdapter(other, 2, 2.0f, 3, 0.1f));
  EXPECT_THROW(engine.Submit(Request({1, 2, 3}, wrong)), InvalidArgument);
  EXPECT_THROW(engine.Embed({{1, 2, 3}}, wrong), InvalidArgument);
  // Embeddings apply the adapter.
  const auto base = engine.Embed({{1, 2, 3}});
  const auto tuned = engine.Embed({{1, 2, 3}}, first_);
  EXPECT_NE(base, tuned);
}

}  // namespace
}  // namespace bora::runtime
