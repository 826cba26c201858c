// libFuzzer target: a Content-Type line and a body (split at the first '\n') into
// MultipartBoundary and ParseMultipartFormData; only bora::Error may escape, and every part must
// lie inside the body and end before the first delimiter line that follows it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "server/http/multipart.h"

namespace {

using bora::server::http::FindPart;
using bora::server::http::FormPart;
using bora::server::http::MultipartBoundary;
using bora::server::http::ParseMultipartFormData;

constexpr size_t kMaxParts = 8;  // small, so the fuzzer reaches the limit

// Whether `data` holds a delimiter line of `boundary`: the parser must have ended the part there.
bool HoldsDelimiterLine(std::string_view data, const std::string& boundary) {
  const std::string needle = "\n--" + boundary;
  for (size_t at = data.find(needle); at != std::string_view::npos;
       at = data.find(needle, at + 1)) {
    std::string_view after = data.substr(at + needle.size());
    if (after.substr(0, 2) == "--") return true;
    while (!after.empty() && (after.front() == ' ' || after.front() == '\t')) {
      after.remove_prefix(1);
    }
    if (after.substr(0, 1) == "\n" || after.substr(0, 2) == "\r\n") return true;
  }
  return false;
}

void Check(std::string_view body, const std::string& boundary) {
  const std::vector<FormPart> parts = ParseMultipartFormData(body, boundary, kMaxParts);
  if (parts.size() > kMaxParts) __builtin_trap();
  for (const FormPart& part : parts) {
    if (part.data.data() < body.data() ||
        part.data.data() + part.data.size() > body.data() + body.size()) {
      __builtin_trap();
    }
    if (part.content_type.empty()) __builtin_trap();
    if (HoldsDelimiterLine(part.data, boundary)) __builtin_trap();
    const FormPart* found = FindPart(parts, part.name);
    if (found == nullptr || found > &part || found->name != part.name) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t newline = bytes.find('\n');
  const std::string_view header = bytes.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : bytes.substr(newline + 1);
  std::string boundary;
  try {
    boundary = MultipartBoundary(header);
  } catch (const bora::Error&) {
    return 0;
  }
  if (boundary.empty() || boundary.size() > 70) __builtin_trap();
  try {
    Check(body, boundary);
  } catch (const bora::Error&) {
  }
  return 0;
}
