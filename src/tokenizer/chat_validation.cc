// mistral-common request validation: base rules (v1/v2), tool-call ids (v3), content plus tool
// calls allowed (v7/v11), id-matched tool results (v13/v15).
#include "tokenizer/chat_validation.h"

#include <set>

#include "base/error.h"

namespace bora::tokenizer {
namespace {

[[noreturn]] void Reject(const std::string& problem) {
  throw InvalidArgument("invalid request: " + problem);
}

// Python's re.match("^...$") also accepts one trailing newline before the end.
std::string_view WithoutFinalNewline(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return text;
}

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// ^[a-zA-Z0-9_-]{1,64}$
bool IsValidFunctionName(std::string_view name) {
  name = WithoutFinalNewline(name);
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// ^[a-zA-Z0-9]{9}$
bool IsValidToolCallId(std::string_view id) {
  id = WithoutFinalNewline(id);
  if (id.size() != 9) return false;
  for (char c : id) {
    if (!IsAsciiAlnum(c)) return false;
  }
  return true;
}

std::string NameError(const std::string& name) {
  return "Function name was " + name +
         " but must be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of "
         "64.";
}

bool RequiresCallIds(InstructVersion version) { return version >= InstructVersion::kV3; }
bool AllowsContentAndCalls(InstructVersion version) { return version >= InstructVersion::kV7; }
bool MatchesResultsById(InstructVersion version) { return version >= InstructVersion::kV13; }

const char* kTypeNames[] = {"array", "boolean", "integer", "null", "number", "object", "string"};

bool IsTypeName(const OrderedJson& value) {
  if (!value.is_string()) return false;
  for (const char* name : kTypeNames) {
    if (value == name) return true;
  }
  return false;
}

bool CheckSchema(const OrderedJson& schema, const std::string& path, std::string* problem) {
  auto fail = [&](const std::string& what) {
    if (problem) *problem = (path.empty() ? std::string("schema") : path) + ": " + what;
    return false;
  };
  if (schema.is_boolean()) return true;  // Draft 7 allows true/false schemas
  if (!schema.is_object()) return fail(schema.dump() + " is not of type 'object', 'boolean'");
  for (const auto& [key, value] : schema.items()) {
    const std::string child = path.empty() ? key : path + "." + key;
    if (key == "type") {
      if (value.is_array()) {
        std::set<std::string> seen;
        for (const auto& item : value) {
          if (!IsTypeName(item))
            return fail(item.dump() + " is not valid under any of the given schemas");
          if (!seen.insert(item.get<std::string>()).second)
            return fail(value.dump() + " has non-unique elements");
        }
      } else if (!IsTypeName(value)) {
        return fail(value.dump() + " is not valid under any of the given schemas");
      }
    } else if (key == "properties" || key == "patternProperties" || key == "definitions" ||
               key == "$defs") {
      if (!value.is_object()) return fail(value.dump() + " is not of type 'object'");
      for (const auto& [name, sub] : value.items()) {
        if (!CheckSchema(sub, child + "." + name, problem)) return false;
      }
    } else if (key == "items") {
      if (value.is_array()) {
        for (const auto& sub : value) {
          if (!CheckSchema(sub, child, problem)) return false;
        }
      } else if (!CheckSchema(value, child, problem)) {
        return false;
      }
    } else if (key == "additionalProperties" || key == "additionalItems" || key == "not" ||
               key == "contains" || key == "propertyNames" || key == "if" || key == "then" ||
               key == "else") {
      if (!CheckSchema(value, child, problem)) return false;
    } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      if (!value.is_array() || value.empty())
        return fail(value.dump() + " is not a non-empty array");
      for (const auto& sub : value) {
        if (!CheckSchema(sub, child, problem)) return false;
      }
    } else if (key == "required") {
      if (!value.is_array()) return fail(value.dump() + " is not of type 'array'");
      std::set<std::string> seen;
      for (const auto& item : value) {
        if (!item.is_string()) return fail(item.dump() + " is not of type 'string'");
        if (!seen.insert(item.get<std::string>()).second)
          return fail(value.dump() + " has non-unique elements");
      }
    } else if (key == "enum") {
      if (!value.is_array()) return fail(value.dump() + " is not of type 'array'");
    } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
               key == "exclusiveMaximum") {
      if (!value.is_number()) return fail(value.dump() + " is not of type 'number'");
    } else if (key == "multipleOf") {
      if (!value.is_number() || value.get<double>() <= 0)
        return fail(value.dump() + " is not a positive number");
    } else if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems" ||
               key == "minProperties" || key == "maxProperties") {
      bool integral = value.is_number_integer() ||
                      (value.is_number_float() &&
                       value.get<double>() == static_cast<int64_t>(value.get<double>()));
      if (!integral || value.get<double>() < 0)
        return fail(value.dump() + " is not a non-negative integer");
    } else if (key == "uniqueItems") {
      if (!value.is_boolean()) return fail(value.dump() + " is not of type 'boolean'");
    } else if (key == "pattern" || key == "format" || key == "title" || key == "description" ||
               key == "$ref" || key == "$id" || key == "$schema") {
      if (!value.is_string()) return fail(value.dump() + " is not of type 'string'");
    }
  }
  return true;
}

