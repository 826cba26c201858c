// Training record parsing: every validation error names file, line and field; the accepted
// forms (aliases, system message, weights, tools) parse to the expected record.
#include "train/data/training_record.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bora::train {
namespace {

struct BadRecord {
  const char* name;
  std::string line;
  std::string field;    // expected RecordError::field()
  std::string problem;  // a piece of the expected problem text
};

// A user/assistant exchange followed by `extra` messages (JSON text, comma-first).
std::string Conversation(const std::string& assistant, const std::string& extra = "",
                         const std::string& top = "") {
  return R"({"messages": [{"role": "user", "content": "a"}, )" + assistant + extra + "]" + top +
         "}";
}

const char kCall[] =
    R"({"role": "assistant", "tool_calls": [{"id": "abcDEF123", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})";
const char kResult[] = R"(, {"role": "tool", "tool_call_id": "abcDEF123", "content": "1"})";
const char kAnswer[] = R"(, {"role": "assistant", "content": "b"})";

// An assistant turn with one tool call whose call object is `call`.
std::string WithCall(const std::string& call) {
  return Conversation(R"({"role": "assistant", "tool_calls": [)" + call + "]}");
}

std::string WithTool(const std::string& tool) {
  return Conversation(R"({"role": "assistant", "content": "b"})", "",
                      R"(, "tools": [)" + tool + "]");
}

const char kTool[] =
    R"({"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}})";

