// Training tokenisation with the SentencePiece v3 tokenizer: hand-checked ids and loss masks
// (BOS, [INST]/[/INST], EOS, weight 0, only_last, tools forcing only_last, last-message call
// ids removed), pretraining samples, and segments == EncodeInstruct on the chat fixtures.
#include "train/data/sample_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "testdata.h"
#include "tokenizer/chat_validation.h"
#include "tokenizer/tokenizer_test_util.h"

namespace bora::train {
namespace {

namespace fs = std::filesystem;
using testing::SharedTokenizer;
using tokenizer::InstructSegment;
using tokenizer::OrderedJson;

constexpr char kSpmV3[] = "mistral_instruct_tokenizer_240323.model.v3";

// SentencePiece v3 ids (mistral-formats.md §4.7, §5): control tokens and single letters.
constexpr int32_t kBos = 1, kEos = 2, kInst = 3, kEndInst = 4, kToolCalls = 5, kTools = 6,
                  kEndTools = 7, kResults = 8, kEndResults = 9;
constexpr int32_t kA = 1032, kB = 1055, kC = 1045, kD = 1049;

std::vector<int32_t> Cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

std::vector<uint8_t> Mask(std::initializer_list<std::pair<size_t, uint8_t>> runs) {
  std::vector<uint8_t> out;
  for (const auto& [count, value] : runs) out.insert(out.end(), count, value);
  return out;
}

class SampleTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BORA_REQUIRE_SHARED(shared);
    tokenizer_ = SharedTokenizer(shared, kSpmV3).tokenizer.get();
  }
  TrainingSample Tokenize(const std::string& line) const {
    return SampleTokenizer(*tokenizer_).Tokenize(ParseTrainingRecord(line, {"test.jsonl", 1}));
  }
  std::vector<int32_t> Encode(const std::string& text) const { return tokenizer_->Encode(text); }

  const tokenizer::Tokenizer* tokenizer_ = nullptr;
};

constexpr char kFourTurns[] =
    R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})";

TEST_F(SampleTokenizerTest, TwoTurnsTrainEveryAssistantTokenAndEos) {
  TrainingSample sample = Tokenize(kFourTurns);
  // <s>[INST]▁a[/INST]▁b</s>[INST]▁c[/INST]▁d</s>
  EXPECT_EQ(sample.tokens, std::vector<int32_t>({kBos, kInst, kA, kEndInst, kB, kEos, kInst, kC,
                                                 kEndInst, kD, kEos}));
  EXPECT_EQ(sample.mask, Mask({{4, 0}, {2, 1}, {3, 0}, {2, 1}}));
  EXPECT_TRUE(sample.has_targets());
}

TEST_F(SampleTokenizerTest, WeightZeroMasksThatAssistantMessage) {
  TrainingSample sample = Tokenize(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0},
          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})");
  EXPECT_EQ(sample.tokens.size(), 11u);
  EXPECT_EQ(sample.mask, Mask({{9, 0}, {2, 1}}));
  TrainingSample none = Tokenize(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 0}]})");
  EXPECT_EQ(none.mask, Mask({{6, 0}}));
  EXPECT_FALSE(none.has_targets());
}

TEST_F(SampleTokenizerTest, OnlyLastTrainsTheLastMessageOnly) {
  std::string line = kFourTurns;
  line.insert(line.size() - 1, R"(, "only_last": true)");
  TrainingSample sample = Tokenize(line);
  EXPECT_EQ(sample.mask, Mask({{9, 0}, {2, 1}}));
}

TEST_F(SampleTokenizerTest, SystemPromptGoesIntoTheLastUserMessage) {
  const std::vector<int32_t> expected = {kBos,  kInst, kA,  kEndInst, kB,       kEos, kInst, 17889,
                                         23294, 781,   781, 29485,    kEndInst, kD,   kEos};
  std::string top = kFourTurns;
  top.insert(top.size() - 1, R"(, "system_prompt": "SYSTEM")");
  EXPECT_EQ(Tokenize(top).tokens, expected);
  TrainingSample from_message = Tokenize(
      R"({"messages": [{"role": "system", "content": "SYSTEM"}, {"role": "user", "content": "a"},
          {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
          {"role": "assistant", "content": "d"}]})");
  EXPECT_EQ(from_message.tokens, expected);
  EXPECT_EQ(from_message.mask, Mask({{4, 0}, {2, 1}, {7, 0}, {2, 1}}));
}

