// Request bodies as JSON: parsing with a nesting limit, and typed, range-checked field readers
// that answer 422 (wrong type) or 400 (out of range) naming the field.
#pragma once

#include <cstddef>
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
// [min, max] -> 400. Errors name the field `name` (e.g. "response_format.type" for a nested
// object's key), or `key` when `name` is empty.
std::optional<double> NumberField(const Json& body, const std::string& key, double min, double max,
                                  const std::string& name = "");
std::optional<int64_t> IntField(const Json& body, const std::string& key, int64_t min, int64_t max,
                                const std::string& name = "");
std::optional<bool> BoolField(const Json& body, const std::string& key,
                              const std::string& name = "");
std::optional<std::string> StringField(const Json& body, const std::string& key,
                                       const std::string& name = "");
// A string or a list of strings (`stop`, `input`).
std::optional<std::vector<std::string>> StringListField(const Json& body, const std::string& key,
                                                        const std::string& name = "");

// Bytes of all the strings in `value` (keys included): at most what a request asks to tokenize.
size_t TextBytes(const Json& value);

// For a request carrying kLargeRequestText bytes of text or more: hands the heap memory that is
// free in every malloc arena back to the OS when constructed (what earlier large requests left,
// their parsed bodies included) and again when destroyed (this request's tokenizer scratch,
// about 40 bytes per prompt byte). Without it each worker thread's arena keeps the high-water
// mark of the largest request it served, and RSS climbs by ~10 MB for every worker that meets
// a 200 KB prompt (found by tests/server/malformed_requests_test.cc).
constexpr size_t kLargeRequestText = size_t{64} << 10;
class ReleaseMemoryAroundLargeRequest {
 public:
  explicit ReleaseMemoryAroundLargeRequest(const Json& body);
  ~ReleaseMemoryAroundLargeRequest();
  ReleaseMemoryAroundLargeRequest(const ReleaseMemoryAroundLargeRequest&) = delete;
  ReleaseMemoryAroundLargeRequest& operator=(const ReleaseMemoryAroundLargeRequest&) = delete;

 private:
  bool large_;
};

}  // namespace bora::server
