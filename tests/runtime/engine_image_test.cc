// The engine with a vision encoder on tiny-pixtral: chat requests with images decode the
// reference's greedy tokens, batched and alone; the prefix cache reuses KV of the same image and
// never of another image behind the same [IMG] ids; requests with images are refused by models
// without a vision tower.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "runtime/engine.h"
#include "testdata.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"
#include "vision/vision_encoder.h"

namespace bora::runtime {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Outcome {
  std::vector<int32_t> tokens;
  Usage usage;
  FinishReason finish = FinishReason::kError;
  std::string error;
};

Outcome Drain(RequestStream& stream) {
  Outcome out;
  Event event;
  while (stream.Next(event, std::chrono::seconds(120))) {
    if (event.kind == Event::Kind::kDone) {
      out.usage = event.usage;
      out.finish = event.finish;
      out.error = event.error;
      return out;
    }
    out.tokens.push_back(event.token.id);
  }
  ADD_FAILURE() << "no kDone event";
  return out;
}

class EngineImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = testing::SharedDir();
    if (shared_.empty()) {
      if (testing::RunningInCi()) FAIL() << "shared data folder not found; CI=true makes this an error";
      GTEST_SKIP() << "shared data folder not found";
    }
    dir_ = shared_ + "/reference-models/tiny-pixtral";
    model::LoadOptions options;
    options.context = 512;
    options.threads = 2;
    model_ = model::LoadModel(dir_ + "/mistral", options);
    vision_ = vision::VisionEncoder::Load(model_->folder(), model_->params().dim, std::nullopt, model_->compute());
    tokenizer_ = std::make_unique<tokenizer::LoadedTokenizer>(tokenizer::LoadTokenizer(dir_ + "/mistral/tekken.json"));
    golden_ = nlohmann::json::parse(ReadAll(dir_ + "/golden/golden.json"));
    requests_ = nlohmann::json::parse(ReadAll(dir_ + "/golden/chat_requests.json"));
  }

  tokenizer::Tokenized Render(const nlohmann::json& request) {
    tokenizer::InstructEncoder encoder(*tokenizer_->tokenizer, tokenizer_->version.version);
    const auto body = tokenizer::OrderedJson::parse(request.dump());
    return encoder.EncodeChat(tokenizer::ParseChatRequest(body, tokenizer::ValidationMode::kServing),
                              tokenizer::ValidationMode::kServing);
  }

  GenerationRequest Greedy(const tokenizer::Tokenized& tokenized, int64_t max_tokens = 16) {
    GenerationRequest r;
    r.prompt = tokenized.ids;
    r.images = tokenized.images;
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    return r;
  }

  std::unique_ptr<Engine> NewEngine(bool prefix_cache = true) {
    EngineOptions options;
    options.vision = vision_.get();
    options.prefix_cache = prefix_cache;
    options.kv_blocks = 256;
    options.prefill_budget = 7;  // image blocks split across chunks and steps
    return std::make_unique<Engine>(*model_, tokenizer_->tokenizer.get(), options);
  }

  std::string shared_, dir_;
  std::unique_ptr<model::Transformer> model_;
  std::unique_ptr<vision::VisionEncoder> vision_;
  std::unique_ptr<tokenizer::LoadedTokenizer> tokenizer_;
  nlohmann::json golden_, requests_;
};

TEST_F(EngineImageTest, ChatRequestsDecodeTheReferenceGreedyTokensAloneAndBatched) {
  auto engine = NewEngine();
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<std::vector<int32_t>> expected;
  for (size_t i = 0; i < golden_.at("cases").size(); ++i) {
    const auto& golden_case = golden_.at("cases")[i];
    const tokenizer::Tokenized tokenized = Render(requests_.at("requests")[i].at("request"));
    ASSERT_EQ(tokenized.ids, golden_case.at("prompt_tokens").get<std::vector<int32_t>>());
    expected.push_back(golden_case.at("greedy_tokens").get<std::vector<int32_t>>());
    streams.push_back(engine->Submit(Greedy(tokenized)));  // all three run batched
  }
  for (size_t i = 0; i < streams.size(); ++i) {
    const Outcome out = Drain(*streams[i]);
    EXPECT_EQ(out.tokens, expected[i]) << "case " << i << " " << out.error;
    EXPECT_EQ(out.usage.prompt_tokens, golden_.at("cases")[i].at("n_prompt_tokens").get<int64_t>());
  }
  EXPECT_EQ(engine->counters().images, 4);
}

TEST_F(EngineImageTest, PrefixCacheKeysImageBlocksByContent) {
  const nlohmann::json request = requests_.at("requests")[0].at("request");  // photo_64x48 + text
  const tokenizer::Tokenized original = Render(request);
  // The same request with the photo's colours inverted: the same ids, another image.
  tokenizer::Tokenized other = original;
  ASSERT_EQ(other.images.size(), 1u);
  auto inverted = std::make_shared<image::PreprocessedImage>(*other.images[0]);
  for (float& v : inverted->pixels) v = -v;
  inverted->digest ^= 0x5a5a5a5a5a5a5a5aull;
  other.images[0] = inverted;

  auto fresh = NewEngine(/*prefix_cache=*/false);
  const Outcome other_alone = Drain(*fresh->Submit(Greedy(other, 8)));
  ASSERT_EQ(other_alone.finish, FinishReason::kLength) << other_alone.error;

  auto engine = NewEngine();
  const Outcome first = Drain(*engine->Submit(Greedy(original, 8)));
  const Outcome again = Drain(*engine->Submit(Greedy(original, 8)));
  EXPECT_EQ(first.tokens, again.tokens);
  EXPECT_GT(again.usage.cached_tokens, 0) << "the same image reuses its KV";
  const Outcome swapped = Drain(*engine->Submit(Greedy(other, 8)));
  // Only blocks before the image may be shared (2 tokens: none is full).
  EXPECT_EQ(swapped.usage.cached_tokens, 0);
  EXPECT_EQ(swapped.tokens, other_alone.tokens);
  EXPECT_NE(swapped.tokens, first.tokens);
}

TEST_F(EngineImageTest, RefusesImagesWithoutAVisionTowerAndMismatchedPrompts) {
  const tokenizer::Tokenized tokenized = Render(requests_.at("requests")[0].at("request"));
  EngineOptions options;
  options.kv_blocks = 64;
  Engine text_only(*model_, tokenizer_->tokenizer.get(), options);
  EXPECT_THROW(text_only.Submit(Greedy(tokenized)), InvalidArgument);
  auto engine = NewEngine();
  GenerationRequest wrong = Greedy(tokenized);
  wrong.prompt.erase(wrong.prompt.begin() + 2);  // one [IMG] fewer than the image gives
  EXPECT_THROW(engine->Submit(std::move(wrong)), InvalidArgument);
}

}  // namespace
}  // namespace bora::runtime