void ValidateToolCall(const ToolCall& call, InstructVersion version, ValidationMode mode,
                      bool is_last_message) {
  if (RequiresCallIds(version)) {
    if (call.id != "null" && !IsValidToolCallId(call.id)) {
      Reject("Tool call id was " + call.id + " but must be a-z, A-Z, 0-9, with a length of 9.");
    }
    if (mode == ValidationMode::kFinetuning && !is_last_message && call.id == "null") {
      Reject(
          "Tool call id of assistant message that is not last has to be defined in finetuning "
          "mode.");
    }
    if (mode == ValidationMode::kServing && call.id == "null") {
      Reject("Tool call id has to be defined in serving mode.");
    }
  }
  if (!IsValidFunctionName(call.name)) Reject(NameError(call.name));
}

void ValidateLastMessage(const Message& message, bool continue_final_message, ValidationMode mode) {
  if (mode == ValidationMode::kFinetuning) {
    if (message.role != Role::kAssistant) {
      Reject("Expected last role Assistant for finetuning but got " + RoleName(message.role));
    }
    if (continue_final_message) Reject("Cannot continue final message in finetuning mode");
    return;
  }
  bool bad_assistant =
      message.role == Role::kAssistant && !message.prefix && !continue_final_message;
  bool bad_role = message.role != Role::kUser && message.role != Role::kTool;
  if (bad_assistant && bad_role) {
    Reject(
        "Expected last role User or Tool (or Assistant with prefix or continue_final_message set "
        "to "
        "True) for serving but got " +
        RoleName(message.role));
  }
  if (continue_final_message && (message.role != Role::kAssistant || message.prefix)) {
    Reject(
        "Expected last role Assistant with prefix False for serving with continue_final_message "
        "set to True but got " +
        RoleName(message.role));
  }
}

void ValidateOrder(const std::vector<Message>& messages) {
  for (size_t i = 1; i < messages.size(); ++i) {
    Role previous = messages[i - 1].role;
    Role current = messages[i].role;
    bool allowed = true;
    switch (previous) {
      case Role::kSystem:
      case Role::kUser:
        allowed = current != Role::kTool;
        break;
      case Role::kAssistant:
      case Role::kTool:
        allowed = current != Role::kSystem;
        break;
    }
    if (!allowed) {
      Reject("Unexpected role '" + RoleName(current) + "' after role '" + RoleName(previous) + "'");
    }
  }
}

// Counts calls against results (v1..v11): every assistant turn must have had all its calls
// answered before the next assistant turn; at the end only serving mode insists.
void ValidateCallCounts(const std::vector<Message>& messages, ValidationMode mode) {
  int64_t expected = 0;
  for (size_t i = 1; i < messages.size(); ++i) {
    const Message& message = messages[i];
    if (message.role == Role::kTool) {
      --expected;
    } else if (message.role == Role::kAssistant) {
      if (expected != 0) Reject("Not the same number of function calls and responses");
      if (message.tool_calls) expected = static_cast<int64_t>(message.tool_calls->size());
    }
  }
  if (expected != 0 && mode == ValidationMode::kServing) {
    Reject("Not the same number of function calls and responses");
  }
  if (expected < 0 && mode == ValidationMode::kFinetuning)
    Reject("More tool responses than tool calls");
}

