// mistral-finetune's record rules (tokenize.py's build_instruct_sample / get_pretrain_sample)
// with mistral-common's v3 finetuning validation, reported per field.
#include "train/data/training_record.h"

#include <cmath>

#include "tokenizer/chat_validation.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/utf8.h"

namespace bora::train {
namespace {

using tokenizer::OrderedJson;
using tokenizer::Role;

std::string FormatRecordError(const std::string& file, int64_t line, const std::string& field,
                              const std::string& problem) {
  std::string text = file + ":" + std::to_string(line) + ": ";
  if (!field.empty()) text += field + ": ";
  return text + problem;
}

std::string TypeName(const OrderedJson& value) {
  if (value.is_null()) return "null";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_array()) return "a list";
  return "an object";
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// mistral-common: ^[a-zA-Z0-9_-]{1,64}$
bool IsValidFunctionName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// mistral-common from v3: ^[a-zA-Z0-9]{9}$
bool IsValidToolCallId(std::string_view id) {
  if (id.size() != 9) return false;
  for (char c : id) {
    if (!IsAsciiAlnum(c)) return false;
  }
  return true;
}

// A short, printable quote of a user value for messages (valid UTF-8, at most ~40 bytes).
std::string Quote(std::string_view text) {
  std::string shown(text.substr(0, 40));
  if (text.size() > 40) shown += "...";
  // Built with append: GCC 12 flags "literal" + std::string&& with a false -Wrestrict.
  return std::string("'").append(tokenizer::ReplaceInvalidUtf8(shown)).append("'");
}

// Thrown by the parser callback at the first container nested deeper than allowed.
struct TooDeep {};

// nlohmann parser callback that stops at the first container deeper than the record limit (the
// encoder and the schema check recurse over the values).
bool LimitDepth(int depth, OrderedJson::parse_event_t event, OrderedJson&) {
  if ((event == OrderedJson::parse_event_t::object_start ||
       event == OrderedJson::parse_event_t::array_start) &&
      depth >= kMaxRecordJsonDepth) {
    throw TooDeep{};
  }
  return true;
}

// Whether `text` is JSON nested deeper than the limit. Tool-call arguments and tool results are
// strings that the encoder parses and re-serialises, so they get the same limit as the line.
bool IsTooDeepJson(std::string_view text) {
  try {
    const OrderedJson parsed = OrderedJson::parse(text, LimitDepth, /*allow_exceptions=*/false);
    (void)parsed;
  } catch (const TooDeep&) {
    return true;
  }
  return false;
}

class RecordParser {
 public:
  explicit RecordParser(const RecordLocation& where) : where_(where) {}

  TrainingRecord Parse(const OrderedJson& value) {
    if (!value.is_object()) Fail("", "expected a JSON object, got " + TypeName(value));
    const bool has_messages = value.contains("messages");
    const bool has_interactions = value.contains("interactions");
    if (has_messages && has_interactions) {
      Fail("interactions", "a record has 'messages' or 'interactions', not both");
    }
    if (has_messages || has_interactions) {
      return ParseInstruct(value, has_messages ? "messages" : "interactions");
    }
    if (value.contains("text") || value.contains("content")) return ParsePretrain(value);
    Fail("",
         "expected 'messages' (or 'interactions') for instruct data or 'text' (or 'content') for "
         "pretraining data");
  }

 private:
  [[noreturn]] void Fail(const std::string& field, const std::string& problem) const {
    throw RecordError(where_.file, where_.line, field, problem);
  }

  const std::string& RequireString(const OrderedJson& value, const std::string& field) const {
    if (!value.is_string()) Fail(field, "expected a string, got " + TypeName(value));
    return value.get_ref<const std::string&>();
  }

  TrainingRecord ParsePretrain(const OrderedJson& value) const {
    if (value.contains("text") && value.contains("content")) {
      Fail("content", "a pretraining record has 'text' or 'content', not both");
    }
    const char* key = value.contains("text") ? "text" : "content";
    TrainingRecord record;
    record.kind = RecordKind::kPretrain;
    record.text = RequireString(value.at(key), key);
    return record;
  }

