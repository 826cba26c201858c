// Tool-call grammars: the v2-v7 JSON list on the real SentencePiece v3 vocabulary, the v11 and
// v13 [ARGS] forms on a stand-in tokenizer that defines those special tokens, and errors.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/constraint/byte_matcher.h"
#include "runtime/constraint/matcher.h"
#include "runtime/constraint/tool_call_grammar.h"
#include "testdata.h"
#include "tokenizer/load_tokenizer.h"
#include "tokenizer/output_parser.h"

namespace bora::runtime::constraint {
namespace {

using tokenizer::InstructVersion;

// Only FindSpecial matters to the grammar compiler: [TOOL_CALLS] 9, [ARGS] 32, [CALL_ID] 33.
class SpecialsOnly : public tokenizer::Tokenizer {
 public:
  tokenizer::Backend backend() const override { return tokenizer::Backend::kTekken; }
  int32_t vocab_size() const override { return 1000; }
  int32_t num_special_tokens() const override { return 100; }
  std::vector<int32_t> Encode(std::string_view) const override { return {}; }
  std::string Decode(std::span<const int32_t>, tokenizer::SpecialTokenPolicy) const override {
    return "";
  }
  std::string IdToPiece(int32_t) const override { return ""; }
  bool IsSpecial(int32_t id) const override { return id < 100; }
  std::optional<int32_t> FindSpecial(std::string_view name) const override {
    if (name == "[TOOL_CALLS]") return 9;
    if (name == "[ARGS]") return 32;
    if (name == "[CALL_ID]") return 33;
    return std::nullopt;
  }
  std::string TokenBytes(int32_t) const override { return ""; }
  bool StripsLeadingSpace() const override { return false; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  int32_t unk_id() const override { return 0; }
  int32_t pad_id() const override { return -1; }
};

std::vector<ToolSpec> Tools() {
  return {
      {"get_weather", SchemaJson::parse(R"({"type":"object","properties":{
          "location":{"type":"string"},"unit":{"enum":["celsius","fahrenheit"]}},
          "required":["location","unit"],"additionalProperties":false})")},
      {"add", SchemaJson::parse(R"({"type":"object","properties":{"a":{"type":"integer"},
          "b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false})")},
  };
}

// A sequence of special ids (>= 0) and text pieces, as the model would produce it.
struct Piece {
  int32_t special = -1;
  std::string text;
};

bool Matches(const std::shared_ptr<const Grammar>& grammar, const std::vector<Piece>& pieces) {
  ByteMatcher matcher(grammar);
  std::vector<Thread> current, next;
  matcher.Start(current);
  for (const Piece& piece : pieces) {
    if (piece.special >= 0) {
      if (!matcher.StepSpecial(current, piece.special, next)) return false;
      current.swap(next);
    }
    for (char c : piece.text) {
      if (!matcher.Step(current, static_cast<uint8_t>(c), next)) return false;
      current.swap(next);
    }
  }
  return ByteMatcher::IsComplete(current);
}

TEST(ToolCallTest, V11CallIdForm) {
  SpecialsOnly tok;
  const auto tools = Tools();
  const auto grammar = CompileToolCallGrammar(tok, InstructVersion::kV11, tools);
  const std::string args = R"({"location": "Paris", "unit": "celsius"})";
  EXPECT_TRUE(Matches(grammar, {{9, "get_weather"}, {33, "aB3dE6gH9"}, {32, args}}));
  EXPECT_TRUE(Matches(grammar, {{9, "get_weather"},
                                {33, "aB3dE6gH9"},
                                {32, args},
                                {9, "add"},
                                {33, "000000000"},
                                {32, R"({"a": 1, "b": -2})"}}));
  EXPECT_FALSE(Matches(grammar, {{9, "get_weather"}, {33, "aB3dE6gH"}, {32, args}}));  // 8 chars
  EXPECT_FALSE(Matches(grammar, {{9, "get_weather"}, {32, args}}));                    // no call id
  EXPECT_FALSE(Matches(grammar, {{9, "get_time"}, {33, "aB3dE6gH9"}, {32, args}}));
  EXPECT_FALSE(Matches(grammar, {{9, "add"}, {33, "aB3dE6gH9"}, {32, args}}));  // wrong schema
  EXPECT_FALSE(Matches(grammar, {{-1, "get_weather"}}));                        // no [TOOL_CALLS]
}

TEST(ToolCallTest, V13ArgsFormAndNamedTool) {
  SpecialsOnly tok;
  const auto tools = Tools();
  const auto grammar = CompileToolCallGrammar(tok, InstructVersion::kV13, tools);
  EXPECT_TRUE(Matches(grammar, {{9, "add"}, {32, R"({"a": 1, "b": 2})"}}));
  EXPECT_TRUE(Matches(
      grammar, {{9, "add"}, {32, R"({"a": 1, "b": 2})"}, {9, "add"}, {32, R"({"a": 3, "b": 4})"}}));
  EXPECT_FALSE(Matches(grammar, {{9, "add"}, {32, R"({"a": 1})"}}));
  ToolCallOptions named;
  named.named_tool = "get_weather";
  named.parallel_calls = false;
  const auto only = CompileToolCallGrammar(tok, InstructVersion::kV13, tools, named);
  EXPECT_FALSE(Matches(only, {{9, "add"}, {32, R"({"a": 1, "b": 2})"}}));
  const std::string args = R"({"location": "Oslo", "unit": "fahrenheit"})";
  EXPECT_TRUE(Matches(only, {{9, "get_weather"}, {32, args}}));
  EXPECT_FALSE(Matches(only, {{9, "get_weather"}, {32, args}, {9, "get_weather"}, {32, args}}));
}

TEST(ToolCallTest, Errors) {
  SpecialsOnly tok;
  const auto tools = Tools();
  EXPECT_THROW(CompileToolCallGrammar(tok, InstructVersion::kV1, tools), InvalidArgument);
  EXPECT_THROW(CompileToolCallGrammar(tok, InstructVersion::kV13, {}), InvalidArgument);
  ToolCallOptions named;
  named.named_tool = "missing";
  EXPECT_THROW(CompileToolCallGrammar(tok, InstructVersion::kV13, tools, named), InvalidArgument);
  std::vector<ToolSpec> twice = {tools[0], tools[0]};
  EXPECT_THROW(CompileToolCallGrammar(tok, InstructVersion::kV13, twice), InvalidArgument);
  std::vector<ToolSpec> bad = {{"x", SchemaJson::parse(R"({"type":"string","pattern":"a"})")}};
  try {
    CompileToolCallGrammar(tok, InstructVersion::kV13, bad);
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("tool 'x'"), std::string::npos) << error.what();
  }
}

TEST(ToolCallTest, V3JsonListOnSentencePiece) {
  BORA_REQUIRE_SHARED(shared);
  tokenizer::LoadedTokenizer loaded =
      tokenizer::LoadTokenizer(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3");
  const tokenizer::Tokenizer& tok = *loaded.tokenizer;
  auto vocabulary = std::make_shared<const TokenVocabulary>(tok);
  const auto tools = Tools();
  const auto grammar = CompileToolCallGrammar(tok, InstructVersion::kV3, tools);
  Matcher matcher(grammar, vocabulary);
  const int32_t tool_calls = *tok.FindSpecial("[TOOL_CALLS]");
  std::vector<uint64_t> mask(MaskWords(vocabulary->size()));
  matcher.FillMask(mask);
  // Only [TOOL_CALLS], or a lone "▁" whose space the decoder drops (adding no text).
  for (int32_t id = 0; id < vocabulary->size(); ++id) {
    const bool expected = id == tool_calls || tok.TokenBytes(id) == " ";
    EXPECT_EQ((mask[id / 64] >> (id % 64)) & 1, expected ? 1u : 0u) << id;
  }
  // What mistral-common renders for a call: [TOOL_CALLS] + encode(json.dumps(list)).
  std::vector<int32_t> ids = {tool_calls};
  for (int32_t id : tok.Encode(R"([{"name": "get_weather", "arguments": {"location": "Paris", )"
                               R"("unit": "celsius"}}, {"name": "add", "arguments": )"
                               R"({"a": 2, "b": 3}}])")) {
    ids.push_back(id);
  }
  for (int32_t id : ids) {
    ASSERT_TRUE(matcher.IsAllowed(id)) << tok.IdToPiece(id);
    matcher.Accept(id);
  }
  ASSERT_TRUE(matcher.Complete());
  const auto parsed = tokenizer::ParseAssistantOutput(tok, InstructVersion::kV3, ids,
                                                      [] { return std::string("abcdefghi"); });
  EXPECT_FALSE(parsed.tool_call_error);
  ASSERT_EQ(parsed.tool_calls.size(), 2u);
  EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
  EXPECT_EQ(parsed.tool_calls[1].name, "add");
}

}  // namespace
}  // namespace bora::runtime::constraint
