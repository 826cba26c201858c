// Who may call which route (rules S1-S3): the Host check against DNS rebinding, API keys
// compared as SHA-256 digests in constant time, admin keys for files and fine-tuning, and the
// per-client rate limits.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "server/api_error.h"
#include "server/rate_limiter.h"

namespace bora::server {

namespace http {
struct HttpRequest;
}

struct AccessOptions {
  std::string bound_host = "127.0.0.1";    // the --host the server listens on
  std::vector<std::string> allowed_hosts;  // extra Host names accepted on a loopback bind
  std::vector<std::string> api_keys;       // empty: no auth
  std::vector<std::string> admin_keys;     // empty: any API key may use the admin routes
  bool public_models = false;              // GET /v1/models without a key
  RateLimits rate_limits;
};

// True for the addresses that only this machine can reach.
bool IsLoopbackHost(const std::string& host);

class AccessControl {
 public:
  explicit AccessControl(AccessOptions options);

  struct Admission {
    // Must live as long as the request (null when no limit applies).
    std::shared_ptr<RateLimiter::Ticket> ticket;
    // Who owns what the request creates and may see: "key " + a digest prefix of its API key,
    // "" when the server has no keys (one tenant).
    std::string owner;
  };
  // Admits `req` or throws the ApiError to answer (401, 403 or 429 with Retry-After).
  Admission Admit(const http::HttpRequest& req);

  // Routes open to everyone: /health, the web page's HTML and (with public_models) the model
  // list; every other route of the table needs a key once keys are configured.
  bool IsPublic(const http::HttpRequest& req) const;
  // Files and fine-tuning: admin keys only, when admin keys are configured.
  static bool IsAdminRoute(const std::string& path);

 private:
  enum class KeyRole { kNone, kUser, kAdmin };
  // Compares the digest of the bearer key with every configured digest, no early exit.
  KeyRole RoleOf(const std::string& authorization, Sha256Digest* digest) const;
  void CheckHost(const http::HttpRequest& req) const;

  AccessOptions options_;
  bool check_host_;
  std::vector<Sha256Digest> user_digests_;
  std::vector<Sha256Digest> admin_digests_;
  RateLimiter limiter_;
};

}  // namespace bora::server