  TrainingRecord ParseInstruct(const OrderedJson& value, const std::string& list_key) {
    TrainingRecord record;
    record.kind = RecordKind::kInstruct;
    if (auto it = value.find("only_last"); it != value.end() && !it->is_null()) {
      if (!it->is_boolean()) Fail("only_last", "expected true or false, got " + TypeName(*it));
      record.only_last = it->get<bool>();
    }
    if (auto it = value.find("system_prompt"); it != value.end() && !it->is_null()) {
      record.system_prompt = RequireString(*it, "system_prompt");
    }
    ParseTools(value, record);

    const OrderedJson& list = value.at(list_key);
    if (!list.is_array()) Fail(list_key, "expected a list of messages, got " + TypeName(list));
    if (list.empty()) Fail(list_key, "expected at least one message");
    std::vector<size_t> positions;  // index in the file's list of each kept message
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string field = list_key + "[" + std::to_string(i) + "]";
      std::optional<TrainingMessage> message = ParseMessage(list[i], field, record);
      if (!message) continue;  // the system message became the system prompt
      record.messages.push_back(std::move(*message));
      positions.push_back(i);
    }
    if (record.messages.empty()) {
      Fail(list_key,
           "expected a conversation (user and assistant messages), not only a system "
           "message");
    }
    const size_t last = record.messages.size() - 1;
    const auto field_of = [&](size_t kept) {
      return list_key + "[" + std::to_string(positions[kept]) + "]";
    };
    if (record.messages.size() == 1 && record.messages[0].message.role != Role::kUser) {
      Fail(field_of(0) + ".role", "a conversation must start with a user message");
    }
    if (record.messages[last].message.role != Role::kAssistant) {
      Fail(field_of(last) + ".role",
           "the last message must be an assistant message (the one to train on), got '" +
               tokenizer::RoleName(record.messages[last].message.role) + "'");
    }
    CheckToolTraffic(record, field_of);
    CheckUnsetToolCallIds(record, field_of);
    CrossCheck(record, list_key);
    return record;
  }

  void ParseTools(const OrderedJson& value, TrainingRecord& record) const {
    const bool has_tools = value.contains("tools");
    const bool has_available = value.contains("available_tools");
    if (has_tools && has_available) {
      Fail("available_tools", "a record has 'tools' or 'available_tools', not both");
    }
    if (!has_tools && !has_available) return;
    const std::string key = has_tools ? "tools" : "available_tools";
    const OrderedJson& tools = value.at(key);
    if (tools.is_null()) return;
    if (!tools.is_array()) Fail(key, "expected a list of tools, got " + TypeName(tools));
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string field = key + "[" + std::to_string(i) + "]";
      const OrderedJson& tool = tools[i];
      if (!tool.is_object()) Fail(field, "expected a tool object, got " + TypeName(tool));
      if (auto type = tool.find("type"); type != tool.end() && !type->is_null()) {
        if (RequireString(*type, field + ".type") != "function") {
          Fail(field + ".type", "expected 'function', got " + Quote(type->get<std::string>()));
        }
      }
      auto function = tool.find("function");
      if (function == tool.end()) Fail(field, "missing 'function'");
      if (!function->is_object()) {
        Fail(field + ".function", "expected an object, got " + TypeName(*function));
      }
      tokenizer::ToolDefinition definition;
      for (const char* key_name : {"name", "description", "parameters"}) {
        if (!function->contains(key_name)) {
          Fail(field + ".function", std::string("missing '") + key_name + "'");
        }
      }
      definition.name = RequireString(function->at("name"), field + ".function.name");
      if (!IsValidFunctionName(definition.name)) {
        Fail(field + ".function.name",
             "expected 1 to 64 characters among a-z, A-Z, 0-9, '_' and '-', got " +
                 Quote(definition.name));
      }
      definition.description =
          RequireString(function->at("description"), field + ".function.description");
      const OrderedJson& parameters = function->at("parameters");
      if (!parameters.is_object()) {
        Fail(field + ".function.parameters",
             "expected a JSON Schema object (use {} for no parameters), got " +
                 TypeName(parameters));
      }
      std::string problem;
      if (!tokenizer::IsValidToolSchema(parameters, &problem)) {
        Fail(field + ".function.parameters", "not a valid JSON Schema: " + problem);
      }
      definition.parameters = parameters;
      record.tools.push_back(std::move(definition));
    }
  }

