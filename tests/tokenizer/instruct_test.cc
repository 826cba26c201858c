// Prompt building against mistral-common: upstream chat fixtures, the worked examples of
// mistral-formats.md §4-5 (SentencePiece v1..v7, Tekken v3..v13), FIM, validation, parsing.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "base/error.h"
#include "testdata.h"
#include "tokenizer/chat_validation.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/output_parser.h"
#include "tokenizer/tokenizer_test_util.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;
using tokenizer::ChatRequest;
using tokenizer::InstructEncoder;
using tokenizer::InstructVersion;
using tokenizer::OrderedJson;
using tokenizer::ValidationMode;

constexpr char kSpmV1[] = "tokenizer.model.v1";
constexpr char kSpmV2[] = "mistral_instruct_tokenizer_240216.model.v2";
constexpr char kSpmV3[] = "mistral_instruct_tokenizer_240323.model.v3";
constexpr char kSpmV7[] = "mistral_instruct_tokenizer_241114.model.v7";
constexpr char kTekken[] = "tekken_240718-reconstructed.json";

std::vector<int32_t> Ids(std::initializer_list<int32_t> ids) { return ids; }

// Validated encoding in test mode (what `bora render` does).
tokenizer::Tokenized Render(const tokenizer::LoadedTokenizer& loaded,
                            const std::string& request_json,
                            std::optional<InstructVersion> version = std::nullopt) {
  InstructEncoder encoder(*loaded.tokenizer, version.value_or(loaded.version.version));
  OrderedJson body = OrderedJson::parse(request_json);
  return encoder.EncodeChat(tokenizer::ParseChatRequest(body, ValidationMode::kTest),
                            ValidationMode::kTest);
}

// Normalise + encode without validation, as mistral-common's encode_instruct tests do.
tokenizer::Tokenized EncodeUnvalidated(const tokenizer::LoadedTokenizer& loaded,
                                       const std::string& request_json,
                                       std::optional<InstructVersion> version = std::nullopt) {
  InstructVersion chosen = version.value_or(loaded.version.version);
  InstructEncoder encoder(*loaded.tokenizer, chosen);
  OrderedJson body = OrderedJson::parse(request_json);
  return encoder.EncodeInstruct(tokenizer::NormalizeChatRequest(
      tokenizer::ParseChatRequest(body, ValidationMode::kTest), chosen));
}

TEST(InstructSamplesTest, UpstreamFixturesMatchTextAndIds) {
  BORA_REQUIRE_SHARED(shared);
  const std::map<std::string, std::string> files = {{"v1", kSpmV1}, {"v2", kSpmV2}, {"v3", kSpmV3}};
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(shared + "/tokenizers/mistral-common-samples")) {
    const std::string dir = entry.path().string();
    const std::string request = ReadText(dir + "/sample.json");
    for (const auto& [version, file] : files) {
      const std::string tokens_path = dir + "/tokens_" + version + ".json";
      if (!fs::exists(tokens_path)) continue;
      // Upstream never checks this file: it was written by an old mistral-common that merged
      // consecutive v2 tool results into one list; current mistral-common (and the spec)
      // writes one [TOOL_RESULTS] block per tool message.
      if (entry.path().filename() == "parallel_calls" && version == "v2") continue;
      SCOPED_TRACE(dir + " " + version);
      auto expected_ids = ReadJson(tokens_path)["tokens"].get<std::vector<int32_t>>();
      std::string expected_text = ReadText(dir + "/text_" + version + ".txt");
      while (!expected_text.empty() && expected_text.back() == '\n') expected_text.pop_back();
      auto tokenized = Render(SharedTokenizer(shared, file), request);
      EXPECT_EQ(tokenized.ids, expected_ids);
      EXPECT_EQ(tokenized.text, expected_text);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12);
}

