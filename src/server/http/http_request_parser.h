// An incremental HTTP/1.1 request parser over bytes (no sockets), with the size limits and the
// request-smuggling checks of reliability rule H2, so it can be fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http/body_spool.h"

namespace bora::server::http {

// One parsed request. Header names keep their case; lookups ignore it.
struct HttpRequest {
  std::string method;
  std::string target;  // as sent
  std::string path;    // percent-decoded, without the query
  std::string query;   // after '?', raw
  int version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                         // de-chunked (empty when the body went to spooled_body)
  std::shared_ptr<BodySpool> spooled_body;  // an upload streamed to disk, or null
  bool keep_alive = true;
  bool expect_continue = false;
  bool chunked = false;
  std::string peer;  // client IP, set by the server
  // Whether the client has closed the connection (set by the server; null: never asked).
  std::function<bool()> peer_closed;
  std::string owner;  // the tenant (API-key digest prefix, "" without keys), set by the server
  std::map<std::string, std::string> path_params;  // set by the router

  // The first value of a header, or nullptr.
  const std::string* FindHeader(std::string_view name) const;
  // The first value of a header, or "" when absent.
  std::string Header(std::string_view name) const;
  // The body wherever it is: `body`, or the spooled file mapped read-only.
  std::string_view BodyView() const;
};

struct ParserLimits {
  size_t max_request_line = 8 * 1024;       // 414 above
  size_t max_header_bytes = 32 * 1024;      // 431 above (header fields, and again for trailers)
  size_t max_header_count = 100;            // 431 above
  size_t max_body_bytes = size_t{8} << 20;  // 413 above
  // File uploads need more than JSON requests: when nonzero, a POST to upload_path_prefix (the
  // path itself or below it, e.g. "/v1/files" and "/v1/files/x") may carry up to
  // max(max_body_bytes, max_upload_body_bytes). An empty prefix matches nothing.
  size_t max_upload_body_bytes = 0;
  std::string upload_path_prefix;
  // When set, upload bodies are written to an unnamed file in this folder as they arrive
  // (BodySpool) instead of memory; a failed write answers 507.
  std::string upload_spool_dir;
};

// The value of a hexadecimal digit, or -1.
int HexValue(char c);

// The key=value pairs of a URL query string, percent-decoded ('+' is a space; a malformed escape
// stays as written); the first of a repeated key wins.
std::map<std::string, std::string> ParseQuery(std::string_view query);

// Feed bytes as they arrive; the parser stops at the end of one request, so what Feed did not
// consume belongs to the next (pipelined) request. After an error it consumes nothing more.
class HttpRequestParser {
 public:
  enum class State { kNeedMore, kComplete, kError };

  explicit HttpRequestParser(ParserLimits limits = {});

  // Consumes bytes of the current request; returns how many were used.
  size_t Feed(std::string_view data);
  // Starts over for the next request on the same connection (limits kept).
  void Reset();

  State state() const;
  bool complete() const { return state() == State::kComplete; }
  bool failed() const { return state() == State::kError; }
  // Whether any byte of a request (not only leading blank lines) has been seen.
  bool started() const { return started_; }
  // Request line and headers are parsed and the body (if any) has not fully arrived.
  bool in_body() const;
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  const HttpRequest& request() const { return request_; }
  HttpRequest& request() { return request_; }

 private:
  enum class Phase {
    kRequestLine,
    kHeaders,
    kBodyFixed,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kDone,
    kError
  };

  // Appends to line_ up to and including '\n'; returns bytes used, sets `*done` on a full line.
  size_t TakeLine(std::string_view data, size_t limit, int over_limit_status, bool* done);
  void Fail(int status, std::string message);
  void OnRequestLine(std::string_view line);
  void OnHeaderLine(std::string_view line);
  void OnHeadersEnd();
  void OnChunkSizeLine(std::string_view line);
  void OnTrailerLine(std::string_view line);
  // The body limit of the current request, known once its request line is parsed.
  size_t BodyLimit() const;
  // Whether the current request is an upload (a POST under upload_path_prefix).
  bool IsUpload() const;
  // Adds body bytes to the request (or its spool); false after a failed spool write.
  bool AppendBody(std::string_view bytes);
  size_t BodyBytes() const;

  ParserLimits limits_;
  Phase phase_ = Phase::kRequestLine;
  HttpRequest request_;
  std::string line_;
  bool started_ = false;
  size_t blank_lines_ = 0;
  size_t header_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  size_t trailer_count_ = 0;
  uint64_t remaining_ = 0;  // body or chunk bytes still expected
  int error_status_ = 0;
  std::string error_message_;
};

// Case-insensitive ASCII comparison of header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace bora::server::http
