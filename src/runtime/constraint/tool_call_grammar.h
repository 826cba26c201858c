// Tool-call grammars per instruct version, for tool_choice "any"/"required" or one named tool:
// the model must answer with calls whose arguments follow each tool's parameters schema.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "runtime/constraint/grammar.h"
#include "runtime/constraint/json_schema.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/tokenizer.h"

namespace bora::runtime::constraint {

struct ToolSpec {
  std::string name;
  SchemaJson parameters = SchemaJson::object();  // JSON Schema of the arguments object
};

struct ToolCallOptions {
  std::optional<std::string> named_tool;  // tool_choice {"function": {"name"}}; none: any tool
  bool parallel_calls = true;             // several calls in a row (else exactly one)
};

// The assistant output, as Decode shows it (special ids as terminals):
//   v2, v3, v7:  [TOOL_CALLS] [{"name": "NAME", "arguments": {...}}, ...]
//   v11:         [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}   (ID: 9 of [A-Za-z0-9]), repeated
//   v13, v15:    [TOOL_CALLS]NAME[ARGS]{...}, repeated
// Arguments use Python json.dumps spacing (", " and ": "), as the models were trained.
// Throws InvalidArgument for v1 (no tool calls), a tokenizer without the needed special
// tokens, no tools, duplicate or empty names, an unknown named tool, or a schema the JSON
// Schema compiler refuses (the message names the tool).
std::shared_ptr<const Grammar> CompileToolCallGrammar(const tokenizer::Tokenizer& tokenizer,
                                                      tokenizer::InstructVersion version,
                                                      std::span<const ToolSpec> tools,
                                                      const ToolCallOptions& options = {});

}  // namespace bora::runtime::constraint
