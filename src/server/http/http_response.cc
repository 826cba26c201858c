// Serializes HTTP/1.1 response heads and chunked body framing.
#include "server/http/http_response.h"

#include <cstdio>

#include "server/http/http_request_parser.h"

namespace bora::server::http {
namespace {

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
         EqualsIgnoreCase(name, "Connection");
}

}  // namespace

void HttpResponse::SetHeader(const std::string& name, std::string value) {
  std::erase_if(headers, [&](const auto& header) { return EqualsIgnoreCase(header.first, name); });
  headers.emplace_back(name, std::move(value));
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

void HttpResponse::SetContent(std::string content, std::string content_type) {
  body = std::move(content);
  stream = nullptr;
  SetHeader("Content-Type", std::move(content_type));
}

void HttpResponse::SetStream(std::string content_type, std::function<void(BodyWriter&)> provider) {
  body.clear();
  stream = std::move(provider);
  SetHeader("Content-Type", std::move(content_type));
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Entity";
    case 424:
      return "Failed Dependency";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool StatusHasBody(int status) { return !(status < 200 || status == 204 || status == 304); }

std::string SerializeHead(const HttpResponse& response, int version_minor, bool keep_alive,
                          BodyFraming framing, size_t content_length) {
  std::string head = version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  head += std::to_string(status);
  head += ' ';
  head += ReasonPhrase(status);
  head += "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value) || IsFramingHeader(name)) {
      continue;
    }
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  switch (framing) {
    case BodyFraming::kNone:
      break;
    case BodyFraming::kContentLength:
      head += "Content-Length: " + std::to_string(content_length) + "\r\n";
      break;
    case BodyFraming::kChunked:
      head += "Transfer-Encoding: chunked\r\n";
      break;
    case BodyFraming::kUntilClose:
      keep_alive = false;
      break;
  }
  if (!keep_alive) {
    head += "Connection: close\r\n";
  } else if (version_minor == 0) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

std::string EncodeChunk(std::string_view data) {
  if (data.empty()) return "";
  char size[32];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk;
  chunk.reserve(static_cast<size_t>(n) + data.size() + 2);
  chunk.append(size, static_cast<size_t>(n));
  chunk.append(data);
  chunk.append("\r\n");
  return chunk;
}

}  // namespace bora::server::http
