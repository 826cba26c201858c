// Rules S1-S3 and S6 against a real in-process HttpServer on 127.0.0.1: the Host check, the
// auth matrix over the server's own route table (user and admin keys), and per-key rate limits.
#include "server/access_control.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.h"
#include "server/rate_limiter.h"
#include "server/server_process.h"
#include "testdata.h"

namespace bora::server {
namespace {

using namespace std::chrono_literals;

struct Reply {
  int status = 0;
  std::string head;
  std::string body;
};

// One request on its own connection (Connection: close); the whole answer.
Reply Send(int port, const std::string& request) {
  Reply reply;
  const int fd = testing::ConnectLoopback(port);
  if (fd < 0) return reply;
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string all;
  char buffer[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    all.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (all.size() < 12 || end == std::string::npos) return reply;
  reply.status = std::stoi(all.substr(9, 3));
  reply.head = all.substr(0, end);
  reply.body = all.substr(end + 4);
  return reply;
}

std::string Request(const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers,
                    const std::string& host = "127.0.0.1") {
  std::string out = method + " " + path + " HTTP/1.1\r\n";
  if (!host.empty()) out += "Host: " + host + "\r\n";
  for (const std::string& header : headers) out += header + "\r\n";
  if (method == "POST") out += "Content-Type: application/json\r\nContent-Length: 2\r\n";
  out += "Connection: close\r\n\r\n";
  if (method == "POST") out += "{}";
  return out;
}

// An HttpServer with no models, serving on a free port from a thread of its own.
class RunningServer {
 public:
  explicit RunningServer(ServerOptions options) {
    options.port = 0;
    server_ = std::make_unique<HttpServer>(std::vector<std::unique_ptr<ServedModel>>{}, options);
    port_ = server_->Bind();
    thread_ = std::thread([this] { server_->Serve(); });
  }
  ~RunningServer() {
    server_->Stop();
    thread_.join();
  }
  int port() const { return port_; }
  HttpServer& server() { return *server_; }

 private:
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::thread thread_;
};

constexpr const char* kUserKey = "user-key-0123456789";
constexpr const char* kAdminKey = "admin-key-9876543210";

TEST(AccessControlTest, LoopbackServerRefusesForeignHostNames) {
  ServerOptions options;
  options.allowed_hosts = {"bora.internal"};
  RunningServer running(options);
  const int port = running.port();
  // Built with append: GCC 12 flags "literal" + std::string&& with a false -Wrestrict.
  const std::string with_port = std::string(":").append(std::to_string(port));
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1", "127.0.0.1" + with_port, "localhost",
                                "LOCALHOST:80", "[::1]", "[::1]:8080", "bora.internal:9"}) {
    EXPECT_EQ(Send(port, Request("GET", "/health", {}, host)).status, 200) << host;
  }
  for (const std::string& host : std::vector<std::string>{
           "evil.example", "evil.example" + with_port, with_port,
           "127.0.0.1.evil.example", "localhost.evil.example", "[::1", "bora.internal.evil"}) {
    const Reply reply = Send(port, Request("GET", "/v1/models", {}, host));
    EXPECT_EQ(reply.status, 403) << host;
    EXPECT_NE(reply.body.find("forbidden_host"), std::string::npos) << reply.body;
  }
  // No Host at all (HTTP/1.0 allows that): refused too, with a readable reason.
  const Reply bare = Send(port, "GET /health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(bare.status, 403);
  EXPECT_NE(bare.body.find("missing Host header"), std::string::npos) << bare.body;
}

TEST(AccessControlTest, EveryRouteOfTheTableNeedsTheRightKey) {
  testing::TempDir state;
  ServerOptions options;
  options.api_keys = {kUserKey};
  options.admin_api_keys = {kAdminKey};
  options.state_dir = state.path();  // so the file and job routes are live
  RunningServer running(options);
  const int port = running.port();
  const std::string user = kUserKey;
  const std::vector<std::string> refused_headers = {
      "",  // no Authorization header
      "Authorization: Bearer wrong-key",
      "Authorization: Bearer " + user.substr(0, user.size() - 1) + "X",  // last byte changed
      "Authorization: Bearer " + user.substr(0, user.size() - 1),        // a prefix
      "Authorization: Bearer " + user + "0",                             // one byte more
      "Authorization: " + user,                                          // no scheme
      "Authorization: Basic " + user,
      "X-Api-Key: " + user,  // another header
      "Authorization: Bearer",
  };
  const std::vector<std::pair<std::string, std::string>> table = running.server().Routes();
  ASSERT_GE(table.size(), 19u);
  int admin_routes = 0;
  for (const auto& [method, pattern] : table) {
    std::string path = pattern;
    for (size_t at; (at = path.find('{')) != std::string::npos;) {
      path.replace(at, path.find('}', at) - at + 1, "00000000-0000-4000-8000-000000000000");
    }
    const std::string name = method + " " + path;
    const bool is_public = path == "/health" || path == "/";
    const bool is_admin = AccessControl::IsAdminRoute(path);
    admin_routes += is_admin;
    for (const std::string& header : refused_headers) {
      const Reply reply = Send(port, Request(method, path,
                                             header.empty() ? std::vector<std::string>{}
                                                            : std::vector<std::string>{header}));
      if (is_public) {
        EXPECT_EQ(reply.status, 200) << name << " with " << header;
      } else {
        EXPECT_EQ(reply.status, 401) << name << " with " << header;
        EXPECT_NE(reply.body.find("authentication_error"), std::string::npos) << reply.body;
      }
    }
    // A user key: every route but files and fine-tuning; those answer 403 permission_error.
    const Reply as_user = Send(port, Request(method, path, {"Authorization: Bearer " + user}));
    if (is_admin) {
      EXPECT_EQ(as_user.status, 403) << name;
      EXPECT_NE(as_user.body.find("admin key"), std::string::npos) << as_user.body;
    } else {
      EXPECT_NE(as_user.status, 401) << name;
      EXPECT_NE(as_user.status, 403) << name;
    }
    // The admin key: past auth everywhere (the route's own answer: 200, 404 for the made-up
    // id, 400/422 for the empty body).
    const Reply as_admin =
        Send(port, Request(method, path, {"Authorization: Bearer " + std::string(kAdminKey)}));
    EXPECT_NE(as_admin.status, 401) << name;
    EXPECT_NE(as_admin.status, 403) << name;
    EXPECT_NE(as_admin.status, 0) << name;
  }
  EXPECT_GE(admin_routes, 9);
}

TEST(AccessControlTest, ModelListCanBePublic) {
  ServerOptions options;
  options.api_keys = {kUserKey};
  options.public_models = true;
  RunningServer running(options);
  EXPECT_EQ(Send(running.port(), Request("GET", "/v1/models", {})).status, 200);
  EXPECT_EQ(Send(running.port(), Request("GET", "/metrics", {})).status, 401);
  EXPECT_EQ(Send(running.port(), Request("POST", "/v1/chat/completions", {})).status, 401);
}

TEST(AccessControlTest, RateLimitIsPerKey) {
  ServerOptions options;
  options.api_keys = {"key-a", "key-b"};
  options.rate_limits.requests_per_minute = 60;
  RunningServer running(options);
  const auto models = [&](const std::string& key) {
    return Send(running.port(), Request("GET", "/v1/models", {"Authorization: Bearer " + key}));
  };
  int admitted = 0;
  int limited = 0;
  for (int i = 0; i < 90; ++i) {
    const Reply reply = models("key-a");
    if (reply.status == 200) ++admitted;
    if (reply.status == 429) {
      ++limited;
      EXPECT_NE(reply.head.find("Retry-After: "), std::string::npos) << reply.head;
      EXPECT_NE(reply.body.find("60 requests per minute"), std::string::npos) << reply.body;
    }
  }
  // 60 in the bucket, plus one per second that the loop took.
  EXPECT_GE(admitted, 60);
  EXPECT_LE(admitted, 65);
  EXPECT_EQ(admitted + limited, 90);
  // Key B has its own bucket; public routes are never limited.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(models("key-b").status, 200);
  EXPECT_EQ(Send(running.port(), Request("GET", "/health", {})).status, 200);
}

TEST(RateLimiterTest, BucketRefillsAtTheConfiguredRate) {
  RateLimiter limiter({/*requests_per_minute=*/6, /*max_concurrent=*/0});
  const auto start = RateLimiter::Clock::now();
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(limiter.Admit("a", start).ticket) << i;
  const RateLimiter::Decision refused = limiter.Admit("a", start);
  EXPECT_FALSE(refused.ticket);
  EXPECT_EQ(refused.retry_after_seconds, 10);  // one request per 10 s
  EXPECT_FALSE(limiter.Admit("a", start + 9s).ticket);
  EXPECT_TRUE(limiter.Admit("a", start + 10s).ticket);
  EXPECT_FALSE(limiter.Admit("a", start + 11s).ticket);
  // A long pause refills to the bucket size, not beyond.
  int admitted = 0;
  while (limiter.Admit("a", start + 1h).ticket) ++admitted;
  EXPECT_EQ(admitted, 6);
  EXPECT_TRUE(limiter.Admit("b", start).ticket);  // another client, another bucket
}

TEST(RateLimiterTest, InFlightCapFreesOnRelease) {
  RateLimiter limiter({0, /*max_concurrent=*/2});
  auto first = limiter.Admit("a").ticket;
  auto second = limiter.Admit("a").ticket;
  ASSERT_TRUE(first && second);
  const RateLimiter::Decision third = limiter.Admit("a");
  EXPECT_FALSE(third.ticket);
  EXPECT_EQ(third.retry_after_seconds, 1);
  EXPECT_NE(third.reason.find("2 in flight"), std::string::npos);
  EXPECT_TRUE(limiter.Admit("b").ticket);  // b is not held back by a
  first.reset();
  EXPECT_TRUE(limiter.Admit("a").ticket);
}

TEST(RateLimiterTest, IdleClientsAreForgotten) {
  RateLimiter limiter({60, 0});
  const auto start = RateLimiter::Clock::now();
  for (int i = 0; i < 3000; ++i) (void)limiter.Admit("client-" + std::to_string(i), start);
  EXPECT_EQ(limiter.tracked_clients(), 3000u);
  (void)limiter.Admit("late", start + 2min);
  EXPECT_EQ(limiter.tracked_clients(), 1u);
}

}  // namespace
}  // namespace bora::server