TEST(InstructV1Test, UpstreamIds) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v1 = SharedTokenizer(shared, kSpmV1);
  auto turns = EncodeUnvalidated(v1, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
      {"role": "assistant", "content": "d"}]})");
  EXPECT_EQ(turns.ids, Ids({1,   733,   16289, 28793, 264, 733,   28748, 16289, 28793, 287, 2,
                            733, 16289, 28793, 277,   733, 28748, 16289, 28793, 281,   2}));
  EXPECT_EQ(turns.text, "<s>▁[INST]▁a▁[/INST]▁b</s>▁[INST]▁c▁[/INST]▁d</s>");
  auto system = Render(v1, R"({"messages": [{"role": "system", "content": "SYSTEM"},
      {"role": "user", "content": "a"}]})");
  EXPECT_EQ(system.ids,
            Ids({1, 733, 16289, 28793, 17121, 22526, 13, 13, 28708, 733, 28748, 16289, 28793}));
  EXPECT_EQ(system.text, "<s>▁[INST]▁SYSTEM<0x0A><0x0A>a▁[/INST]");
}

TEST(InstructV2Test, UpstreamIdsAndToolRendering) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v2 = SharedTokenizer(shared, kSpmV2);
  EXPECT_EQ(EncodeUnvalidated(v2, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
      {"role": "assistant", "content": "d"}]})")
                .ids,
            Ids({1, 3, 1032, 4, 1055, 2, 3, 1045, 4, 1049, 2}));
  EXPECT_EQ(EncodeUnvalidated(v2, R"({"messages": [{"role": "system", "content": "SYSTEM"},
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})")
                .ids,
            Ids({1, 3, 1032, 4, 1055, 2, 3, 17889, 23294, 781, 781, 29485, 4, 1049, 2}));
  auto tools = Render(v2, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"function": {"name": "b", "arguments": "{}"}}]},
      {"role": "tool", "name": "b", "content": "d"}]})");
  EXPECT_EQ(
      tools.text,
      "<s>[INST]▁a[/INST][TOOL_CALLS]▁[{\"name\":▁\"b\",▁\"arguments\":▁{}}]</s>[TOOL_RESULTS]▁"
      "[{\"name\":▁\"b\",▁\"content\":▁\"d\"}][/TOOL_RESULTS]");
}

TEST(InstructV2Test, DropsToolTrafficBeforeLastUserMessage) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v2 = SharedTokenizer(shared, kSpmV2);
  auto tokenized = Render(v2, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"function": {"name": "b", "arguments": "{}"}}]},
      {"role": "tool", "name": "b", "content": "d"}, {"role": "assistant", "content": "e"},
      {"role": "user", "content": "f"}]})");
  EXPECT_EQ(tokenized.text, "<s>[INST]▁a[/INST]▁e</s>[INST]▁f[/INST]");
}

TEST(InstructV3Test, UpstreamIdsRenderingsAndTools) {
  BORA_REQUIRE_SHARED(shared);
  const auto& spm = SharedTokenizer(shared, kSpmV3);
  const auto& tekken = SharedTokenizer(shared, kTekken);
  const std::string continued = R"({"messages": [{"role": "system", "content": "SYSTEM"},
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}],
      "continue_final_message": true})";
  auto spm_continued = Render(spm, continued);
  EXPECT_EQ(spm_continued.ids,
            Ids({1, 3, 1032, 4, 1055, 2, 3, 17889, 23294, 781, 781, 29485, 4, 1049}));
  ASSERT_TRUE(spm_continued.prefix_ids.has_value());
  EXPECT_EQ(*spm_continued.prefix_ids, Ids({1049}));
  EXPECT_EQ(Render(tekken, continued).ids,
            Ids({1, 3, 1097, 4, 1098, 2, 3, 101289, 58343, 1267, 1099, 4, 1100}));

  auto calls = Render(spm, R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"id": "123456789", "function": {"name": "b", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "123456789", "content": "d"}]})");
  EXPECT_EQ(calls.text,
            "<s>[INST]▁a[/"
            "INST][TOOL_CALLS]▁[{\"name\":▁\"b\",▁\"arguments\":▁{},▁\"id\":▁\"123456789\"}]</s>"
            "[TOOL_RESULTS]▁{\"content\":▁\"d\",▁\"call_id\":▁\"123456789\"}[/TOOL_RESULTS]");

  auto single = Render(tekken, R"({"messages": [{"role": "user", "content": "a"}],
      "tools": [{"type": "function", "function": {"name": "tool1", "description": "1", "parameters": {}}}]})");
  EXPECT_EQ(single.text,
            "<s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"tool1\", "
            "\"description\": "
            "\"1\", \"parameters\": {}}}][/AVAILABLE_TOOLS][INST]a[/INST]");
  ASSERT_GE(single.ids.size(), 4u);
  EXPECT_EQ(single.ids.front(), 1);
  EXPECT_EQ(std::vector<int32_t>(single.ids.end() - 3, single.ids.end()), Ids({3, 1097, 4}));
}

