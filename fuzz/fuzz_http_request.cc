// libFuzzer target: arbitrary bytes into the incremental HTTP/1.1 request parser, fed whole and
// in two pieces split at a data-derived point; both must agree, stay in bounds and never crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_request_parser.h"

namespace {

using bora::server::http::HttpRequestParser;
using bora::server::http::ParserLimits;

// Parses pipelined requests from the pieces in order; one line per finished request or error,
// and a last line for an unfinished one.
std::vector<std::string> Outcomes(const std::vector<std::string_view>& pieces,
                                  const ParserLimits& limits) {
  HttpRequestParser parser(limits);
  std::vector<std::string> out;
  for (std::string_view rest : pieces) {
    while (!rest.empty()) {
      const size_t used = parser.Feed(rest);
      if (used > rest.size()) __builtin_trap();
      rest.remove_prefix(used);
      if (parser.failed()) {
        if (parser.error_status() < 400 || parser.error_status() > 599) __builtin_trap();
        out.push_back("error " + std::to_string(parser.error_status()));
        return out;
      }
      if (parser.complete()) {
        const auto& request = parser.request();
        if (request.body.size() > limits.max_body_bytes) __builtin_trap();
        std::string line = request.method + " " + request.path + " " + request.body + " ";
        line += request.keep_alive ? "k" : "c";
        line += request.expect_continue ? "e" : "-";
        for (const auto& [name, value] : request.headers) line += "|" + name + ":" + value;
        out.push_back(line);
        parser.Reset();
      } else if (used == 0) {
        __builtin_trap();  // needs more, yet took nothing
      }
    }
  }
  out.push_back(parser.started() ? "partial" : "idle");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ParserLimits limits;  // small, so the fuzzer reaches every limit
  limits.max_request_line = 512;
  limits.max_header_bytes = 1024;
  limits.max_header_count = 16;
  limits.max_body_bytes = 2048;
  const size_t split = size == 0 ? 0 : (data[size - 1] * 131u + data[0]) % (size + 1);
  const auto whole = Outcomes({bytes}, limits);
  const auto pieces = Outcomes({bytes.substr(0, split), bytes.substr(split)}, limits);
  if (whole != pieces) __builtin_trap();
  return 0;
}
