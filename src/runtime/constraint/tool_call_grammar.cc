// Tool-call grammars: the JSON-list form (v2..v7) and the [ARGS] forms (v11, v13+).
#include "runtime/constraint/tool_call_grammar.h"

#include <set>
#include <vector>

#include "base/error.h"

namespace bora::runtime::constraint {
namespace {

using tokenizer::InstructVersion;

int32_t RequireSpecial(const tokenizer::Tokenizer& tokenizer, const char* name) {
  const std::optional<int32_t> id = tokenizer.FindSpecial(name);
  if (!id) {
    throw InvalidArgument(std::string("tool-call grammar: the tokenizer has no ") + name +
                          " special token");
  }
  return *id;
}

}  // namespace

std::shared_ptr<const Grammar> CompileToolCallGrammar(const tokenizer::Tokenizer& tokenizer,
                                                      InstructVersion version,
                                                      std::span<const ToolSpec> tools,
                                                      const ToolCallOptions& options) {
  if (version == InstructVersion::kV1) {
    throw InvalidArgument("tool-call grammar: instruct version v1 has no tool calls");
  }
  if (tools.empty()) throw InvalidArgument("tool-call grammar: no tools given");
  std::set<std::string> names;
  for (const ToolSpec& tool : tools) {
    if (tool.name.empty()) throw InvalidArgument("tool-call grammar: a tool has an empty name");
    if (!names.insert(tool.name).second) {
      throw InvalidArgument("tool-call grammar: tool '" + tool.name + "' is given twice");
    }
  }
  if (options.named_tool && !names.count(*options.named_tool)) {
    throw InvalidArgument("tool-call grammar: tool_choice names '" + *options.named_tool +
                          "', which is not among the tools");
  }
  const int32_t tool_calls = RequireSpecial(tokenizer, "[TOOL_CALLS]");
  const bool args_form = version >= InstructVersion::kV11;
  const int32_t args = args_form ? RequireSpecial(tokenizer, "[ARGS]") : -1;
  const int32_t call_id =
      version == InstructVersion::kV11 ? RequireSpecial(tokenizer, "[CALL_ID]") : -1;

  GrammarBuilder builder;
  JsonOptions json_options;
  json_options.spaced = true;
  JsonGrammarWriter writer(builder, json_options);
  // One rule per call form: the chosen tool's name, then its arguments.
  const int32_t call = builder.AddRule("tool_call");
  const int32_t s = builder.Start(call), f = builder.Final(call);
  for (const ToolSpec& tool : tools) {
    if (options.named_tool && tool.name != *options.named_tool) continue;
    int32_t arguments;
    try {
      JsonSchemaCompiler compiler(writer, tool.parameters, "tool " + tool.name + " ");
      arguments = compiler.RootRule();
    } catch (const InvalidArgument& error) {
      throw InvalidArgument("tool '" + tool.name + "' parameters: " + error.what());
    }
    const int32_t named = builder.NewState(call);
    if (args_form) {
      const int32_t after_tool_calls = builder.NewState(call);
      builder.Special(s, after_tool_calls, tool_calls);
      builder.Literal(after_tool_calls, named, tool.name);
      int32_t before_args = named;
      if (call_id >= 0) {
        const int32_t id_start = builder.NewState(call);
        builder.Special(named, id_start, call_id);
        before_args = builder.NewState(call);
        int32_t current = id_start;
        for (int i = 0; i < 9; ++i) {
          const int32_t next = i == 8 ? before_args : builder.NewState(call);
          builder.Bytes(current, next, '0', '9');
          builder.Bytes(current, next, 'A', 'Z');
          builder.Bytes(current, next, 'a', 'z');
          current = next;
        }
      }
      const int32_t args_start = builder.NewState(call);
      builder.Special(before_args, args_start, args);
      builder.CallRule(args_start, f, arguments);
    } else {
      const int32_t args_start = builder.NewState(call), args_end = builder.NewState(call);
      writer.Literal(s, named, "{\"name\": " + writer.Serialize(SchemaJson(tool.name)));
      writer.Literal(named, args_start, ", \"arguments\": ");
      builder.CallRule(args_start, args_end, arguments);
      builder.Byte(args_end, f, '}');
    }
  }
  // The whole output: v11+ a run of calls; before v11 [TOOL_CALLS] and a JSON list of calls.
  const int32_t root = builder.AddRule("tool_calls");
  const int32_t rs = builder.Start(root), rf = builder.Final(root);
  int32_t first = rs;
  if (!args_form) {
    const int32_t after = builder.NewState(root);
    first = builder.NewState(root);
    builder.Special(rs, after, tool_calls);
    builder.Byte(after, first, '[');
  }
  const int32_t done = builder.NewState(root);
  builder.CallRule(first, done, call);
  if (options.parallel_calls) {
    const int32_t next = builder.NewState(root);
    writer.Literal(done, next, args_form ? "" : ", ");
    builder.CallRule(next, done, call);
  }
  if (args_form) {
    builder.Epsilon(done, rf);
  } else {
    builder.Byte(done, rf, ']');
  }
  return builder.Build(root);
}

}  // namespace bora::runtime::constraint