std::vector<BadRecord> BadRecords() {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  return {
      {"not_an_object", "[1, 2]", "", "expected a JSON object, got a list"},
      {"invalid_json", R"({"messages": [)", "", "invalid JSON"},
      {"invalid_utf8", "{\"text\": \"\xff\"}", "", "invalid JSON"},
      {"too_deep", R"({"text": "a", "x": )" + deep + "}", "", "nested deeper than 64"},
      {"no_known_key", R"({"prompt": "a"})", "", "expected 'messages' (or 'interactions')"},
      {"messages_and_interactions", R"({"messages": [], "interactions": []})", "interactions",
       "not both"},
      {"text_and_content", R"({"text": "a", "content": "b"})", "content", "not both"},
      {"text_not_string", R"({"text": 5})", "text", "expected a string, got a number"},
      {"content_null", R"({"content": null})", "content", "expected a string, got null"},
      {"messages_not_list", R"({"messages": {}})", "messages", "expected a list of messages"},
      {"messages_empty", R"({"messages": []})", "messages", "at least one message"},
      {"message_not_object", R"({"messages": [5]})", "messages[0]", "expected a message object"},
      {"role_missing", R"({"messages": [{"content": "a"}]})", "messages[0]", "missing 'role'"},
      {"role_not_string", R"({"messages": [{"role": 1, "content": "a"}]})", "messages[0].role",
       "expected a string"},
      {"role_unknown", Conversation(R"({"role": "bot", "content": "b"})"), "messages[1].role",
       "expected 'system', 'user', 'assistant' or 'tool', got 'bot'"},
      {"role_unknown_interactions",
       R"({"interactions": [{"role": "user", "content": "a"}, {"role": "bot", "text": "b"}]})",
       "interactions[1].role", "got 'bot'"},
      {"content_and_text", Conversation(R"({"role": "assistant", "content": "b", "text": "c"})"),
       "messages[1].text", "not both"},
      {"user_without_content",
       R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "b"}]})",
       "messages[0].content", "a user message needs a string content"},
      {"user_content_list",
       R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}, {"role": "assistant", "content": "b"}]})",
       "messages[0].content", "expected a string, got a list"},
      {"user_text_alias_null",
       R"({"messages": [{"role": "user", "text": null}, {"role": "assistant", "content": "b"}]})",
       "messages[0].text", "a user message needs a string content"},
      {"two_system_messages",
       R"({"messages": [{"role": "system", "content": "s"}, {"role": "system", "content": "t"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})",
       "messages[1].role", "only one system prompt"},
      {"system_prompt_and_system_message",
       R"({"system_prompt": "s", "messages": [{"role": "system", "content": "t"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})",
       "messages[0].role", "only one system prompt"},
      {"system_without_content",
       R"({"messages": [{"role": "system"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})",
       "messages[0].content", "a system message needs a string content"},
      {"system_prompt_not_string", Conversation(kAnswer + 2, "", R"(, "system_prompt": 5)"),
       "system_prompt", "expected a string, got a number"},
      {"only_last_not_bool", Conversation(kAnswer + 2, "", R"(, "only_last": "yes")"), "only_last",
       "expected true or false, got a string"},
      {"only_system", R"({"messages": [{"role": "system", "content": "s"}]})", "messages",
       "not only a system message"},
      {"single_assistant", R"({"messages": [{"role": "assistant", "content": "b"}]})",
       "messages[0].role", "must start with a user message"},
      {"last_is_user", Conversation(kAnswer + 2, R"(, {"role": "user", "content": "c"})"),
       "messages[2].role", "the last message must be an assistant message"},
      {"last_is_tool", Conversation(kCall, kResult), "messages[2].role",
       "the last message must be an assistant message (the one to train on), got 'tool'"},
      {"weight_half", Conversation(R"({"role": "assistant", "content": "b", "weight": 0.5})"),
       "messages[1].weight", "expected 0 or 1, got 0.5"},
      {"weight_string", Conversation(R"({"role": "assistant", "content": "b", "weight": "1"})"),
       "messages[1].weight", "expected 0 or 1, got a string"},
      {"weight_bool", Conversation(R"({"role": "assistant", "content": "b", "weight": true})"),
       "messages[1].weight", "expected 0 or 1, got a boolean"},
      {"assistant_empty", Conversation(R"({"role": "assistant", "content": ""})"),
       "messages[1].content", "needs a non-empty content or tool_calls"},
      {"assistant_nothing", Conversation(R"({"role": "assistant"})"), "messages[1].content",
       "needs a non-empty content or tool_calls"},
      {"assistant_content_and_calls",
       Conversation(
           R"({"role": "assistant", "content": "b", "tool_calls": [{"id": "abcDEF123", "function": {"name": "f", "arguments": "{}"}}]})"),
       "messages[1].content", "not both"},
      {"tool_calls_not_list", Conversation(R"({"role": "assistant", "tool_calls": {}})"),
       "messages[1].tool_calls", "expected a list of tool calls"},
      {"tool_call_not_object", WithCall("5"), "messages[1].tool_calls[0]",
       "expected a tool call object"},
      {"tool_call_id_missing", WithCall(R"({"function": {"name": "f", "arguments": "{}"}})"),
       "messages[1].tool_calls[0]", "missing 'id'"},
      {"tool_call_id_short",
       WithCall(R"({"id": "abc", "function": {"name": "f", "arguments": "{}"}})"),
       "messages[1].tool_calls[0].id", "expected 9 characters among a-z, A-Z and 0-9, got 'abc'"},
      {"tool_call_id_symbols",
       WithCall(R"({"id": "abcd-fgh1", "function": {"name": "f", "arguments": "{}"}})"),
       "messages[1].tool_calls[0].id", "got 'abcd-fgh1'"},
      {"tool_call_id_not_string",
       WithCall(R"({"id": 123456789, "function": {"name": "f", "arguments": "{}"}})"),
       "messages[1].tool_calls[0].id", "expected a string, got a number"},
      {"tool_call_id_null_before_last",
       Conversation(
           R"({"role": "assistant", "tool_calls": [{"id": "null", "function": {"name": "f", "arguments": "{}"}}]})",
           R"(, {"role": "tool", "tool_call_id": "abcDEF123", "content": "1"})" +
               std::string(kAnswer)),
       "messages[1].tool_calls[0].id", "'null' is only allowed in the last message"},
      {"tool_call_type",
       WithCall(
           R"({"id": "abcDEF123", "type": "web", "function": {"name": "f", "arguments": "{}"}})"),
       "messages[1].tool_calls[0].type", "expected 'function', got 'web'"},
      {"tool_call_function_missing", WithCall(R"({"id": "abcDEF123"})"),
       "messages[1].tool_calls[0]", "missing 'function'"},
      {"tool_call_function_not_object", WithCall(R"({"id": "abcDEF123", "function": "f"})"),
       "messages[1].tool_calls[0].function", "expected an object, got a string"},
      {"tool_call_name_missing",
       WithCall(R"({"id": "abcDEF123", "function": {"arguments": "{}"}})"),
       "messages[1].tool_calls[0].function", "missing 'name'"},
      {"tool_call_arguments_missing", WithCall(R"({"id": "abcDEF123", "function": {"name": "f"}})"),
       "messages[1].tool_calls[0].function", "missing 'arguments'"},
      {"tool_call_name_invalid",
       WithCall(R"({"id": "abcDEF123", "function": {"name": "a b", "arguments": "{}"}})"),
       "messages[1].tool_calls[0].function.name", "got 'a b'"},
      {"tool_call_arguments_object",
       WithCall(R"({"id": "abcDEF123", "function": {"name": "f", "arguments": {}}})"),
       "messages[1].tool_calls[0].function.arguments", "expected the arguments as a JSON string"},
      {"tool_call_arguments_not_json",
       WithCall(R"({"id": "abcDEF123", "function": {"name": "f", "arguments": "{city: 1"}})"),
       "messages[1].tool_calls[0].function.arguments", "not valid JSON: '{city: 1'"},
      {"tool_call_arguments_too_deep",
       WithCall(R"({"id": "abcDEF123", "function": {"name": "f", "arguments": ")" + deep + "\"}}"),
       "messages[1].tool_calls[0].function.arguments", "nested deeper than 64"},
      {"tool_without_call_id",
       Conversation(kCall, R"(, {"role": "tool", "content": "1"})" + std::string(kAnswer)),
       "messages[2]", "a tool message needs 'tool_call_id'"},
      {"tool_call_id_invalid",
       Conversation(kCall, R"(, {"role": "tool", "tool_call_id": "null", "content": "1"})" +
                               std::string(kAnswer)),
       "messages[2].tool_call_id", "got 'null'"},
      {"tool_name_invalid",
       Conversation(
           kCall,
           R"(, {"role": "tool", "tool_call_id": "abcDEF123", "name": "no way", "content": "1"})" +
               std::string(kAnswer)),
       "messages[2].name", "got 'no way'"},
      {"tool_content_missing",
       Conversation(kCall,
                    R"(, {"role": "tool", "tool_call_id": "abcDEF123"})" + std::string(kAnswer)),
       "messages[2].content", "a tool message needs a string content"},
      {"tool_content_too_deep",
       Conversation(kCall, R"(, {"role": "tool", "tool_call_id": "abcDEF123", "content": ")" +
                               deep + "\"}" + std::string(kAnswer)),
       "messages[2].content", "nested deeper than 64"},
      {"tool_after_user",
       R"({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "abcDEF123", "content": "1"}, {"role": "assistant", "content": "b"}]})",
       "messages[1].role", "must answer a tool call"},
      {"more_results_than_calls", Conversation(kCall, std::string(kResult) + kResult + kAnswer),
       "messages[3].role", "must answer a tool call"},
      {"unanswered_call_then_assistant", Conversation(kCall, kAnswer), "messages[2]",
       "1 tool call(s) of messages[1] have no tool message before this assistant message"},
      {"unanswered_call_then_user",
       Conversation(kCall, R"(, {"role": "user", "content": "c"})" + std::string(kAnswer)),
       "messages[2]", "have no tool message before this user message"},
      {"tools_and_available_tools",
       Conversation(kAnswer + 2, "", R"(, "tools": [], "available_tools": [])"), "available_tools",
       "not both"},
      {"tools_not_list", Conversation(kAnswer + 2, "", R"(, "tools": {})"), "tools",
       "expected a list of tools"},
      {"available_tools_not_list", Conversation(kAnswer + 2, "", R"(, "available_tools": 1)"),
       "available_tools", "expected a list of tools"},
      {"tool_not_object", WithTool("1"), "tools[0]", "expected a tool object"},
      {"tool_type",
       WithTool(
           R"({"type": "x", "function": {"name": "f", "description": "d", "parameters": {}}})"),
       "tools[0].type", "expected 'function', got 'x'"},
      {"tool_function_missing", WithTool(R"({"type": "function"})"), "tools[0]",
       "missing 'function'"},
      {"tool_function_not_object", WithTool(R"({"function": []})"), "tools[0].function",
       "expected an object, got a list"},
      {"tool_name_missing", WithTool(R"({"function": {"description": "d", "parameters": {}}})"),
       "tools[0].function", "missing 'name'"},
      {"tool_description_missing", WithTool(R"({"function": {"name": "f", "parameters": {}}})"),
       "tools[0].function", "missing 'description'"},
      {"tool_parameters_missing", WithTool(R"({"function": {"name": "f", "description": "d"}})"),
       "tools[0].function", "missing 'parameters'"},
      {"tool_description_not_string",
       WithTool(R"({"function": {"name": "f", "description": null, "parameters": {}}})"),
       "tools[0].function.description", "expected a string, got null"},
      {"tool_function_name_invalid",
       WithTool(R"({"function": {"name": "", "description": "d", "parameters": {}}})"),
       "tools[0].function.name", "got ''"},
      {"tool_parameters_not_object",
       WithTool(R"({"function": {"name": "f", "description": "d", "parameters": []}})"),
       "tools[0].function.parameters", "expected a JSON Schema object"},
      {"tool_parameters_bad_schema",
       WithTool(
           R"({"function": {"name": "f", "description": "d", "parameters": {"type": "thing"}}})"),
       "tools[0].function.parameters", "not a valid JSON Schema"},
  };
}