TEST_F(SampleTokenizerTest, ToolRoundTripWithoutToolsTrainsTheCallToo) {
  TrainingSample sample = Tokenize(
      R"({"messages": [{"role": "user", "content": "a"},
          {"role": "assistant", "tool_calls": [{"id": "123456789", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "123456789", "name": "b", "content": "d"},
          {"role": "assistant", "content": "d"}]})");
  // mistral-formats.md §5, SentencePiece v3 tool round trip, then ▁d</s>.
  const std::vector<int32_t> call = {kToolCalls, 1501,  7567,  1629,  2032,  1113,  29494,
                                     1316,       1113,  17452, 2032,  13450, 1113,  1081,
                                     2032,       1113,  29508, 29518, 29538, 29549, 29550,
                                     29552,      29555, 29551, 29542, 29507, 10925, kEos};
  const std::vector<int32_t> result = {
      kResults, 10598, 4557,  2032,  1113,  29483, 1316,  1113,  3613,  29498, 1081,  2032,
      1113,     29508, 29518, 29538, 29549, 29550, 29552, 29555, 29551, 29542, 18163, kEndResults};
  EXPECT_EQ(sample.tokens, Cat({{kBos, kInst, kA, kEndInst}, call, result, {kD, kEos}}));
  EXPECT_EQ(sample.mask, Mask({{4, 0}, {call.size(), 1}, {result.size(), 0}, {2, 1}}));
}

TEST_F(SampleTokenizerTest, ToolsForceOnlyLastAndSitBeforeTheLastUserMessage) {
  TrainingSample sample = Tokenize(
      R"({"tools": [{"type": "function", "function": {"name": "b", "description": "", "parameters": {}}}],
          "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
          {"role": "user", "content": "c"},
          {"role": "assistant", "tool_calls": [{"id": "123456789", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
          {"role": "tool", "tool_call_id": "123456789", "content": "d"},
          {"role": "assistant", "content": "d"}]})");
  const auto tools = Cat({{kTools},
                          Encode(R"([{"type": "function", "function": {"name": "b", )"
                                 R"("description": "", "parameters": {}}}])"),
                          {kEndTools}});
  const auto call =
      Cat({{kToolCalls}, Encode(R"([{"name": "b", "arguments": {}, "id": "123456789"}])"), {kEos}});
  const auto result =
      Cat({{kResults}, Encode(R"({"content": "d", "call_id": "123456789"})"), {kEndResults}});
  EXPECT_EQ(sample.tokens, Cat({{kBos, kInst, kA, kEndInst, kB, kEos},
                                tools,
                                {kInst, kC, kEndInst},
                                call,
                                result,
                                {kD, kEos}}));
  // Only the final assistant message is a target: not ▁b</s>, not the earlier call.
  const size_t untrained = sample.tokens.size() - 2;
  EXPECT_EQ(sample.mask, Mask({{untrained, 0}, {2, 1}}));
}

TEST_F(SampleTokenizerTest, LastMessageToolCallIdsAreRemoved) {
  TrainingSample sample = Tokenize(
      R"({"messages": [{"role": "user", "content": "a"},
          {"role": "assistant", "tool_calls": [{"id": "123456789", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}}]}]})");
  // As if the id were "null": no "id" key at all, arguments re-serialised with ", "/": ".
  const auto call =
      Cat({{kToolCalls}, Encode(R"([{"name": "b", "arguments": {"x": 1}}])"), {kEos}});
  EXPECT_EQ(sample.tokens, Cat({{kBos, kInst, kA, kEndInst}, call}));
  EXPECT_EQ(sample.mask, Mask({{4, 0}, {call.size(), 1}}));
}

TEST_F(SampleTokenizerTest, PretrainIsBosTextEosWithEverythingButBosTrained) {
  TrainingSample sample = Tokenize(R"({"text": "Hello world"})");
  EXPECT_EQ(sample.tokens, Cat({{kBos}, Encode("Hello world"), {kEos}}));
  EXPECT_EQ(sample.mask, Mask({{1, 0}, {sample.tokens.size() - 1, 1}}));
  TrainingSample empty = Tokenize(R"({"content": ""})");
  EXPECT_EQ(empty.tokens, std::vector<int32_t>({kBos, kEos}));
  EXPECT_EQ(empty.mask, Mask({{1, 0}, {1, 1}}));
}