const char kSystemConversation[] = R"({"messages": [{"role": "system", "content": "SYSTEM"},
    {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
    {"role": "user", "content": "c"}]})";

TEST(InstructWorkedExamplesTest, SystemConversationEveryVersion) {
  BORA_REQUIRE_SHARED(shared);
  auto spm_v3 = Render(SharedTokenizer(shared, kSpmV3), kSystemConversation);
  EXPECT_EQ(spm_v3.ids, Ids({1, 3, 1032, 4, 1055, 2, 3, 17889, 23294, 781, 781, 29485, 4}));
  EXPECT_EQ(spm_v3.text, "<s>[INST]▁a[/INST]▁b</s>[INST]▁SYSTEM<0x0A><0x0A>c[/INST]");
  auto tekken_v3 = Render(SharedTokenizer(shared, kTekken), kSystemConversation);
  EXPECT_EQ(tekken_v3.ids, Ids({1, 3, 1097, 4, 1098, 2, 3, 101289, 58343, 1267, 1099, 4}));
  EXPECT_EQ(tekken_v3.text, "<s>[INST]a[/INST]b</s>[INST]SYSTEM\n\nc[/INST]");
  auto spm_v7 = Render(SharedTokenizer(shared, kSpmV7), kSystemConversation);
  EXPECT_EQ(spm_v7.ids, Ids({1, 16, 17889, 23294, 17, 3, 1032, 4, 1055, 2, 3, 1045, 4}));
  EXPECT_EQ(spm_v7.text,
            "<s>[SYSTEM_PROMPT]▁SYSTEM[/SYSTEM_PROMPT][INST]▁a[/INST]▁b</s>[INST]▁c[/INST]");
  for (const char* version : {"v7", "v11", "v13"}) {
    SCOPED_TRACE(version);
    auto tekken = Render(TekkenWithToolTokens(shared, version), kSystemConversation);
    EXPECT_EQ(tekken.ids, Ids({1, 17, 101289, 58343, 18, 3, 1097, 4, 1098, 2, 3, 1099, 4}));
    EXPECT_EQ(tekken.text,
              "<s>[SYSTEM_PROMPT]SYSTEM[/SYSTEM_PROMPT][INST]a[/INST]b</s>[INST]c[/INST]");
  }
}

const char kToolRoundTrip[] = R"({"messages": [{"role": "user", "content": "a"},
    {"role": "assistant", "tool_calls": [{"id": "123456789", "type": "function",
      "function": {"name": "b", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "123456789", "name": "b", "content": "d"}]})";