class BadRecordTest : public ::testing::TestWithParam<BadRecord> {};

TEST_P(BadRecordTest, ErrorNamesFileLineAndField) {
  const BadRecord& bad = GetParam();
  try {
    (void)ParseTrainingRecord(bad.line, RecordLocation{"data.jsonl", 17});
    FAIL() << "accepted: " << bad.line;
  } catch (const RecordError& error) {
    EXPECT_EQ(error.file(), "data.jsonl");
    EXPECT_EQ(error.line(), 17);
    EXPECT_EQ(error.field(), bad.field) << error.what();
    const std::string prefix =
        bad.field.empty() ? "data.jsonl:17: " : "data.jsonl:17: " + bad.field + ": ";
    EXPECT_EQ(std::string(error.what()).rfind(prefix, 0), 0u) << error.what();
    EXPECT_NE(error.problem().find(bad.problem), std::string::npos) << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(AllErrors, BadRecordTest, ::testing::ValuesIn(BadRecords()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TrainingRecordTest, RecordErrorIsAnInvalidArgument) {
  EXPECT_THROW((void)ParseTrainingRecord("{}", RecordLocation{"f.jsonl", 1}), InvalidArgument);
}

TEST(TrainingRecordTest, PretrainTextOrContent) {
  auto text = ParseTrainingRecord(R"({"text": "hello", "meta": 1})", {"f", 1});
  EXPECT_EQ(text.kind, RecordKind::kPretrain);
  EXPECT_EQ(text.text, "hello");
  auto content = ParseTrainingRecord(R"({"content": "world"})", {"f", 1});
  EXPECT_EQ(content.kind, RecordKind::kPretrain);
  EXPECT_EQ(content.text, "world");
}

TEST(TrainingRecordTest, InstructWithAliasesSystemMessageAndWeights) {
  auto record = ParseTrainingRecord(
      R"({"interactions": [{"role": "system", "text": "S"}, {"role": "user", "text": "a"},
          {"role": "assistant", "content": "b", "weight": 0}, {"role": "user", "content": "c"},
          {"role": "assistant", "text": "d", "weight": 1.0}], "only_last": true})",
      {"f", 1});
  EXPECT_EQ(record.kind, RecordKind::kInstruct);
  ASSERT_EQ(record.messages.size(), 4u);
  EXPECT_EQ(record.system_prompt, "S");
  EXPECT_TRUE(record.only_last);
  EXPECT_EQ(record.messages[0].message.role, tokenizer::Role::kUser);
  EXPECT_EQ(record.messages[0].message.content.text, "a");
  EXPECT_EQ(record.messages[1].weight, 0);
  EXPECT_EQ(record.messages[3].weight, 1);
  EXPECT_EQ(record.messages[3].message.content.text, "d");
  EXPECT_FALSE(record.has_tools());
}

