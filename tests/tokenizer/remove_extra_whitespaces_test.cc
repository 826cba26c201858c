// A SentencePiece model trained with remove_extra_whitespaces (llama2.c's tok512 of the real
// stories260K model): encoding like the reference, decoding like the library, and the streaming
// detokenizer agreeing with one-shot decoding on sequences that begin with lone-space pieces.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "testdata.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/streaming_detokenizer.h"

namespace bora::tokenizer {
namespace {

nlohmann::json ReferenceRuns(const std::string& shared) {
  std::ifstream in(shared + "/real-models/stories260K/reference_outputs.json");
  return nlohmann::json::parse(in).at("runs");
}

std::string Streamed(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDetokenizer detokenizer(tokenizer, SpecialTokenPolicy::kIgnore);
  std::string text;
  for (int32_t id : ids) text += detokenizer.Push(id);
  return text + detokenizer.Finish();
}

TEST(RemoveExtraWhitespacesTest, EncodesAndDecodesLikeLlama2c) {
  BORA_REQUIRE_SHARED(shared);
  SentencePieceTokenizer tokenizer(shared + "/real-models/stories260K/tokenizer.model");
  EXPECT_TRUE(tokenizer.StripsLeadingSpace());
  EXPECT_TRUE(tokenizer.StripsRepeatedLeadingSpace());
  const nlohmann::json runs = ReferenceRuns(shared);
  const nlohmann::json& once = runs.at("once");
  std::vector<int32_t> input = once.at("input_ids").get<std::vector<int32_t>>();
  EXPECT_EQ(tokenizer.Encode(once.at("prompt").get<std::string>()),
            std::vector<int32_t>(input.begin() + 1, input.end()));
  // run.c prints the pieces it processed; its stdout is their decoded text plus a newline.
  for (const char* run : {"once", "bos"}) {
    const std::vector<int32_t> printed = runs.at(run).at("printed_token_ids").get<std::vector<int32_t>>();
    std::string stdout_text = runs.at(run).at("stdout").get<std::string>();
    ASSERT_FALSE(stdout_text.empty());
    stdout_text.pop_back();
    EXPECT_EQ(tokenizer.Decode(printed, SpecialTokenPolicy::kIgnore), stdout_text) << run;
    EXPECT_EQ(Streamed(tokenizer, printed), stdout_text) << run;
  }
}

// Lone U+2581 pieces at the start are all dropped, then one more space: the streaming
// detokenizer must agree with the library on every such prefix.
TEST(RemoveExtraWhitespacesTest, StreamingEqualsOneShotWithLeadingSpaces) {
  BORA_REQUIRE_SHARED(shared);
  SentencePieceTokenizer tokenizer(shared + "/real-models/stories260K/tokenizer.model");
  const int32_t space = tokenizer.Encode(" ").empty() ? -1 : tokenizer.Encode(" ")[0];
  std::vector<int32_t> spaces;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IdToPiece(id) == "\xE2\x96\x81") spaces.push_back(id);
  }
  ASSERT_EQ(spaces.size(), 1u) << "the lone-space piece (encode(\" \") gave " << space << ")";
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int32_t> ids;
    const int leading = static_cast<int>(rng() % 4);
    for (int i = 0; i < leading; ++i) ids.push_back(rng() % 3 == 0 ? tokenizer.bos_id() : spaces[0]);
    const int length = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < length; ++i) {
      // Mostly text pieces (259..511), sometimes bytes (3..258) and the lone space.
      const uint32_t pick = rng() % 10;
      ids.push_back(pick < 7 ? 259 + static_cast<int32_t>(rng() % 253)
                             : pick < 9 ? 3 + static_cast<int32_t>(rng() % 256) : spaces[0]);
    }
    ASSERT_EQ(Streamed(tokenizer, ids), tokenizer.Decode(ids, SpecialTokenPolicy::kIgnore))
        << "trial " << trial;
  }
}

}  // namespace
}  // namespace bora::tokenizer
