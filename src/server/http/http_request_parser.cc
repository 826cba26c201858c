// Incremental HTTP/1.1 request parsing: request line, header fields, Content-Length and chunked
// bodies, with every limit and framing ambiguity answered by a 4xx status instead of a guess.
#include "server/http/http_request_parser.h"

#include <algorithm>
#include <cstring>

namespace bora::server::http {
namespace {

constexpr size_t kMaxChunkLine = 4096;  // chunk size plus extensions
constexpr size_t kMaxBlankLines = 8;    // blank lines tolerated before a request line
// Content-Length is only a promise: reserving more than this up front would let a client make the
// server allocate a large body it never sends. Beyond it the body grows as bytes arrive.
constexpr size_t kMaxBodyReserve = size_t{8} << 20;

bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Percent-decodes a path; false on a malformed escape or a decoded NUL.
bool DecodePath(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') return false;
    out->push_back(decoded);
    i += 2;
  }
  return true;
}

// Calls `fn` with each trimmed, non-empty element of a comma-separated list.
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view element = Trim(value.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  auto decode = [](std::string_view text) {
    std::string decoded;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        decoded += ' ';
      } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
                 HexValue(text[i + 2]) >= 0) {
        decoded += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
        i += 2;
      } else {
        decoded += text[i];
      }
    }
    return decoded;
  };
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    out.emplace(decode(pair.substr(0, equals)),
                equals == std::string_view::npos ? "" : decode(pair.substr(equals + 1)));
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

const std::string* HttpRequest::FindHeader(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

std::string HttpRequest::Header(std::string_view name) const {
  const std::string* value = FindHeader(name);
  return value != nullptr ? *value : std::string();
}

std::string_view HttpRequest::BodyView() const {
  return spooled_body ? spooled_body->View() : std::string_view(body);
}

HttpRequestParser::HttpRequestParser(ParserLimits limits) : limits_(limits) {}

void HttpRequestParser::Reset() {
  phase_ = Phase::kRequestLine;
  request_ = HttpRequest();
  line_.clear();
  started_ = false;
  blank_lines_ = 0;
  header_bytes_ = 0;
  trailer_bytes_ = 0;
  trailer_count_ = 0;
  remaining_ = 0;
  error_status_ = 0;
  error_message_.clear();
}

HttpRequestParser::State HttpRequestParser::state() const {
  if (phase_ == Phase::kDone) return State::kComplete;
  if (phase_ == Phase::kError) return State::kError;
  return State::kNeedMore;
}

bool HttpRequestParser::in_body() const {
  return phase_ == Phase::kBodyFixed || phase_ == Phase::kChunkSize ||
         phase_ == Phase::kChunkData || phase_ == Phase::kChunkDataEnd ||
         phase_ == Phase::kTrailers;
}

void HttpRequestParser::Fail(int status, std::string message) {
  phase_ = Phase::kError;
  error_status_ = status;
  error_message_ = std::move(message);
}

size_t HttpRequestParser::TakeLine(std::string_view data, size_t limit, int over_limit_status,
                                   bool* done) {
  *done = false;
  const size_t newline = data.find('\n');
  if (newline == std::string_view::npos) {
    if (line_.size() + data.size() > limit + 1) {  // + 1: a CR may still precede the LF
      Fail(over_limit_status, "");
    } else {
      line_.append(data);
    }
    return data.size();
  }
  if (line_.size() + newline > limit + 1) {
    Fail(over_limit_status, "");
    return newline + 1;
  }
  line_.append(data.substr(0, newline + 1));
  std::string_view content(line_);
  content.remove_suffix(1);
  if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
  if (content.size() > limit) {
    Fail(over_limit_status, "");
  } else {
    *done = true;
  }
  return newline + 1;
}

size_t HttpRequestParser::Feed(std::string_view data) {
  size_t used = 0;
  while (used < data.size() && phase_ != Phase::kDone && phase_ != Phase::kError) {
    const std::string_view rest = data.substr(used);
    switch (phase_) {
      case Phase::kRequestLine: {
        if (line_.empty() && (rest.front() == '\r' || rest.front() == '\n')) {
          // RFC 9112 §2.2: blank lines before a request line are ignored (a few of them).
          if (rest.front() == '\n' && ++blank_lines_ > kMaxBlankLines) {
            Fail(400, "too many blank lines before the request line");
          }
          ++used;
          break;
        }
        started_ = true;
        bool done = false;
        used += TakeLine(rest, limits_.max_request_line, 414, &done);
        if (phase_ == Phase::kError) {
          error_message_ = "the request line is longer than " +
                           std::to_string(limits_.max_request_line) + " bytes";
        } else if (done) {
          std::string line = std::move(line_);
          line_.clear();
          OnRequestLine(line);
        }
        break;
      }
      case Phase::kHeaders: {
        const size_t before = line_.size();
        bool done = false;
        const size_t take = TakeLine(rest, limits_.max_header_bytes, 431, &done);
        used += take;
        header_bytes_ += line_.size() - before;
        if (phase_ != Phase::kError && header_bytes_ > limits_.max_header_bytes) {
          Fail(431, "");
        }
        if (phase_ == Phase::kError) {
          error_message_ = "the request headers are larger than " +
                           std::to_string(limits_.max_header_bytes) + " bytes";
        } else if (done) {
          std::string line = std::move(line_);
          line_.clear();
          OnHeaderLine(line);
        }
        break;
      }
      case Phase::kBodyFixed: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        if (!AppendBody(rest.substr(0, take))) break;
        remaining_ -= take;
        used += take;
        if (remaining_ == 0) phase_ = Phase::kDone;
        break;
      }
      case Phase::kChunkSize: {
        bool done = false;
        used += TakeLine(rest, kMaxChunkLine, 400, &done);
        if (phase_ == Phase::kError) {
          error_message_ = "a chunk size line is too long";
        } else if (done) {
          std::string line = std::move(line_);
          line_.clear();
          OnChunkSizeLine(line);
        }
        break;
      }
      case Phase::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        if (!AppendBody(rest.substr(0, take))) break;
        remaining_ -= take;
        used += take;
        if (remaining_ == 0) phase_ = Phase::kChunkDataEnd;
        break;
      }
      case Phase::kChunkDataEnd: {
        bool done = false;
        used += TakeLine(rest, 0, 400, &done);
        if (phase_ == Phase::kError) {
          error_message_ = "a chunk is not followed by CRLF";
        } else if (done) {
          line_.clear();
          phase_ = Phase::kChunkSize;
        }
        break;
      }
      case Phase::kTrailers: {
        const size_t before = line_.size();
        bool done = false;
        used += TakeLine(rest, limits_.max_header_bytes, 431, &done);
        trailer_bytes_ += line_.size() - before;
        if (phase_ != Phase::kError && trailer_bytes_ > limits_.max_header_bytes) {
          Fail(431, "");
        }
        if (phase_ == Phase::kError) {
          error_message_ = "the chunked trailer is larger than " +
                           std::to_string(limits_.max_header_bytes) + " bytes";
        } else if (done) {
          std::string line = std::move(line_);
          line_.clear();
          OnTrailerLine(line);
        }
        break;
      }
      case Phase::kDone:
      case Phase::kError:
        break;
    }
  }
  return used;
}

