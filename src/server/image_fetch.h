// Fetching image URLs for chat requests (--allow-image-urls) without server-side request
// forgery: public addresses only (the name is resolved once and the connection pinned to the
// checked address), redirects re-checked and bounded, size and time limits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bora::server {

struct ImageFetchOptions {
  int64_t max_bytes = 20 << 20;  // the body, checked while it arrives
  double timeout_s = 10;         // the whole fetch, redirects included
  int max_redirects = 3;
  // Trusted networks only: also fetch from loopback, private and link-local addresses.
  bool allow_private = false;
};

// The body of `url` (http or https, GET, 200). Throws InvalidArgument naming the reason: another
// scheme, credentials in the URL, a name that resolves to a non-public address, too many
// redirects, a status other than 200, a body over max_bytes, the time limit.
std::string FetchImageUrl(const std::string& url, const ImageFetchOptions& options);

// Whether an IPv4/IPv6 address (text form) is publicly routable: not loopback, private
// (RFC 1918, fc00::/7), link-local, CGNAT, unspecified, multicast, reserved, documentation or an
// IPv4-mapped/compatible form of those.
bool IsPublicAddress(std::string_view address);

}  // namespace bora::server
