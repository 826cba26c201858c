// Parsing of generated assistant turns into content and tool calls (JSON-list and [ARGS] forms).
#include "tokenizer/output_parser.h"

#include <optional>

#include "tokenizer/python_json.h"

namespace bora::tokenizer {
namespace {

bool IsValidId(const std::string& id) {
  if (id.size() != 9) return false;
  for (char c : id) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) return false;
  }
  return true;
}

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// Arguments as JSON text: objects/arrays re-serialised compactly in Python style; a string
// holding JSON is unwrapped (some models emit arguments as a JSON string).
std::optional<std::string> ArgumentsText(const OrderedJson& value) {
  if (value.is_string()) {
    auto inner = PythonJsonLoads(value.get<std::string>());
    if (inner && inner->is_object()) return PythonJsonDumps(*inner);
    return std::nullopt;
  }
  if (value.is_object()) return PythonJsonDumps(value);
  return std::nullopt;
}

// ≤ v7: one JSON list (or a single object) of calls.
bool ParseJsonCalls(const std::string& text, const std::function<std::string()>& new_id,
                    std::vector<ToolCall>& calls) {
  auto parsed = PythonJsonLoads(text);
  if (!parsed) return false;
  OrderedJson list = parsed->is_array() ? *parsed : OrderedJson::array({*parsed});
  for (const auto& entry : list) {
    if (!entry.is_object()) return false;
    auto name = entry.find("name");
    if (name == entry.end() || !name->is_string()) return false;
    ToolCall call;
    call.name = name->get<std::string>();
    auto arguments = entry.find("arguments");
    if (arguments == entry.end()) {
      call.arguments = "{}";
    } else if (auto text_args = ArgumentsText(*arguments)) {
      call.arguments = *text_args;
    } else {
      return false;
    }
    auto id = entry.find("id");
    call.id = id != entry.end() && id->is_string() && IsValidId(id->get<std::string>())
                  ? id->get<std::string>()
                  : new_id();
    calls.push_back(std::move(call));
  }
  return true;
}

}  // namespace

std::string RandomToolCallId(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uniform_int_distribution<int> pick(0, 61);
  std::string id(9, 'a');
  for (char& c : id) c = kAlphabet[pick(rng)];
  return id;
}

ParsedAssistant ParseAssistantOutput(const Tokenizer& tokenizer, InstructVersion version,
                                     std::span<const int32_t> ids,
                                     const std::function<std::string()>& new_id) {
  const int32_t kNone = -1;
  const int32_t tool_calls_id = tokenizer.FindSpecial("[TOOL_CALLS]").value_or(kNone);
  const int32_t args_id = tokenizer.FindSpecial("[ARGS]").value_or(kNone);
  const int32_t call_id_id = tokenizer.FindSpecial("[CALL_ID]").value_or(kNone);
  const int32_t eos = tokenizer.eos_id();

  ParsedAssistant parsed;
  // Segments: [start, end) ranges separated by [TOOL_CALLS]; segment 0 is the content.
  std::vector<std::vector<int32_t>> segments(1);
  for (int32_t id : ids) {
    if (id == eos) break;
    if (id == tool_calls_id) {
      segments.emplace_back();
    } else {
      segments.back().push_back(id);
    }
  }
  parsed.content = tokenizer.Decode(segments[0]);
  auto fail = [&](const std::vector<int32_t>& segment) {
    parsed.tool_call_error = true;
    parsed.unparsed_tool_text += tokenizer.Decode(segment);
  };
  for (size_t s = 1; s < segments.size(); ++s) {
    const auto& segment = segments[s];
    if (version < InstructVersion::kV11 || args_id == kNone) {
      if (!ParseJsonCalls(tokenizer.Decode(segment), new_id, parsed.tool_calls)) fail(segment);
      continue;
    }
    // name [CALL_ID] id [ARGS] json
    std::vector<int32_t> name_ids, call_ids, arg_ids;
    std::vector<int32_t>* target = &name_ids;
    bool saw_args = false;
    for (int32_t id : segment) {
      if (id == call_id_id && !saw_args) {
        target = &call_ids;
      } else if (id == args_id && !saw_args) {
        target = &arg_ids;
        saw_args = true;
      } else {
        target->push_back(id);
      }
    }
    ToolCall call;
    call.name = Trim(tokenizer.Decode(name_ids));
    std::string arguments = Trim(tokenizer.Decode(arg_ids));
    auto json = PythonJsonLoads(arguments);
    std::optional<std::string> normalized = json ? ArgumentsText(*json) : std::nullopt;
    if (!saw_args || call.name.empty() || !normalized) {
      fail(segment);
      continue;
    }
    call.arguments = *normalized;
    std::string id = Trim(tokenizer.Decode(call_ids));
    call.id = IsValidId(id) ? id : new_id();
    parsed.tool_calls.push_back(std::move(call));
  }
  return parsed;
}

}  // namespace bora::tokenizer