void HttpRequestParser::OnRequestLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\r') != std::string_view::npos) return Fail(400, "bare CR in the request line");
  const size_t first = line.find(' ');
  const size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) {
    return Fail(400, "malformed request line (want METHOD TARGET HTTP/1.1)");
  }
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, last - first - 1);
  const std::string_view version = line.substr(last + 1);
  if (!IsToken(method)) return Fail(400, "malformed request method");
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      })) {
    return Fail(400, "malformed request target");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(400, "malformed HTTP version");
  }
  if (version[5] != '1') return Fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.version_minor = version[7] == '0' ? 0 : 1;
  request_.keep_alive = request_.version_minor >= 1;

  std::string_view path_and_query = target;
  if (target == "*") {
    if (method != "OPTIONS") return Fail(400, "the * target is only valid for OPTIONS");
  } else if (target.front() != '/') {
    // Absolute form: scheme://authority/path?query.
    const size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos ||
        !(EqualsIgnoreCase(target.substr(0, scheme_end), "http") ||
          EqualsIgnoreCase(target.substr(0, scheme_end), "https"))) {
      return Fail(400, "malformed request target");
    }
    const size_t path_start = target.find_first_of("/?", scheme_end + 3);
    path_and_query =
        path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }
  const size_t question = path_and_query.find('?');
  std::string_view raw_path = path_and_query.substr(0, question);
  if (question != std::string_view::npos) request_.query = path_and_query.substr(question + 1);
  if (raw_path.empty()) raw_path = "/";
  if (!DecodePath(raw_path, &request_.path)) return Fail(400, "malformed percent-encoding");
  phase_ = Phase::kHeaders;
}

void HttpRequestParser::OnHeaderLine(std::string_view line) {
  if (line.size() >= 1 && line.back() == '\n') line.remove_suffix(1);
  if (line.size() >= 1 && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return OnHeadersEnd();
  if (request_.headers.size() >= limits_.max_header_count) {
    return Fail(431, "more than " + std::to_string(limits_.max_header_count) + " header fields");
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete header line folding is not accepted");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Fail(400, "a header line has no colon");
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Fail(400, "malformed header name");
  const std::string_view value = Trim(line.substr(colon + 1));
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) {
      return Fail(400, "control character in a header value");
    }
  }
  request_.headers.emplace_back(std::string(name), std::string(value));
}