TEST(InstructWorkedExamplesTest, ToolRoundTripEveryVersion) {
  BORA_REQUIRE_SHARED(shared);
  EXPECT_EQ(Render(SharedTokenizer(shared, kSpmV3), kToolRoundTrip).ids,
            Ids({1,     3,     1032,  4,     5,     1501,  7567,  1629, 2032,  1113,  29494, 1316,
                 1113,  17452, 2032,  13450, 1113,  1081,  2032,  1113, 29508, 29518, 29538, 29549,
                 29550, 29552, 29555, 29551, 29542, 29507, 10925, 2,    8,     10598, 4557,  2032,
                 1113,  29483, 1316,  1113,  3613,  29498, 1081,  2032, 1113,  29508, 29518, 29538,
                 29549, 29550, 29552, 29555, 29551, 29542, 18163, 9}));
  EXPECT_EQ(Render(SharedTokenizer(shared, kTekken), kToolRoundTrip).ids,
            Ids({1,     3,    1097,  4,    9,     1091, 19227, 2391,  2811,  1429,  1098,
                 1897,  1429, 61906, 2811, 58208, 1429, 1327,  2811,  1429,  1049,  1050,
                 1051,  1052, 1053,  1054, 1055,  1056, 1057,  1034,  27028, 2,     7,
                 19227, 5431, 2811,  1429, 1100,  1897, 1429,  19881, 3384,  2811,  1429,
                 1049,  1050, 1051,  1052, 1053,  1054, 1055,  1056,  1057,  46005, 8}));
  EXPECT_EQ(Render(TekkenWithToolTokens(shared, "v7"), kToolRoundTrip).ids,
            Ids({1,    3,     1097, 4,     9,    1091, 19227, 2391, 2811, 1429, 1098, 1897,
                 1429, 61906, 2811, 58208, 1429, 1327, 2811,  1429, 1049, 1050, 1051, 1052,
                 1053, 1054,  1055, 1056,  1057, 1034, 27028, 2,    7,    1049, 1050, 1051,
                 1052, 1053,  1054, 1055,  1056, 1057, 19,    1100, 8}));
  EXPECT_EQ(Render(TekkenWithToolTokens(shared, "v11"), kToolRoundTrip).ids,
            Ids({1,    3,    1097, 4,    9,    1098, 33,    1049, 1050, 1051, 1052,
                 1053, 1054, 1055, 1056, 1057, 32,   30620, 2,    7,    1049, 1050,
                 1051, 1052, 1053, 1054, 1055, 1056, 1057,  19,   1100, 8}));
  EXPECT_EQ(Render(TekkenWithToolTokens(shared, "v13"), kToolRoundTrip).ids,
            Ids({1, 3, 1097, 4, 9, 1098, 32, 30620, 2, 7, 1100, 8}));
}

TEST(InstructV7Test, UpstreamToolResultIds) {
  BORA_REQUIRE_SHARED(shared);
  auto tokenized = EncodeUnvalidated(SharedTokenizer(shared, kSpmV7), R"({"messages": [
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "tool", "tool_call_id": "b", "content": "f"}]})");
  EXPECT_EQ(tokenized.ids, Ids({1, 3, 1032, 4, 1055, 2, 8, 1055, 18, 1053, 9}));
}

TEST(InstructV11Test, CallIdAndNonJsonArguments) {
  BORA_REQUIRE_SHARED(shared);
  auto tokenized = EncodeUnvalidated(TekkenWithToolTokens(shared, "v11"), R"({"messages": [
      {"role": "user", "content": "a"},
      {"role": "assistant", "tool_calls": [{"id": "ABC", "function": {"name": "a_a_a", "arguments": "blabla"}}]}]})");
  EXPECT_NE(tokenized.text.find("[TOOL_CALLS]a_a_a[CALL_ID]ABC[ARGS]\"blabla\"</s>"),
            std::string::npos)
      << tokenized.text;
}

