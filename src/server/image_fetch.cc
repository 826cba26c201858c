// Image URL fetching with cpp-httplib, pinned to a checked address per hop.
#include "server/image_fetch.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <httplib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>

#include "base/error.h"

namespace bora::server {
namespace {

struct ParsedUrl {
  std::string scheme, host, path;
  int port = 0;
};

ParsedUrl ParseUrl(const std::string& url) {
  ParsedUrl parsed;
  const size_t colon = url.find("://");
  if (colon == std::string::npos) throw InvalidArgument("not an absolute URL");
  parsed.scheme = url.substr(0, colon);
  for (char& c : parsed.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (parsed.scheme != "http" && parsed.scheme != "https") throw InvalidArgument("only http and https URLs are fetched");
  const size_t start = colon + 3;
  const size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (authority.find('@') != std::string::npos) throw InvalidArgument("URLs with credentials are not fetched");
  parsed.path = end == std::string::npos ? "/" : url.substr(end);
  if (const size_t hash = parsed.path.find('#'); hash != std::string::npos) parsed.path.resize(hash);
  if (parsed.path.empty() || parsed.path[0] != '/') parsed.path = "/" + parsed.path;
  parsed.port = parsed.scheme == "https" ? 443 : 80;
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) throw InvalidArgument("bad IPv6 host");
    parsed.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw InvalidArgument("bad host");
      parsed.port = std::stoi(authority.substr(close + 2));
    }
  } else {
    const size_t port = authority.rfind(':');
    parsed.host = authority.substr(0, port);
    if (port != std::string::npos) {
      const std::string digits = authority.substr(port + 1);
      if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) {
        throw InvalidArgument("bad port");
      }
      parsed.port = std::stoi(digits);
    }
  }
  if (parsed.host.empty()) throw InvalidArgument("the URL has no host");
  if (parsed.port < 1 || parsed.port > 65535) throw InvalidArgument("bad port");
  return parsed;
}

// The first address `host` resolves to, after checking every one of them.
std::string ResolveChecked(const std::string& host, bool allow_private) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &result) != 0 || result == nullptr) {
    throw InvalidArgument("cannot resolve " + host);
  }
  std::string chosen;
  std::string refused;
  for (addrinfo* a = result; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (inet_ntop(a->ai_family, raw, text, sizeof(text)) == nullptr) continue;
    if (!allow_private && !IsPublicAddress(text)) refused = text;
    if (chosen.empty()) chosen = text;
  }
  freeaddrinfo(result);
  if (!refused.empty()) {
    throw InvalidArgument(host + " resolves to " + refused + ", which is not a public address");
  }
  if (chosen.empty()) throw InvalidArgument("cannot resolve " + host);
  return chosen;
}

std::string Resolve(const ParsedUrl& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  if (location.rfind("//", 0) == 0) return base.scheme + ":" + location;
  std::string host = base.host.find(':') != std::string::npos ? "[" + base.host + "]" : base.host;
  const std::string origin = base.scheme + "://" + host + ":" + std::to_string(base.port);
  if (!location.empty() && location[0] == '/') return origin + location;
  const std::string dir = base.path.substr(0, base.path.rfind('/') + 1);
  return origin + dir + location;
}

}  // namespace

