// Request bodies as JSON: parsing with a nesting limit, and typed, range-checked field readers
// that answer 422 (wrong type) or 400 (out of range) naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/python_json.h"

namespace bora::server {

using Json = tokenizer::OrderedJson;

// Deepest nesting of arrays/objects a body may have (reliability rule H3).
constexpr int kMaxJsonDepth = 64;

// Parses a request body: malformed JSON, NaN/Infinity, nesting deeper than kMaxJsonDepth, or a
// top level that is not an object -> ApiError 400 (422 for a non-object). The depth is enforced
// while parsing, before a deep document is built.
Json ParseBody(std::string_view text);

// Field readers: nullopt when the key is absent or null. Wrong JSON type -> 422; a value outside
// [min, max] -> 400.
std::optional<double> NumberField(const Json& body, const std::string& key, double min, double max);
std::optional<int64_t> IntField(const Json& body, const std::string& key, int64_t min, int64_t max);
std::optional<bool> BoolField(const Json& body, const std::string& key);
std::optional<std::string> StringField(const Json& body, const std::string& key);
// A string or a list of strings (`stop`, `input`).
std::optional<std::vector<std::string>> StringListField(const Json& body, const std::string& key);

}  // namespace bora::server