TEST(InstructV13Test, ToolsFirstResultsReorderedAndThinking) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v13 = TekkenWithToolTokens(shared, "v13");
  const std::string tools = R"([{"type": "function", "function": {"name": "math_interpreter",
      "description": "Get the value of an arithmetic expression.", "parameters": {"type": "object",
      "properties": {"expression": {"type": "string", "description": "Math expression."}}}}}])";
  auto tokenized = Render(v13, R"({"messages": [{"role": "system", "content": "S"},
      {"role": "user", "content": "U1"},
      {"role": "assistant", "content": "A1", "tool_calls": [
        {"id": "aaaaaaaa1", "function": {"name": "F1", "arguments": "{}"}},
        {"id": "aaaaaaaa2", "function": {"name": "F2", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "aaaaaaaa2", "content": "R2"},
      {"role": "tool", "tool_call_id": "aaaaaaaa1", "content": "R1"},
      {"role": "assistant", "content": "A2"}, {"role": "user", "content": "U2"}],
      "tools": )" + tools + "}");
  EXPECT_EQ(
      tokenized.text,
      "<s>[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": "
      "{\"name\": \"math_interpreter\", \"description\": \"Get the value of an arithmetic "
      "expression.\", "
      "\"parameters\": {\"type\": \"object\", \"properties\": {\"expression\": {\"type\": "
      "\"string\", "
      "\"description\": \"Math "
      "expression.\"}}}}}][/AVAILABLE_TOOLS][INST]U1[/INST]A1[TOOL_CALLS]F1[ARGS]{}"
      "[TOOL_CALLS]F2[ARGS]{}</s>[TOOL_RESULTS]R1[/TOOL_RESULTS][TOOL_RESULTS]R2[/TOOL_RESULTS]A2</"
      "s>"
      "[INST]U2[/INST]");
  auto thinking = Render(v13, R"({"messages": [
      {"role": "system", "content": [{"type": "text", "text": "S1"}, {"type": "thinking", "thinking": "TS"},
                                     {"type": "text", "text": "S2"}]},
      {"role": "user", "content": "U1"},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "T1"}, {"type": "text", "text": "A2"}]},
      {"role": "user", "content": "U2"}]})");
  EXPECT_EQ(thinking.text,
            "<s>[SYSTEM_PROMPT]S1[THINK]TS[/THINK]S2[/SYSTEM_PROMPT][INST]U1[/INST][THINK]T1[/"
            "THINK]A2</s>"
            "[INST]U2[/INST]");
}

TEST(InstructFimTest, SuffixFirstWithoutMiddle) {
  BORA_REQUIRE_SHARED(shared);
  tokenizer::FimRequest request{"def f(", "return a + b"};
  for (const char* file : {kSpmV3, kSpmV7}) {
    InstructEncoder encoder(*SharedTokenizer(shared, file).tokenizer,
                            SharedTokenizer(shared, file).version.version);
    auto tokenized = encoder.EncodeFim(request);
    EXPECT_EQ(tokenized.ids, Ids({1, 13, 1575, 1032, 1416, 1055, 11, 1569, 1053, 29500})) << file;
    EXPECT_EQ(tokenized.text, "<s>[SUFFIX]return▁a▁+▁b[PREFIX]▁def▁f(");
  }
  const auto& tekken = SharedTokenizer(shared, kTekken);
  InstructEncoder encoder(*tekken.tokenizer, tekken.version.version);
  auto tokenized = encoder.EncodeFim(request);
  EXPECT_EQ(tokenized.ids, Ids({1, 16, 3004, 1261, 1867, 1289, 14, 3149, 1284, 1040}));
  EXPECT_EQ(tokenized.text, "<s>[SUFFIX]return a + b[PREFIX]def f(");
  auto no_suffix = encoder.EncodeFim({"x", std::nullopt});
  EXPECT_EQ(no_suffix.ids, Ids({1, 16, 14, 1120}));
  InstructEncoder v1(*SharedTokenizer(shared, kSpmV1).tokenizer, InstructVersion::kV1);
  EXPECT_THROW(v1.EncodeFim(request), InvalidArgument);
}