bool IsPublicAddress(std::string_view address) {
  const std::string text(address);
  std::array<uint8_t, 16> v6{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    const uint32_t a = ntohl(v4.s_addr);
    auto in = [&](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
    return !(in(0x00000000, 8) || in(0x0A000000, 8) || in(0x64400000, 10) || in(0x7F000000, 8) ||
             in(0xA9FE0000, 16) || in(0xAC100000, 12) || in(0xC0000000, 24) || in(0xC0000200, 24) ||
             in(0xC0A80000, 16) || in(0xC6120000, 15) || in(0xC6336400, 24) || in(0xCB007100, 24) ||
             in(0xE0000000, 4) || in(0xF0000000, 4));
  }
  if (inet_pton(AF_INET6, text.c_str(), v6.data()) != 1) return false;
  const bool zero96 = std::all_of(v6.begin(), v6.begin() + 10, [](uint8_t b) { return b == 0; });
  if (zero96 && ((v6[10] == 0xff && v6[11] == 0xff) || (v6[10] == 0 && v6[11] == 0))) {
    // IPv4-mapped (::ffff:a.b.c.d) or -compatible (::a.b.c.d; also :: and ::1): judge the IPv4.
    char v4text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, v6.data() + 12, v4text, sizeof(v4text));
    if (v6[10] == 0 && std::all_of(v6.begin() + 12, v6.begin() + 15, [](uint8_t b) { return b == 0; }) && v6[15] <= 1) {
      return false;  // :: and ::1
    }
    return IsPublicAddress(v4text);
  }
  if ((v6[0] & 0xfe) == 0xfc) return false;                      // fc00::/7 unique local
  if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0x80) return false;     // fe80::/10 link-local
  if (v6[0] == 0xfe && (v6[1] & 0xc0) == 0xc0) return false;     // fec0::/10 site-local
  if (v6[0] == 0xff) return false;                               // multicast
  if (v6[0] == 0x20 && v6[1] == 0x01 && v6[2] == 0x0d && v6[3] == 0xb8) return false;  // documentation
  if (v6[0] == 0x00 && v6[1] == 0x64 && v6[2] == 0xff && v6[3] == 0x9b) return false;  // NAT64
  return (v6[0] & 0xe0) == 0x20;  // global unicast 2000::/3
}

std::string FetchImageUrl(const std::string& url, const ImageFetchOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.timeout_s));
  std::string current = url;
  for (int hop = 0; hop <= options.max_redirects; ++hop) {
    const ParsedUrl parsed = ParseUrl(current);
    const std::string address = ResolveChecked(parsed.host, options.allow_private);
    const std::string host_port = parsed.host.find(':') != std::string::npos ? "[" + parsed.host + "]" : parsed.host;
    httplib::Client client(parsed.scheme + "://" + host_port + ":" + std::to_string(parsed.port));
    client.set_hostname_addr_map({{parsed.host, address}});  // connect to the checked address only
    client.set_follow_location(false);
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) throw InvalidArgument("timed out");
    const auto seconds = static_cast<time_t>(left);
    const auto micros = static_cast<time_t>((left - static_cast<double>(seconds)) * 1e6);
    client.set_connection_timeout(seconds, micros);
    client.set_read_timeout(seconds, micros);
    client.set_write_timeout(seconds, micros);
    std::string body;
    std::string failure;
    int status = 0;
    std::string location;
    auto result = client.Get(
        parsed.path, httplib::Headers{{"Accept", "image/*"}},
        [&](const httplib::Response& response) {
          status = response.status;
          if (status >= 300 && status < 400) {
            location = response.get_header_value("Location");
            return false;
          }
          if (status != 200) return false;
          if (response.has_header("Content-Length")) {
            const std::string length = response.get_header_value("Content-Length");
            if (length.size() > 12 || std::stoll("0" + length) > options.max_bytes) {
              failure = "the image is larger than " + std::to_string(options.max_bytes) + " bytes";
              return false;
            }
          }
          return true;
        },
        [&](const char* data, size_t length) {
          if (static_cast<int64_t>(body.size() + length) > options.max_bytes) {
            failure = "the image is larger than " + std::to_string(options.max_bytes) + " bytes";
            return false;
          }
          if (Clock::now() > deadline) {
            failure = "timed out";
            return false;
          }
          body.append(data, length);
          return true;
        });
    if (!failure.empty()) throw InvalidArgument(failure);
    if (status >= 300 && status < 400) {
      if (location.empty()) throw InvalidArgument("a redirect without a Location");
      current = Resolve(parsed, location);
      continue;
    }
    if (!result && status == 0) {
      throw InvalidArgument("cannot fetch " + parsed.host + ": " + httplib::to_string(result.error()));
    }
    if (status != 200) throw InvalidArgument("the server answered HTTP " + std::to_string(status));
    return body;
  }
  throw InvalidArgument("more than " + std::to_string(options.max_redirects) + " redirects");
}

}  // namespace bora::server
