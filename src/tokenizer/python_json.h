// JSON text exactly as Python's json.dumps/json.loads produce and accept it, which is what
// mistral-common feeds its tokenizer for tools, tool calls and tool results.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace bora::tokenizer {

// Insertion-ordered JSON (Python dicts keep key order; nlohmann::json would sort keys).
using OrderedJson = nlohmann::ordered_json;

// json.dumps(value, ensure_ascii=...) with the default separators ", " and ": ": floats in
// Python repr form ("1.0", "1e-05", "1e+16"), strings escaped like Python (\uXXXX for other
// control characters; with ensure_ascii also for every non-ASCII character, as surrogate
// pairs above U+FFFF). Invalid UTF-8 inside strings is replaced by U+FFFD.
std::string PythonJsonDumps(const OrderedJson& value, bool ensure_ascii = false);

// json.loads(text) when `text` is valid JSON (surrounding whitespace allowed), else nullopt.
std::optional<OrderedJson> PythonJsonLoads(std::string_view text);

}  // namespace bora::tokenizer