bool HttpRequestParser::IsUpload() const {
  const std::string& prefix = limits_.upload_path_prefix;
  if (limits_.max_upload_body_bytes == 0 || prefix.empty() || request_.method != "POST") {
    return false;
  }
  const std::string& path = request_.path;
  // Whole path segments only, so "/v1/filesystem" does not get the upload limit of "/v1/files".
  return path.compare(0, prefix.size(), prefix) == 0 &&
         (path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/');
}

size_t HttpRequestParser::BodyLimit() const {
  return IsUpload() ? std::max(limits_.max_body_bytes, limits_.max_upload_body_bytes)
                    : limits_.max_body_bytes;
}

size_t HttpRequestParser::BodyBytes() const {
  return request_.spooled_body ? request_.spooled_body->size() : request_.body.size();
}

bool HttpRequestParser::AppendBody(std::string_view bytes) {
  if (!request_.spooled_body && !limits_.upload_spool_dir.empty() && IsUpload()) {
    try {
      request_.spooled_body = BodySpool::Create(limits_.upload_spool_dir);
    } catch (const std::exception& error) {
      Fail(507, error.what());
      return false;
    }
  }
  if (!request_.spooled_body) {
    request_.body.append(bytes);
    return true;
  }
  try {
    request_.spooled_body->Append(bytes);
  } catch (const std::exception& error) {
    Fail(507, error.what());
    return false;
  }
  return true;
}

void HttpRequestParser::OnHeadersEnd() {
  const std::string* content_length = nullptr;
  const std::string* transfer_encoding = nullptr;
  for (const auto& [name, value] : request_.headers) {
    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (content_length != nullptr) return Fail(400, "more than one Content-Length header");
      content_length = &value;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (transfer_encoding != nullptr) return Fail(400, "more than one Transfer-Encoding header");
      transfer_encoding = &value;
    } else if (EqualsIgnoreCase(name, "Connection")) {
      ForEachListElement(value, [this](std::string_view token) {
        if (EqualsIgnoreCase(token, "keep-alive") && request_.version_minor == 0) {
          request_.keep_alive = true;
        }
      });
    } else if (EqualsIgnoreCase(name, "Expect")) {
      if (EqualsIgnoreCase(value, "100-continue") && request_.version_minor >= 1) {
        request_.expect_continue = true;
      }
    }
  }
  // "close" anywhere wins over "keep-alive", so it is applied last.
  for (const auto& [name, value] : request_.headers) {
    if (!EqualsIgnoreCase(name, "Connection")) continue;
    ForEachListElement(value, [this](std::string_view token) {
      if (EqualsIgnoreCase(token, "close")) request_.keep_alive = false;
    });
  }
  if (content_length != nullptr && transfer_encoding != nullptr) {
    return Fail(400, "Content-Length and Transfer-Encoding together");
  }
  if (transfer_encoding != nullptr) {
    if (request_.version_minor == 0) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!EqualsIgnoreCase(*transfer_encoding, "chunked")) {
      return Fail(400, "unsupported Transfer-Encoding (only chunked is accepted)");
    }
    request_.chunked = true;
    phase_ = Phase::kChunkSize;
    return;
  }
  if (content_length != nullptr) {
    const std::string& text = *content_length;
    if (text.empty() || text.size() > 18 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Fail(400, "malformed Content-Length");
    }
    const uint64_t length = std::stoull(text);
    const size_t limit = BodyLimit();
    if (length > limit) {
      return Fail(413, "the request body is larger than " + std::to_string(limit) + " bytes");
    }
    remaining_ = length;
    if (!(IsUpload() && !limits_.upload_spool_dir.empty())) {
      request_.body.reserve(static_cast<size_t>(std::min<uint64_t>(length, kMaxBodyReserve)));
    }
    phase_ = length == 0 ? Phase::kDone : Phase::kBodyFixed;
    if (length == 0) request_.expect_continue = false;
    return;
  }
  request_.expect_continue = false;  // nothing to continue with
  phase_ = Phase::kDone;
}

void HttpRequestParser::OnChunkSizeLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < line.size() && HexValue(line[digits]) >= 0) {
    if (digits == 15) return Fail(400, "chunk size too large");
    size = size * 16 + static_cast<uint64_t>(HexValue(line[digits]));
    ++digits;
  }
  if (digits == 0) return Fail(400, "malformed chunk size");
  std::string_view extension = line.substr(digits);
  while (!extension.empty() && (extension.front() == ' ' || extension.front() == '\t')) {
    extension.remove_prefix(1);
  }
  if (!extension.empty() && extension.front() != ';') return Fail(400, "malformed chunk size");
  for (char c : extension) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return Fail(400, "malformed chunk extension");
  }
  const size_t limit = BodyLimit();
  if (size > limit - std::min(limit, BodyBytes())) {
    return Fail(413, "the request body is larger than " + std::to_string(limit) + " bytes");
  }
  if (size == 0) {
    phase_ = Phase::kTrailers;
    return;
  }
  remaining_ = size;
  phase_ = Phase::kChunkData;
}

void HttpRequestParser::OnTrailerLine(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {
    phase_ = Phase::kDone;
    return;
  }
  if (++trailer_count_ > limits_.max_header_count) {
    return Fail(431, "more than " + std::to_string(limits_.max_header_count) + " trailer fields");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    return Fail(400, "malformed trailer field");
  }
  // Trailer fields are read and dropped: nothing here uses them.
}

}  // namespace bora::server::http