TEST(InstructPrefixTest, PrefixAssistantHasNoEosAndIsStripped) {
  BORA_REQUIRE_SHARED(shared);
  auto tokenized =
      Render(SharedTokenizer(shared, kTekken), R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "b  ", "prefix": true}]})");
  EXPECT_EQ(tokenized.ids, Ids({1, 3, 1097, 4, 1098}));
  ASSERT_TRUE(tokenized.prefix_ids.has_value());
  EXPECT_EQ(*tokenized.prefix_ids, Ids({1098}));
}

TEST(InstructVersionTest, SuffixConfigAndPieceInference) {
  BORA_REQUIRE_SHARED(shared);
  EXPECT_EQ(SharedTokenizer(shared, kSpmV1).version.version, InstructVersion::kV1);
  EXPECT_EQ(SharedTokenizer(shared, kSpmV2).version.version, InstructVersion::kV2);
  EXPECT_EQ(SharedTokenizer(shared, kSpmV3).version.version, InstructVersion::kV3);
  EXPECT_EQ(SharedTokenizer(shared, "mistral_instruct_tokenizer_241114.model.v7m1").version.version,
            InstructVersion::kV7);
  EXPECT_EQ(SharedTokenizer(shared, kTekken).version.version, InstructVersion::kV3);
  TempDir folder;
  const std::pair<const char*, InstructVersion> cases[] = {{kSpmV1, InstructVersion::kV1},
                                                           {kSpmV2, InstructVersion::kV2},
                                                           {kSpmV3, InstructVersion::kV3},
                                                           {kSpmV7, InstructVersion::kV7}};
  for (const auto& [file, version] : cases) {
    const std::string path = folder.File("tokenizer.model");
    fs::copy_file(shared + "/tokenizers/" + file, path, fs::copy_options::overwrite_existing);
    auto loaded = tokenizer::LoadTokenizer(path);
    EXPECT_EQ(loaded.version.version, version) << file << ": " << loaded.version.reason;
    EXPECT_NE(loaded.version.reason.find("no version suffix"), std::string::npos);
    EXPECT_EQ(tokenizer::FindTokenizerFile(folder.path()), path);
  }
  auto overridden =
      tokenizer::LoadTokenizer(shared + "/tokenizers/" + kSpmV3, InstructVersion::kV7);
  EXPECT_EQ(overridden.version.version, InstructVersion::kV7);
  // A Tekken file without [ARGS] cannot encode v11.
  EXPECT_THROW(InstructEncoder(*SharedTokenizer(shared, kTekken).tokenizer, InstructVersion::kV11),
               InvalidArgument);
}

// Requests mistral-common rejects, each with the version it is checked under.
TEST(InstructValidationTest, RejectsWhatMistralCommonRejects) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v3 = SharedTokenizer(shared, kSpmV3);
  const auto& v13 = TekkenWithToolTokens(shared, "v13");
  const std::pair<const tokenizer::LoadedTokenizer*, const char*> bad[] = {
      {&v3, R"({"messages": []})"},
      {&v3, R"({"messages": [{"role": "assistant", "content": "a"}]})"},
      {&v3, R"({"messages": [{"role": "robot", "content": "a"}]})"},
      {&v3, R"({"messages": [{"role": "user"}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "123456789", "content": "b"}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "system", "content": "c"}, {"role": "user", "content": "d"}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
                {"id": "12345678", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "12345678", "content": "x"}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
                {"id": "123456789", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "x"}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool_calls": [
                {"id": "123456789", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "prefix": true},
                {"role": "user", "content": "c"}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}], "continue_final_message": true})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "prefix": true}],
                "continue_final_message": true})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
                {"id": "123456789", "function": {"name": "bad name", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "strange"}}}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"required": "x"}}}]})"},
      {&v3, R"({"messages": [{"role": "user", "content": "a"}],
                "tools": [{"type": "function", "function": {"name": "f/g", "parameters": {}}}]})"},
      {&v3,
       R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]})"},
      {&v13,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
                {"id": "123456789", "function": {"name": "f", "arguments": "{}"}},
                {"id": "123456789", "function": {"name": "g", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})"},
      {&v13,
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
                {"id": "123456789", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "987654321", "content": "x"}]})"},
  };
  for (const auto& [loaded, request] : bad) {
    EXPECT_THROW(Render(*loaded, request), Error) << request;
  }
}