  // The text of a message: "content" or its alias "text"; nullopt when absent or null.
  std::optional<std::string> MessageText(const OrderedJson& message,
                                         const std::string& field) const {
    const bool has_content = message.contains("content");
    const bool has_text = message.contains("text");
    if (has_content && has_text)
      Fail(field + ".text", "a message has 'content' or 'text', not both");
    if (!has_content && !has_text) return std::nullopt;
    const char* key = has_content ? "content" : "text";
    const OrderedJson& value = message.at(key);
    if (value.is_null()) return std::nullopt;
    return RequireString(value, field + "." + key);
  }

  std::optional<TrainingMessage> ParseMessage(const OrderedJson& value, const std::string& field,
                                              TrainingRecord& record) const {
    if (!value.is_object()) Fail(field, "expected a message object, got " + TypeName(value));
    auto role_it = value.find("role");
    if (role_it == value.end()) Fail(field, "missing 'role'");
    const std::string& role = RequireString(*role_it, field + ".role");
    std::optional<std::string> text = MessageText(value, field);
    const std::string content_field = field + (value.contains("text") ? ".text" : ".content");
    TrainingMessage message;
    if (role == "system") {
      if (record.system_prompt) {
        Fail(field + ".role",
             "only one system prompt is allowed (one system message or the top-level "
             "'system_prompt')");
      }
      if (!text) Fail(content_field, "a system message needs a string content");
      record.system_prompt = std::move(*text);
      return std::nullopt;
    }
    if (role == "user") {
      if (!text) Fail(content_field, "a user message needs a string content");
      message.message.role = Role::kUser;
      message.message.content = tokenizer::Content::Text(std::move(*text));
    } else if (role == "assistant") {
      message.message.role = Role::kAssistant;
      ParseAssistant(value, field, std::move(text), content_field, message);
    } else if (role == "tool") {
      if (!text) Fail(content_field, "a tool message needs a string content");
      if (IsTooDeepJson(*text)) {
        Fail(content_field,
             "JSON nested deeper than " + std::to_string(kMaxRecordJsonDepth) + " levels");
      }
      message.message.role = Role::kTool;
      message.message.content = tokenizer::Content::Text(std::move(*text));
      auto id = value.find("tool_call_id");
      if (id == value.end() || id->is_null()) Fail(field, "a tool message needs 'tool_call_id'");
      const std::string& call_id = RequireString(*id, field + ".tool_call_id");
      if (!IsValidToolCallId(call_id)) {
        Fail(field + ".tool_call_id",
             "expected 9 characters among a-z, A-Z and 0-9, got " + Quote(call_id));
      }
      message.message.tool_call_id = call_id;
      if (auto name = value.find("name"); name != value.end() && !name->is_null()) {
        const std::string& tool_name = RequireString(*name, field + ".name");
        if (!IsValidFunctionName(tool_name)) {
          Fail(field + ".name",
               "expected 1 to 64 characters among a-z, A-Z, 0-9, '_' and '-', got " +
                   Quote(tool_name));
        }
        message.message.name = tool_name;
      }
    } else {
      Fail(field + ".role", "expected 'system', 'user', 'assistant' or 'tool', got " + Quote(role));
    }
    return message;
  }