TEST(TrainingRecordTest, TopLevelSystemPrompt) {
  auto record =
      ParseTrainingRecord(Conversation(kAnswer + 2, "", R"(, "system_prompt": "S")"), {"f", 1});
  EXPECT_EQ(record.system_prompt, "S");
  ASSERT_EQ(record.messages.size(), 2u);
}

TEST(TrainingRecordTest, FunctionCallingRecord) {
  auto record =
      ParseTrainingRecord(Conversation(kCall, std::string(kResult) + kAnswer,
                                       R"(, "available_tools": [)" + std::string(kTool) + "]"),
                          {"f", 1});
  ASSERT_EQ(record.tools.size(), 1u);
  EXPECT_EQ(record.tools[0].name, "f");
  EXPECT_EQ(record.tools[0].description, "d");
  ASSERT_EQ(record.messages.size(), 4u);
  const auto& call = record.messages[1].message.tool_calls->at(0);
  EXPECT_EQ(call.id, "abcDEF123");
  EXPECT_EQ(call.name, "f");
  EXPECT_EQ(call.arguments, "{}");
  EXPECT_EQ(record.messages[2].message.tool_call_id, "abcDEF123");
}

TEST(TrainingRecordTest, NullIdAllowedInTheLastMessage) {
  auto record = ParseTrainingRecord(
      WithCall(R"({"id": "null", "function": {"name": "f", "arguments": "{\"x\": 1}"}})"),
      {"f", 1});
  EXPECT_EQ(record.messages.back().message.tool_calls->at(0).id, "null");
}

TEST(TrainingRecordTest, AssistantFirstAndConsecutiveAssistantsAreKept) {
  // mistral-finetune encodes messages as written: no merging, no inserted user message.
  auto record = ParseTrainingRecord(
      R"({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "a"},
          {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}]})",
      {"f", 1});
  ASSERT_EQ(record.messages.size(), 4u);
  EXPECT_EQ(record.messages[0].message.role, tokenizer::Role::kAssistant);
}

TEST(TrainingRecordTest, EmptyToolsListMeansNoTools) {
  auto record = ParseTrainingRecord(Conversation(kAnswer + 2, "", R"(, "tools": [])"), {"f", 1});
  EXPECT_FALSE(record.has_tools());
}

}  // namespace
}  // namespace bora::train