// An assistant message bora returned (" " before its tool calls) and the client sends back
// unchanged is accepted: whitespace-only content beside tool calls is no content. Real text
// beside tool calls is still refused before v7, like mistral-common.
TEST(InstructValidationTest, WhitespaceContentBesideToolCallsIsNoContent) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v3 = SharedTokenizer(shared, kSpmV3);
  InstructEncoder encoder(*v3.tokenizer, v3.version.version);
  auto request = [](const std::string& content) {
    return OrderedJson::parse(R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": )" +
                              content + R"(, "tool_calls": [{"id": "123456789", "function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})");
  };
  const std::string without =
      encoder.EncodeChat(tokenizer::ParseChatRequest(request("null"), ValidationMode::kServing), ValidationMode::kServing)
          .text;
  for (const char* blank : {R"(" ")", R"("\n")", R"("")"}) {
    EXPECT_EQ(encoder
                  .EncodeChat(tokenizer::ParseChatRequest(request(blank), ValidationMode::kServing),
                              ValidationMode::kServing)
                  .text,
              without)
        << blank;
  }
  EXPECT_THROW(encoder.EncodeChat(tokenizer::ParseChatRequest(request(R"("text")"), ValidationMode::kServing),
                                  ValidationMode::kServing),
               InvalidArgument);
}

TEST(InstructValidationTest, ServingModeIsStricterThanTestMode) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v3 = SharedTokenizer(shared, kSpmV3);
  InstructEncoder encoder(*v3.tokenizer, v3.version.version);
  // A call not yet answered, and a call without an id: fine in test mode, refused when serving.
  for (const char* request : {
           R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
               {"id": "123456789", "function": {"name": "f", "arguments": "{}"}},
               {"id": "123456780", "function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})",
           R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
               {"function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "123456789", "content": "x"}]})"}) {
    OrderedJson body = OrderedJson::parse(request);
    EXPECT_NO_THROW(encoder.EncodeChat(tokenizer::ParseChatRequest(body, ValidationMode::kTest),
                                       ValidationMode::kTest));
    EXPECT_THROW(encoder.EncodeChat(tokenizer::ParseChatRequest(body, ValidationMode::kServing),
                                    ValidationMode::kServing),
                 InvalidArgument);
  }
  // The OpenAI role `developer` is a system message when serving and unknown in test mode.
  OrderedJson developer = OrderedJson::parse(R"({"messages": [{"role": "developer", "content": "S"},
      {"role": "user", "content": "a"}]})");
  EXPECT_THROW(tokenizer::ParseChatRequest(developer, ValidationMode::kTest), InvalidArgument);
  EXPECT_EQ(encoder
                .EncodeChat(tokenizer::ParseChatRequest(developer, ValidationMode::kServing),
                            ValidationMode::kServing)
                .text,
            "<s>[INST]▁S<0x0A><0x0A>a[/INST]");
}

TEST(InstructNormalizeTest, MergesRolesAndNormalisesJson) {
  BORA_REQUIRE_SHARED(shared);
  auto tokenized = Render(SharedTokenizer(shared, kTekken), R"({"messages": [
      {"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"}]},
      {"role": "assistant", "tool_calls": [{"id": "123456789", "function": {"name": "f",
        "arguments": {"x": "é", "y": [1, 2.50, 1e-7]}}}]},
      {"role": "tool", "tool_call_id": "123456789", "content": "{\"k\":1}"}]})");
  EXPECT_EQ(
      tokenized.text,
      "<s>[INST]a\n\nb[/INST][TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"x\": \"é\", \"y\": "
      "[1, 2.5, "
      "1e-07]}, \"id\": \"123456789\"}]</s>[TOOL_RESULTS]{\"content\": {\"k\": 1}, \"call_id\": "
      "\"123456789\"}[/TOOL_RESULTS]");
}