  void ParseAssistant(const OrderedJson& value, const std::string& field,
                      std::optional<std::string> text, const std::string& content_field,
                      TrainingMessage& message) const {
    if (auto weight = value.find("weight"); weight != value.end() && !weight->is_null()) {
      const bool is_number = weight->is_number();
      const double number = is_number ? weight->get<double>() : std::nan("");
      if (number != 0.0 && number != 1.0) {
        Fail(field + ".weight",
             "expected 0 or 1, got " + (is_number ? weight->dump() : TypeName(*weight)));
      }
      message.weight = number == 1.0 ? 1 : 0;
    }
    bool has_calls = false;
    if (auto calls = value.find("tool_calls"); calls != value.end() && !calls->is_null()) {
      if (!calls->is_array()) {
        Fail(field + ".tool_calls", "expected a list of tool calls, got " + TypeName(*calls));
      }
      message.message.tool_calls.emplace();
      for (size_t i = 0; i < calls->size(); ++i) {
        message.message.tool_calls->push_back(
            ParseToolCall((*calls)[i], field + ".tool_calls[" + std::to_string(i) + "]"));
      }
      has_calls = !calls->empty();
    }
    const bool has_text = text && !text->empty();
    if (has_calls && has_text) {
      Fail(content_field,
           "an assistant message has content or tool_calls, not both (v3 instruct format)");
    }
    if (!has_calls && !has_text) {
      Fail(content_field, "an assistant message needs a non-empty content or tool_calls");
    }
    message.message.content =
        text ? tokenizer::Content::Text(std::move(*text)) : tokenizer::Content::None();
  }

  tokenizer::ToolCall ParseToolCall(const OrderedJson& value, const std::string& field) const {
    if (!value.is_object()) Fail(field, "expected a tool call object, got " + TypeName(value));
    tokenizer::ToolCall call;
    auto id = value.find("id");
    if (id == value.end()) Fail(field, "missing 'id' (9 random characters among a-z, A-Z, 0-9)");
    call.id = RequireString(*id, field + ".id");
    // "null" is mistral-common's unset id, accepted in the last message only (checked later).
    if (call.id != "null" && !IsValidToolCallId(call.id)) {
      Fail(field + ".id", "expected 9 characters among a-z, A-Z and 0-9, got " + Quote(call.id));
    }
    if (auto type = value.find("type"); type != value.end() && !type->is_null()) {
      if (RequireString(*type, field + ".type") != "function") {
        Fail(field + ".type", "expected 'function', got " + Quote(type->get<std::string>()));
      }
    }
    auto function = value.find("function");
    if (function == value.end()) Fail(field, "missing 'function'");
    if (!function->is_object()) {
      Fail(field + ".function", "expected an object, got " + TypeName(*function));
    }
    for (const char* key : {"name", "arguments"}) {
      if (!function->contains(key)) Fail(field + ".function", std::string("missing '") + key + "'");
    }
    call.name = RequireString(function->at("name"), field + ".function.name");
    if (!IsValidFunctionName(call.name)) {
      Fail(field + ".function.name",
           "expected 1 to 64 characters among a-z, A-Z, 0-9, '_' and '-', got " + Quote(call.name));
    }
    const OrderedJson& arguments = function->at("arguments");
    if (!arguments.is_string()) {
      Fail(
          field + ".function.arguments",
          "expected the arguments as a JSON string (e.g. \"{\\\"city\\\": \\\"Paris\\\"}\"), got " +
              TypeName(arguments));
    }
    call.arguments = arguments.get<std::string>();
    if (IsTooDeepJson(call.arguments)) {
      Fail(field + ".function.arguments",
           "JSON nested deeper than " + std::to_string(kMaxRecordJsonDepth) + " levels");
    }
    if (!tokenizer::PythonJsonLoads(call.arguments)) {
      Fail(field + ".function.arguments", "not valid JSON: " + Quote(call.arguments));
    }
    return call;
  }

