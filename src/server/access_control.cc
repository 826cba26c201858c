// Host check, API-key digests and roles, rate-limit admission.
#include "server/access_control.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "server/http/http_request_parser.h"

namespace bora::server {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The host part of a Host header value: "[::1]:8080" → "[::1]", "LocalHost:1" → "localhost".
std::string HostName(const std::string& value) {
  std::string host = value;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close != std::string::npos) host = host.substr(0, close + 1);  // else kept: refused by name
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return Lower(host);
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // An IPv4 literal in 127.0.0.0/8; not a name such as "127.0.0.1.example.com".
  in_addr address{};
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

AccessControl::AccessControl(AccessOptions options)
    : options_(std::move(options)),
      check_host_(IsLoopbackHost(options_.bound_host)),
      limiter_(options_.rate_limits) {
  for (const std::string& key : options_.api_keys) user_digests_.push_back(Sha256Of(key));
  for (const std::string& key : options_.admin_keys) admin_digests_.push_back(Sha256Of(key));
  for (std::string& host : options_.allowed_hosts) host = Lower(host);
}

bool AccessControl::IsPublic(const http::HttpRequest& req) const {
  if (req.path == "/health" || (req.path == "/" && req.method == "GET")) return true;
  return options_.public_models && req.method == "GET" &&
         (req.path == "/v1/models" || req.path.rfind("/v1/models/", 0) == 0);
}

bool AccessControl::IsAdminRoute(const std::string& path) {
  const auto under = [&](const std::string& prefix) {
    return path == prefix || path.rfind(prefix + "/", 0) == 0;
  };
  return under("/v1/files") || under("/v1/fine_tuning");
}

void AccessControl::CheckHost(const http::HttpRequest& req) const {
  // A page on another site can make a browser send requests to 127.0.0.1 under its own name
  // (DNS rebinding); such requests carry that name in Host. Only loopback names pass.
  const std::string host = HostName(req.Header("Host"));
  if (!host.empty() && (IsLoopbackHost(host) || host == Lower(options_.bound_host) ||
                        std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(),
                                  host) != options_.allowed_hosts.end())) {
    return;
  }
  throw ApiError(403, "invalid_request_error",
                 host.empty() ? "missing Host header"
                              : "Host \"" + host.substr(0, 64) +
                                    "\" is not accepted by a server bound to loopback; use "
                                    "localhost or 127.0.0.1, or start bora serve with "
                                    "--allowed-host NAME",
                 "forbidden_host");
}

AccessControl::KeyRole AccessControl::RoleOf(const std::string& authorization,
                                             Sha256Digest* digest) const {
  const std::string prefix = "Bearer ";
  if (authorization.size() <= prefix.size() || authorization.compare(0, prefix.size(), prefix) != 0)
    return KeyRole::kNone;
  *digest = Sha256Of(std::string_view(authorization).substr(prefix.size()));
  bool user = false;
  bool admin = false;
  for (const Sha256Digest& expected : user_digests_) user = DigestsEqual(*digest, expected) || user;
  for (const Sha256Digest& expected : admin_digests_)
    admin = DigestsEqual(*digest, expected) || admin;
  if (admin) return KeyRole::kAdmin;
  if (user) return admin_digests_.empty() ? KeyRole::kAdmin : KeyRole::kUser;
  return KeyRole::kNone;
}

AccessControl::Admission AccessControl::Admit(const http::HttpRequest& req) {
  if (check_host_) CheckHost(req);
  Admission admission;
  if (req.method == "OPTIONS" || IsPublic(req)) return admission;
  std::string client = "address " + req.peer;
  if (!user_digests_.empty() || !admin_digests_.empty()) {
    const std::string authorization = req.Header("Authorization");
    Sha256Digest digest{};
    const KeyRole role = RoleOf(authorization, &digest);
    if (role == KeyRole::kNone) {
      throw ApiError(401, "authentication_error",
                     authorization.empty() ? "missing API key: send Authorization: Bearer <key>"
                                           : "invalid API key",
                     "unauthorized");
    }
    if (role != KeyRole::kAdmin && IsAdminRoute(req.path)) {
      throw ApiError(403, "permission_error",
                     "this key may not use files and fine-tuning; use an admin key "
                     "(--admin-key)",
                     "forbidden");
    }
    client = "key " + ToHex(digest).substr(0, 16);  // a digest prefix: never the key itself
    admission.owner = client;
  }
  if (!limiter_.enabled()) return admission;
  RateLimiter::Decision decision = limiter_.Admit(client);
  if (!decision.ticket) {
    throw ApiError(429, "rate_limited", decision.reason, "1300")
        .WithRetryAfter(decision.retry_after_seconds);
  }
  admission.ticket = std::move(decision.ticket);
  return admission;
}

}  // namespace bora::server
