// An HTTP response (status, headers, a whole body or a streamed one) and its HTTP/1.1 framing:
// status line, header block, Content-Length or chunked encoding.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bora::server::http {

// Where a streamed body goes; Write returns false once the peer is gone (or stalled too long),
// and every later Write fails too.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  virtual bool Write(std::string_view data) = 0;
  // Whether the peer is gone, checked without writing (streams poll it while idle).
  virtual bool PeerClosed() { return false; }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body is produced by this function (chunked on HTTP/1.1) instead of `body`.
  std::function<void(BodyWriter&)> stream;

  // Replaces every header of that name (case-insensitive) by one with this value.
  void SetHeader(const std::string& name, std::string value);
  // The first value of a header, or "".
  std::string Header(std::string_view name) const;
  void SetContent(std::string content, std::string content_type);
  void SetStream(std::string content_type, std::function<void(BodyWriter&)> provider);
};

enum class BodyFraming {
  kNone,           // no body and no length (1xx, 204, 304)
  kContentLength,  // Content-Length: content_length
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // HTTP/1.0 stream: the body ends when the connection closes
};

// "OK", "Not Found", ...; "Unknown" for a status without a standard phrase.
std::string_view ReasonPhrase(int status);

// The status line and header block (ending with the blank line), with framing and Connection
// headers added. Header names or values holding CR or LF are dropped (no response splitting).
std::string SerializeHead(const HttpResponse& response, int version_minor, bool keep_alive,
                          BodyFraming framing, size_t content_length);

// One chunk of a chunked body: hex size, CRLF, data, CRLF ("" for empty data: it would end the
// body).
std::string EncodeChunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Framing a response needs: none for 1xx/204/304 and HEAD gets the length it would have.
bool StatusHasBody(int status);

}  // namespace bora::server::http