// For every upstream chat fixture and instruct version: concatenated segments are exactly
// EncodeInstruct's ids (and the expected upstream ids), one segment per message, BOS first.
TEST(InstructSegmentsTest, ConcatenationEqualsEncodeInstructOnChatFixtures) {
  BORA_REQUIRE_SHARED(shared);
  const std::map<std::string, std::string> files = {
      {"v1", "tokenizer.model.v1"},
      {"v2", "mistral_instruct_tokenizer_240216.model.v2"},
      {"v3", kSpmV3}};
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(shared + "/tokenizers/mistral-common-samples")) {
    const std::string dir = entry.path().string();
    const auto body = testing::ReadJson(dir + "/sample.json");
    for (const auto& [version_name, file] : files) {
      SCOPED_TRACE(dir + " " + version_name);
      const auto& loaded = SharedTokenizer(shared, file);
      const auto version = tokenizer::ParseInstructVersion(version_name);
      const auto request = tokenizer::ParseChatRequest(body, tokenizer::ValidationMode::kTest);
      tokenizer::InstructRequest normalized;
      try {
        tokenizer::ValidateChatRequest(request, version, tokenizer::ValidationMode::kTest);
        normalized = tokenizer::NormalizeChatRequest(request, version);
      } catch (const InvalidArgument&) {
        continue;  // e.g. tools with v1
      }
      tokenizer::InstructEncoder encoder(*loaded.tokenizer, version);
      std::vector<InstructSegment> segments;
      try {
        segments = encoder.EncodeInstructSegments(normalized);
      } catch (const InvalidArgument&) {
        // Both paths refuse the same requests (v1 has no tool calls).
        EXPECT_THROW((void)encoder.EncodeInstruct(normalized), InvalidArgument);
        continue;
      }
      std::vector<int32_t> joined;
      int next_message = 0;
      ASSERT_FALSE(segments.empty());
      EXPECT_EQ(segments[0].kind, InstructSegment::Kind::kBos);
      for (const auto& segment : segments) {
        joined.insert(joined.end(), segment.ids.begin(), segment.ids.end());
        if (segment.message_index < 0) continue;
        EXPECT_EQ(segment.message_index, next_message++);
        const auto role = normalized.messages[segment.message_index].role;
        const auto expected_kind = role == tokenizer::Role::kUser ? InstructSegment::Kind::kUser
                                   : role == tokenizer::Role::kAssistant
                                       ? InstructSegment::Kind::kAssistant
                                       : InstructSegment::Kind::kToolResult;
        EXPECT_EQ(segment.kind, expected_kind);
      }
      EXPECT_EQ(next_message, static_cast<int>(normalized.messages.size()));
      EXPECT_EQ(joined, encoder.EncodeInstruct(normalized).ids);
      const std::string tokens_path = dir + "/tokens_" + version_name + ".json";
      if (fs::exists(tokens_path) &&
          !(entry.path().filename() == "parallel_calls" && version_name == "v2")) {
        EXPECT_EQ(joined, testing::ReadJson(tokens_path)["tokens"].get<std::vector<int32_t>>());
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 12);
}

// The tools block is a segment of its own with message index -1, right before the last user
// message (v3), and only then.
TEST(InstructSegmentsTest, ToolsBlockIsItsOwnSegment) {
  BORA_REQUIRE_SHARED(shared);
  const auto& loaded = SharedTokenizer(shared, kSpmV3);
  auto record = ParseTrainingRecord(
      R"({"tools": [{"type": "function", "function": {"name": "b", "description": "", "parameters": {}}}],
          "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})",
      {"f", 1});
  tokenizer::InstructEncoder encoder(*loaded.tokenizer, tokenizer::InstructVersion::kV3);
  const auto segments = encoder.EncodeInstructSegments(SampleTokenizer::InstructRequestFor(record));
  std::vector<InstructSegment::Kind> kinds;
  std::vector<int> indices;
  for (const auto& segment : segments) {
    kinds.push_back(segment.kind);
    indices.push_back(segment.message_index);
  }
  using Kind = InstructSegment::Kind;
  EXPECT_EQ(kinds, std::vector<Kind>({Kind::kBos, Kind::kUser, Kind::kAssistant,
                                      Kind::kAvailableTools, Kind::kUser, Kind::kAssistant}));
  EXPECT_EQ(indices, std::vector<int>({-1, 0, 1, -1, 2, 3}));
  EXPECT_EQ(segments[3].ids.front(), kTools);
  EXPECT_EQ(segments[3].ids.back(), kEndTools);
}

}  // namespace
}  // namespace bora::train