TEST(OutputParserTest, RecoversCallsInEveryToolFormat) {
  BORA_REQUIRE_SHARED(shared);
  std::mt19937_64 rng(7);
  auto new_id = [&] { return tokenizer::RandomToolCallId(rng); };
  const std::string request = R"({"messages": [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "abcDEF123", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "xyz987654", "function": {"name": "get_time", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "abcDEF123", "content": "sunny"},
      {"role": "tool", "tool_call_id": "xyz987654", "content": "noon"}]})";
  struct Case {
    const tokenizer::LoadedTokenizer* loaded;
    bool keeps_ids;
  };
  const Case cases[] = {{&SharedTokenizer(shared, kSpmV7), true},
                        {&TekkenWithToolTokens(shared, "v7"), true},
                        {&TekkenWithToolTokens(shared, "v11"), true},
                        {&TekkenWithToolTokens(shared, "v13"), false}};
  for (const auto& test_case : cases) {
    const auto& loaded = *test_case.loaded;
    SCOPED_TRACE(loaded.path + " " + tokenizer::InstructVersionName(loaded.version.version));
    auto tokenized = Render(loaded, request);
    // The assistant turn sits between the first [/INST] and the following EOS.
    const int32_t end_inst = *loaded.tokenizer->FindSpecial("[/INST]");
    auto begin = std::find(tokenized.ids.begin(), tokenized.ids.end(), end_inst) + 1;
    auto end = std::find(begin, tokenized.ids.end(), loaded.tokenizer->eos_id());
    std::vector<int32_t> turn(begin, end + 1);  // EOS included: the parser stops there
    auto parsed =
        tokenizer::ParseAssistantOutput(*loaded.tokenizer, loaded.version.version, turn, new_id);
    EXPECT_FALSE(parsed.tool_call_error) << parsed.unparsed_tool_text;
    EXPECT_EQ(parsed.content, "Let me check.");
    ASSERT_EQ(parsed.tool_calls.size(), 2u);
    EXPECT_EQ(parsed.tool_calls[0].name, "get_weather");
    EXPECT_EQ(parsed.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
    EXPECT_EQ(parsed.tool_calls[1].name, "get_time");
    EXPECT_EQ(parsed.tool_calls[1].arguments, "{}");
    for (const auto& call : parsed.tool_calls) {
      ASSERT_EQ(call.id.size(), 9u);
      for (char c : call.id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << call.id;
    }
    if (test_case.keeps_ids) {
      EXPECT_EQ(parsed.tool_calls[0].id, "abcDEF123");
      EXPECT_EQ(parsed.tool_calls[1].id, "xyz987654");
    }
  }
}

TEST(OutputParserTest, MalformedCallsAreReportedNotDropped) {
  BORA_REQUIRE_SHARED(shared);
  const auto& v3 = SharedTokenizer(shared, kTekken);
  std::mt19937_64 rng(1);
  std::vector<int32_t> ids{9};
  auto text =
      v3.tokenizer->Encode("[{\"name\": \"f\", \"arguments\": {\"a\": ");  // cut off mid-JSON
  ids.insert(ids.end(), text.begin(), text.end());
  auto parsed = tokenizer::ParseAssistantOutput(*v3.tokenizer, InstructVersion::kV3, ids,
                                                [&] { return tokenizer::RandomToolCallId(rng); });
  EXPECT_TRUE(parsed.tool_call_error);
  EXPECT_TRUE(parsed.tool_calls.empty());
  EXPECT_EQ(parsed.unparsed_tool_text, "[{\"name\": \"f\", \"arguments\": {\"a\": ");
}

}  // namespace
}  // namespace bora::testing