  // Tool messages answer the calls of the assistant turn before them, one result per call.
  template <typename FieldOf>
  void CheckToolTraffic(const TrainingRecord& record, const FieldOf& field_of) const {
    int64_t pending = 0;  // calls of the latest assistant turn not yet answered
    size_t caller = 0;
    for (size_t i = 0; i < record.messages.size(); ++i) {
      const tokenizer::Message& message = record.messages[i].message;
      if (message.role == Role::kTool) {
        if (pending <= 0) {
          Fail(field_of(i) + ".role",
               "a tool message must answer a tool call of the assistant message before it");
        }
        --pending;
      } else if (message.role == Role::kAssistant) {
        if (pending > 0) {
          Fail(field_of(i), std::to_string(pending) + " tool call(s) of " + field_of(caller) +
                                " have no tool message before this assistant message");
        }
        pending = message.tool_calls ? static_cast<int64_t>(message.tool_calls->size()) : 0;
        caller = i;
      } else if (pending > 0) {
        Fail(field_of(i), std::to_string(pending) + " tool call(s) of " + field_of(caller) +
                              " have no tool message before this user message");
      }
    }
  }

  // Ids may be "null" (unset) only in the last message, whose ids are never trained on.
  template <typename FieldOf>
  void CheckUnsetToolCallIds(const TrainingRecord& record, const FieldOf& field_of) const {
    for (size_t i = 0; i + 1 < record.messages.size(); ++i) {
      const auto& calls = record.messages[i].message.tool_calls;
      if (!calls) continue;
      for (size_t j = 0; j < calls->size(); ++j) {
        if ((*calls)[j].id == "null") {
          Fail(field_of(i) + ".tool_calls[" + std::to_string(j) + "].id",
               "expected 9 characters among a-z, A-Z and 0-9 ('null' is only allowed in the last "
               "message)");
        }
      }
    }
  }

  // mistral-common's own validator, as mistral-finetune runs it; the checks above already
  // cover its rules, so this only guards against drift.
  void CrossCheck(const TrainingRecord& record, const std::string& list_key) const {
    tokenizer::ChatRequest request;
    for (const auto& message : record.messages) request.messages.push_back(message.message);
    if (record.has_tools()) request.tools = record.tools;
    try {
      tokenizer::ValidateChatRequest(request, tokenizer::InstructVersion::kV3,
                                     tokenizer::ValidationMode::kFinetuning);
    } catch (const Error& error) {
      std::string problem = error.what();
      const std::string prefix = "invalid request: ";
      if (problem.rfind(prefix, 0) == 0) problem.erase(0, prefix.size());
      Fail(list_key, problem);
    }
  }

  const RecordLocation& where_;
};

}  // namespace

RecordError::RecordError(std::string file, int64_t line, std::string field, std::string problem)
    : InvalidArgument(FormatRecordError(file, line, field, problem)),
      file_(std::move(file)),
      line_(line),
      field_(std::move(field)),
      problem_(std::move(problem)) {}

TrainingRecord ParseTrainingRecordValue(const OrderedJson& value, const RecordLocation& where) {
  return RecordParser(where).Parse(value);
}

TrainingRecord ParseTrainingRecord(std::string_view line, const RecordLocation& where) {
  OrderedJson value;
  try {
    value = OrderedJson::parse(line.begin(), line.end(), LimitDepth);
  } catch (const TooDeep&) {
    throw RecordError(where.file, where.line, "",
                      "JSON nested deeper than " + std::to_string(kMaxRecordJsonDepth) + " levels");
  } catch (const OrderedJson::exception& error) {
    // nlohmann's message quotes the bytes it read, which need not be valid UTF-8.
    throw RecordError(where.file, where.line, "",
                      "invalid JSON: " + tokenizer::ReplaceInvalidUtf8(error.what()));
  }
  return ParseTrainingRecordValue(value, where);
}

}  // namespace bora::train
