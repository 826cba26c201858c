// Chat requests with images against mistral-common: tiny-pixtral's chat_requests.json must
// render to the same ids and image blocks; image chunk parsing, limits and refusals.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "testdata.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::tokenizer {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ImageChat, TinyPixtralRequestsRenderLikeMistralCommon) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/reference-models/tiny-pixtral";
  const LoadedTokenizer loaded = LoadTokenizer(dir + "/mistral/tekken.json");
  ASSERT_TRUE(loaded.tokenizer->image_config().has_value());
  EXPECT_EQ(loaded.tokenizer->image_config()->image_token_id, 10);
  EXPECT_EQ(loaded.tokenizer->image_config()->image_break_token_id, 12);
  EXPECT_EQ(loaded.tokenizer->image_config()->image_end_token_id, 13);
  EXPECT_EQ(loaded.tokenizer->image_config()->max_image_size, 128);
  const auto fixtures = nlohmann::json::parse(ReadAll(dir + "/golden/chat_requests.json"));
  InstructEncoder encoder(*loaded.tokenizer, loaded.version.version);
  int checked = 0;
  for (const auto& entry : fixtures.at("requests")) {
    SCOPED_TRACE(entry.at("name").get<std::string>());
    const OrderedJson body = OrderedJson::parse(entry.at("request").dump());
    const Tokenized tokenized = encoder.EncodeChat(ParseChatRequest(body, ValidationMode::kTest), ValidationMode::kTest);
    EXPECT_EQ(tokenized.ids, entry.at("tokens").get<std::vector<int32_t>>());
    EXPECT_EQ(tokenized.text, entry.at("text").get<std::string>());
    ASSERT_EQ(tokenized.images.size(), entry.at("image_blocks").size());
    // Each image's [IMG] count matches its block.
    for (size_t i = 0; i < tokenized.images.size(); ++i) {
      const int64_t start = entry.at("image_blocks")[i][0], end = entry.at("image_blocks")[i][1];
      int64_t img = 0;
      for (int64_t t = start; t < end; ++t) img += tokenized.ids[t] == 10;
      EXPECT_EQ(img, tokenized.images[i]->image_tokens());
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(ImageChat, RefusesRemoteUrlsBadImagesAndTooMany) {
  auto parse = [](const std::string& url, ImageRequestLimits limits = {}) {
    const std::string body = R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": ")" +
                             url + R"("}]}]})";
    return ParseChatRequest(OrderedJson::parse(body), ValidationMode::kServing, limits);
  };
  try {
    parse("https://example.com/cat.png");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("messages[0].content[0]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not fetched"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse("data:image/png;base64,!!!!"), InvalidArgument);
  EXPECT_THROW(parse("data:image/png;base64,aGVsbG8="), InvalidArgument);  // "hello": not an image
  EXPECT_THROW(parse("data:text/plain;base64,aGVsbG8="), InvalidArgument);
  EXPECT_THROW(parse("file:///etc/passwd"), InvalidArgument);
  // A 1x1 PNG decodes; a zero-image limit refuses it.
  const std::string png =
      "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
  const ChatRequest request = parse(png);
  ASSERT_EQ(request.messages[0].content.chunks.size(), 1u);
  EXPECT_EQ(request.messages[0].content.chunks[0].image->width, 1);
  ImageRequestLimits none;
  none.max_images = 0;
  EXPECT_THROW(parse(png, none), InvalidArgument);
  // Mistral's `image` chunk takes bare base64 (or a data: URL).
  const std::string bare = R"({"messages": [{"role": "user", "content": [{"type": "image", "image": ")" +
                           png.substr(png.find(',') + 1) + R"("}]}]})";
  EXPECT_EQ(ParseChatRequest(OrderedJson::parse(bare), ValidationMode::kServing).messages[0].content.chunks[0].image->height, 1);
  // The pixels of all images of a request are bounded together.
  const std::string two = R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": ")" + png +
                          R"("}, {"type": "image_url", "image_url": ")" + png + R"("}]}]})";
  ImageRequestLimits budget;
  budget.max_total_pixels = 1;
  try {
    ParseChatRequest(OrderedJson::parse(two), ValidationMode::kServing, budget);
    FAIL() << "the pixel budget was not applied";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("content[1]"), std::string::npos) << e.what();
  }
  budget.max_total_pixels = 2;
  EXPECT_EQ(ParseChatRequest(OrderedJson::parse(two), ValidationMode::kServing, budget).messages[0].content.chunks.size(), 2u);
}

TEST(ImageChat, TokenizerWithoutImageSettingsRefusesImages) {
  BORA_REQUIRE_SHARED(shared);
  const LoadedTokenizer loaded = LoadTokenizer(shared + "/tokenizers/tekken_240718-reconstructed.json");
  ASSERT_FALSE(loaded.tokenizer->image_config().has_value());
  const std::string body =
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}]}]})";
  InstructEncoder encoder(*loaded.tokenizer, loaded.version.version);
  EXPECT_THROW(encoder.EncodeChat(ParseChatRequest(OrderedJson::parse(body), ValidationMode::kServing),
                                  ValidationMode::kServing),
               InvalidArgument);
}

TEST(ImageChat, SentencePieceM1SuffixGivesPixtralImageSettings) {
  BORA_REQUIRE_SHARED(shared);
  const LoadedTokenizer m1 = LoadTokenizer(shared + "/tokenizers/mistral_instruct_tokenizer_241114.model.v7m1");
  ASSERT_TRUE(m1.tokenizer->image_config().has_value());
  EXPECT_EQ(m1.tokenizer->image_config()->patch_size, 16);
  EXPECT_EQ(m1.tokenizer->image_config()->max_image_size, 1024);
  EXPECT_EQ(m1.tokenizer->image_config()->image_token_id, *m1.tokenizer->FindSpecial("[IMG]"));
  const LoadedTokenizer v7 = LoadTokenizer(shared + "/tokenizers/mistral_instruct_tokenizer_241114.model.v7");
  EXPECT_FALSE(v7.tokenizer->image_config().has_value());
}

}  // namespace
}  // namespace bora::tokenizer