// v13+: results must answer distinct calls of the latest assistant turn, by id.
void ValidateCallIds(const std::vector<Message>& messages, ValidationMode mode) {
  std::set<std::string> expected;
  std::set<std::string> observed;
  for (size_t i = 1; i < messages.size(); ++i) {
    const Message& message = messages[i];
    if (message.role == Role::kTool) {
      std::string id = message.tool_call_id.value_or("None");
      if (observed.count(id)) Reject("Duplicate tool call id " + id + " in tool results");
      if (!expected.count(id)) Reject("Unexpected tool call id " + id + " in tool results");
      observed.insert(id);
    } else if (message.role == Role::kAssistant) {
      if (expected.size() != observed.size())
        Reject("Not the same number of function calls and responses");
      expected.clear();
      observed.clear();
      if (message.tool_calls) {
        for (const auto& call : *message.tool_calls) {
          if (!expected.insert(call.id).second) {
            Reject("Duplicate tool call id " + call.id + " in assistant message");
          }
        }
      }
    }
  }
  if (expected.size() != observed.size() && mode == ValidationMode::kServing) {
    Reject("Not the same number of function calls and responses");
  }
  if (expected.size() < observed.size() && mode == ValidationMode::kFinetuning) {
    Reject("More tool responses than tool calls");
  }
}

void ValidateMessageContent(const std::vector<Message>& messages, InstructVersion version,
                            ValidationMode mode) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& message = messages[i];
    const bool is_last = i + 1 == messages.size();
    switch (message.role) {
      case Role::kUser:
        if (message.content.has_thinking() && version < InstructVersion::kV13) {
          Reject("thinking chunks need instruct version v13 or later");
        }
        if (message.content.has_images() && version < InstructVersion::kV3) {
          Reject("image chunks need instruct version v3 or later");
        }
        break;
      case Role::kSystem:
        if (!message.content.present) Reject("System prompt must have content");
        if (message.content.has_images()) Reject("image chunks are only allowed in user messages");
        if (message.content.has_thinking() && version < InstructVersion::kV13) {
          Reject("thinking chunks need instruct version v13 or later");
        }
        break;
      case Role::kTool:
        if (message.content.has_images()) Reject("image chunks are only allowed in user messages");
        if (message.name && !IsValidFunctionName(*message.name)) Reject(NameError(*message.name));
        if (RequiresCallIds(version)) {
          if (!message.tool_call_id) Reject("Tool call id has to be defined.");
          if (!IsValidToolCallId(*message.tool_call_id)) {
            Reject("Tool call id was " + *message.tool_call_id +
                   " but must be a-z, A-Z, 0-9, with a length of 9.");
          }
        }
        break;
      case Role::kAssistant: {
        if (message.content.has_images()) Reject("image chunks are only allowed in user messages");
        bool has_calls = message.tool_calls && !message.tool_calls->empty();
        if (!AllowsContentAndCalls(version) && message.content.truthy() == has_calls) {
          Reject("Assistant message must have either content or tool_calls, but not both.");
        }
        if (message.content.has_thinking() && version < InstructVersion::kV13) {
          Reject("thinking chunks need instruct version v13 or later");
        }
        if (message.tool_calls) {
          for (const auto& call : *message.tool_calls)
            ValidateToolCall(call, version, mode, is_last);
        }
        if (message.prefix && !is_last)
          Reject("Assistant message with prefix True must be last message");
        break;
      }
    }
  }
}

}  // namespace

bool IsValidToolSchema(const OrderedJson& schema, std::string* problem) {
  return CheckSchema(schema, "", problem);
}

void ValidateChatRequest(const ChatRequest& request, InstructVersion version, ValidationMode mode) {
  const auto& messages = request.messages;
  if (messages.empty()) Reject("Conversation must have at least one message");
  if (messages.size() == 1 && messages[0].role != Role::kUser &&
      messages[0].role != Role::kSystem) {
    Reject("Conversation must start with a user message or system message");
  }
  if (mode == ValidationMode::kFinetuning || messages.size() > 1) {
    ValidateLastMessage(messages.back(), request.continue_final_message, mode);
    if (mode == ValidationMode::kFinetuning && RequiresCallIds(version) &&
        messages.back().tool_calls) {
      for (const auto& call : *messages.back().tool_calls)
        ValidateToolCall(call, version, mode, true);
    }
  }
  ValidateOrder(messages);
  if (MatchesResultsById(version)) {
    ValidateCallIds(messages, mode);
  } else {
    ValidateCallCounts(messages, mode);
  }
  ValidateMessageContent(messages, version, mode);
  if (request.tools) {
    for (const auto& tool : *request.tools) {
      std::string problem;
      if (!IsValidToolSchema(tool.parameters, &problem)) Reject("Invalid tool schema: " + problem);
      if (!IsValidFunctionName(tool.name)) Reject(NameError(tool.name));
    }
  }
}

}  // namespace bora::tokenizer
