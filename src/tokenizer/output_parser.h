// Recovers assistant text and structured tool calls from generated token ids, per version.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tokenizer/chat_request.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

struct ParsedAssistant {
  std::string content;               // text before the first [TOOL_CALLS], specials dropped
  std::vector<ToolCall> tool_calls;  // ids are 9 characters [A-Za-z0-9]
  // The text after [TOOL_CALLS] was not a well-formed call list; it is kept verbatim in
  // `unparsed_tool_text` and `tool_calls` holds the calls that did parse.
  bool tool_call_error = false;
  std::string unparsed_tool_text;
};

// A fresh 9-character [A-Za-z0-9] tool-call id (the Mistral API's format).
std::string RandomToolCallId(std::mt19937_64& rng);

// Splits generated `ids` (EOS excluded or included; it is ignored) into content and calls:
// ≤ v7 `[TOOL_CALLS]` + JSON list of {name, arguments[, id]}; v11 `[TOOL_CALLS]name[CALL_ID]id
// [ARGS]json` per call; v13+ `[TOOL_CALLS]name[ARGS]json` per call. Calls without a valid id
// get one from `new_id`. Arguments come back as JSON text.
ParsedAssistant ParseAssistantOutput(const Tokenizer& tokenizer, InstructVersion version,
                                     std::span<const int32_t> ids,
                                     const std::function<std::string()>& new_id);

}  // namespace bora::tokenizer
