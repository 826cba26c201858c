// Socket tests of the HTTP/1.1 connection server on 127.0.0.1: deadlines against slow clients,
// connection caps, 413 before the body, 100-continue, keep-alive, chunked streaming, a client
// leaving mid-stream, and Stop() while a request streams.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/http/connection_server.h"

namespace bora::server::http {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A blocking client socket with a receive timeout, optionally from another loopback address.
class RawClient {
 public:
  explicit RawClient(int port, const char* source = nullptr) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      inet_pton(AF_INET, source, &local.sin_addr);
      bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local));
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads what arrives within `timeout`; sets eof when the server closed.
  std::string Read(milliseconds timeout, bool* eof = nullptr) {
    pollfd p{fd_, POLLIN, 0};
    if (eof != nullptr) *eof = false;
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buffer[65536];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      if (eof != nullptr) *eof = true;
      return "";
    }
    return std::string(buffer, static_cast<size_t>(n));
  }
  // Reads until `count` complete responses (Content-Length framed) or EOF or timeout.
  std::string ReadResponses(int count, milliseconds timeout, bool* eof = nullptr) {
    std::string all;
    const Clock::time_point deadline = Clock::now() + timeout;
    bool closed = false;
    while (CountResponses(all) < count && !closed && Clock::now() < deadline) {
      all += Read(milliseconds(50), &closed);
    }
    if (eof != nullptr) *eof = closed;
    return all;
  }
  // Waits for the server to close the connection; true when it did within `timeout`.
  bool WaitForClose(milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      bool eof = false;
      Read(milliseconds(20), &eof);
      if (eof) return true;
    }
    return false;
  }
  int fd() const { return fd_; }

 private:
  static int CountResponses(const std::string& bytes) {
    int count = 0;
    size_t at = 0;
    while (true) {
      const size_t end = bytes.find("\r\n\r\n", at);
      if (end == std::string::npos) return count;
      const std::string head = bytes.substr(at, end - at);
      size_t length = 0;
      const size_t cl = head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      if (head.rfind("HTTP/1.1 100", 0) == 0) length = 0;
      if (bytes.size() < end + 4 + length) return count;
      at = end + 4 + length;
      if (head.rfind("HTTP/1.1 100", 0) != 0) ++count;
    }
  }
  int fd_ = -1;
  bool connected_ = false;
};

int StatusOf(const std::string& response) {
  if (response.size() < 12 || response.rfind("HTTP/1.", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

struct Flags {
  std::atomic<bool> stream_failed{false};
  std::atomic<bool> stream_finished{false};
  std::atomic<int> handled{0};
};

class HttpListenerTest : public ::testing::Test {
 protected:
  void Start(ConnectionLimits limits) {
    auto handler = [flags = flags_](HttpRequest& req, HttpResponse& res) {
      ++flags->handled;
      if (req.path == "/hello") {
        res.SetContent("hello", "text/plain");
      } else if (req.path == "/echo") {
        res.SetContent(req.body, "application/octet-stream");
      } else if (req.path == "/stream") {
        res.SetStream("text/event-stream", [](BodyWriter& out) {
          for (int i = 0; i < 5; ++i) {
            out.Write("data: " + std::to_string(i) + "\n\n");
            std::this_thread::sleep_for(milliseconds(20));
          }
        });
      } else if (req.path == "/endless") {
        res.SetStream("text/event-stream", [flags](BodyWriter& out) {
          const Clock::time_point give_up = Clock::now() + std::chrono::seconds(20);
          while (Clock::now() < give_up) {
            if (!out.Write("data: tick\n\n")) {
              flags->stream_failed = true;
              return;
            }
            std::this_thread::sleep_for(milliseconds(20));
          }
          flags->stream_finished = true;
        });
      } else if (req.path == "/throw") {
        throw std::runtime_error("boom");
      } else {
        res.status = 404;
        res.SetContent("{\"error\":\"no route\"}", "application/json");
      }
    };
    auto errors = [](int status, const std::string& message) {
      HttpResponse res;
      res.status = status;
      res.SetContent("{\"error\":\"" + message + "\"}", "application/json");
      return res;
    };
    server_ = std::make_unique<ConnectionServer>(limits, handler, errors);
    port_ = server_->Listen("127.0.0.1", 0);
    serve_ = std::async(std::launch::async, [this] { server_->Serve(); });
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Stop();
      EXPECT_EQ(serve_.wait_for(std::chrono::seconds(10)), std::future_status::ready);
      serve_.get();
    }
  }
  static ConnectionLimits FastLimits() {
    ConnectionLimits limits;
    limits.header_timeout = milliseconds(1000);
    limits.body_idle_timeout = milliseconds(500);
    limits.body_timeout = milliseconds(2000);
    limits.keep_alive_timeout = milliseconds(2000);
    limits.write_stall_timeout = milliseconds(1000);
    limits.shutdown_grace = milliseconds(500);
    limits.linger = milliseconds(200);
    limits.parser.max_body_bytes = 1000;
    limits.worker_threads = 4;
    return limits;
  }
  std::string Get(const std::string& path) {
    RawClient client(port_);
    client.Send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    return client.ReadResponses(1, milliseconds(2000));
  }
  bool WaitForOpenConnections(size_t want) {
    for (int i = 0; i < 200; ++i) {
      if (server_->open_connections() == want) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

  std::shared_ptr<Flags> flags_ = std::make_shared<Flags>();
  std::unique_ptr<ConnectionServer> server_;
  std::future<void> serve_;
  int port_ = 0;
};

TEST_F(HttpListenerTest, ServesARequest) {
  Start(FastLimits());
  const std::string response = Get("/hello");
  EXPECT_EQ(StatusOf(response), 200) << response;
  EXPECT_NE(response.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(response.substr(response.size() - 5), "hello");
  EXPECT_EQ(StatusOf(Get("/throw")), 500);
}

TEST_F(HttpListenerTest, SlowlorisIsDroppedAtTheHeaderDeadlineWhileOthersAreServed) {
  Start(FastLimits());  // 1 s for the whole header section
  std::atomic<double> dropped_after{-1};
  std::atomic<int> slow_status{-1};
  std::thread slow([&] {
    RawClient client(port_);
    const std::string request =
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'a');
    const Clock::time_point start = Clock::now();
    std::string answer;
    for (char c : request) {
      if (!client.Send(std::string(1, c))) break;
      bool eof = false;
      answer += client.Read(milliseconds(500), &eof);
      if (eof || !answer.empty()) break;
    }
    if (!answer.empty()) client.WaitForClose(milliseconds(2000));
    dropped_after = SecondsSince(start);
    slow_status = StatusOf(answer);
  });
  double slowest = 0;
  int served = 0;
  std::this_thread::sleep_for(milliseconds(100));
  while (dropped_after < 0) {
    const Clock::time_point start = Clock::now();
    if (StatusOf(Get("/hello")) == 200) ++served;
    slowest = std::max(slowest, SecondsSince(start));
    std::this_thread::sleep_for(milliseconds(50));
  }
  slow.join();
  std::printf(
      "slowloris dropped after %.2f s (status %d); %d normal requests served meanwhile, "
      "slowest %.1f ms\n",
      dropped_after.load(), slow_status.load(), served, slowest * 1000);
  EXPECT_EQ(slow_status, 408);
  EXPECT_GE(dropped_after, 0.9);
  EXPECT_LE(dropped_after, 2.0);
  EXPECT_GE(served, 5);
  EXPECT_LT(slowest, 0.2);
}

TEST_F(HttpListenerTest, ASilentConnectionIsClosedAtTheHeaderDeadline) {
  Start(FastLimits());
  RawClient client(port_);
  const Clock::time_point start = Clock::now();
  EXPECT_TRUE(client.WaitForClose(milliseconds(3000)));
  EXPECT_GE(SecondsSince(start), 0.9);
  EXPECT_TRUE(WaitForOpenConnections(0));
}

TEST_F(HttpListenerTest, ASlowBodyGets408) {
  Start(FastLimits());  // 500 ms without a body byte
  RawClient client(port_);
  client.Send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
  const Clock::time_point start = Clock::now();
  bool eof = false;
  const std::string response = client.ReadResponses(1, milliseconds(3000), &eof);
  EXPECT_EQ(StatusOf(response), 408) << response;
  EXPECT_GE(SecondsSince(start), 0.4);
  EXPECT_LE(SecondsSince(start), 1.5);
}

TEST_F(HttpListenerTest, AWholeBodyDeadlineStopsATrickle) {
  ConnectionLimits limits = FastLimits();
  limits.body_timeout = milliseconds(800);
  Start(limits);
  RawClient client(port_);
  client.Send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
  const Clock::time_point start = Clock::now();
  std::string response;
  for (int i = 0; i < 40 && response.empty(); ++i) {
    client.Send("a");  // one byte per 100 ms: never idle for 500 ms
    response = client.Read(milliseconds(100));
  }
  EXPECT_EQ(StatusOf(response), 408) << response;
  EXPECT_LE(SecondsSince(start), 1.5);
}

TEST_F(HttpListenerTest, ConnectionCapAnswers503AndServesAfterwards) {
  ConnectionLimits limits = FastLimits();
  limits.max_connections = 4;
  limits.header_timeout = milliseconds(10000);
  Start(limits);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<RawClient>(port_));
  ASSERT_TRUE(WaitForOpenConnections(4));
  RawClient over(port_);
  ASSERT_TRUE(over.connected());
  over.Send("GET /hello HTTP/1.1\r\n\r\n");
  bool eof = false;
  const std::string refused = over.ReadResponses(1, milliseconds(2000), &eof);
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_NE(refused.find("application/json"), std::string::npos);
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos);
  EXPECT_TRUE(over.WaitForClose(milliseconds(2000)));
  idle.pop_back();
  ASSERT_TRUE(WaitForOpenConnections(3));
  EXPECT_EQ(StatusOf(Get("/hello")), 200);
}

TEST_F(HttpListenerTest, PerAddressCapLeavesOtherAddressesServed) {
  ConnectionLimits limits = FastLimits();
  limits.max_connections_per_ip = 2;
  limits.header_timeout = milliseconds(10000);
  Start(limits);
  RawClient a(port_), b(port_);
  ASSERT_TRUE(WaitForOpenConnections(2));
  RawClient third(port_);
  third.Send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(third.ReadResponses(1, milliseconds(2000))), 503);
  RawClient other(port_, "127.0.0.2");  // another peer address is not affected
  ASSERT_TRUE(other.connected());
  other.Send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(other.ReadResponses(1, milliseconds(2000))), 200);
}

TEST_F(HttpListenerTest, OversizedBodyGets413BeforeTheBodyIsSent) {
  Start(FastLimits());  // 1000-byte bodies
  RawClient client(port_);
  client.Send("POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
  bool eof = false;
  const std::string response = client.ReadResponses(1, milliseconds(1000), &eof);
  EXPECT_EQ(StatusOf(response), 413) << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos);
  EXPECT_EQ(flags_->handled, 0);
}

TEST_F(HttpListenerTest, ExpectContinueGets100ThenTheResponse) {
  Start(FastLimits());
  RawClient client(port_);
  client.Send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(client.Read(milliseconds(1000)), "HTTP/1.1 100 Continue\r\n\r\n");
  client.Send("12345");
  const std::string response = client.ReadResponses(1, milliseconds(1000));
  EXPECT_EQ(StatusOf(response), 200);
  EXPECT_EQ(response.substr(response.size() - 5), "12345");

  RawClient big(port_);
  big.Send("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(StatusOf(big.ReadResponses(1, milliseconds(1000))), 413);
}

TEST_F(HttpListenerTest, KeepAlivePipeliningAndConnectionClose) {
  Start(FastLimits());
  RawClient client(port_);
  client.Send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponses(1, milliseconds(1000))), 200);
  client.Send(
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /hello HTTP/1.1\r\n\r\n"
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n");
  const std::string three = client.ReadResponses(3, milliseconds(2000));
  const size_t abc = three.find("abc"), hello = three.find("hello"), xy = three.rfind("xy");
  ASSERT_NE(abc, std::string::npos) << three;
  ASSERT_NE(hello, std::string::npos) << three;
  ASSERT_NE(xy, std::string::npos) << three;
  EXPECT_LT(abc, hello);
  EXPECT_LT(hello, xy);
  EXPECT_EQ(server_->open_connections(), 1u);
  client.Send("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
  bool eof = false;
  const std::string last = client.ReadResponses(1, milliseconds(1000), &eof);
  EXPECT_NE(last.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(eof || client.WaitForClose(milliseconds(1000)));

  RawClient old(port_);
  old.Send("GET /hello HTTP/1.0\r\n\r\n");
  const std::string response = old.ReadResponses(1, milliseconds(1000));
  EXPECT_EQ(response.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << response;
  EXPECT_TRUE(old.WaitForClose(milliseconds(1000)));
}

TEST_F(HttpListenerTest, IdleKeptAliveConnectionsAreClosed) {
  ConnectionLimits limits = FastLimits();
  limits.keep_alive_timeout = milliseconds(300);
  Start(limits);
  RawClient client(port_);
  client.Send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponses(1, milliseconds(1000))), 200);
  const Clock::time_point start = Clock::now();
  EXPECT_TRUE(client.WaitForClose(milliseconds(2000)));
  EXPECT_GE(SecondsSince(start), 0.25);
  EXPECT_LE(SecondsSince(start), 1.0);
}

TEST_F(HttpListenerTest, HeadGetsHeadersOnlyAndBadRequestsGet400) {
  Start(FastLimits());
  RawClient client(port_);
  client.Send("HEAD /hello HTTP/1.1\r\n\r\n");
  const std::string head = client.Read(milliseconds(1000));
  EXPECT_EQ(StatusOf(head), 200);
  EXPECT_NE(head.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");

  RawClient bad(port_);
  bad.Send("POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
  bool eof = false;
  EXPECT_EQ(StatusOf(bad.ReadResponses(1, milliseconds(1000), &eof)), 400);
  EXPECT_TRUE(eof || bad.WaitForClose(milliseconds(1000)));
}

TEST_F(HttpListenerTest, ChunkedStreamIsReadableByARealClient) {
  Start(FastLimits());
  httplib::Client client("127.0.0.1", port_);
  std::string received;
  auto result = client.Get("/stream", [&](const char* data, size_t length) {
    received.append(data, length);
    return true;
  });
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_EQ(received, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
  auto again = client.Post("/echo", "posted", "text/plain");  // the same kept-alive connection
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "posted");
}

TEST_F(HttpListenerTest, AClientLeavingMidStreamMakesTheWriterFail) {
  Start(FastLimits());
  {
    RawClient client(port_);
    client.Send("GET /endless HTTP/1.1\r\n\r\n");
    EXPECT_NE(client.Read(milliseconds(1000)).find("200 OK"), std::string::npos);
  }
  for (int i = 0; i < 200 && !flags_->stream_failed; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(flags_->stream_failed);
  EXPECT_TRUE(WaitForOpenConnections(0));
}

TEST_F(HttpListenerTest, StopWhileAStreamRunsEndsItAfterTheGrace) {
  Start(FastLimits());  // 500 ms grace
  RawClient client(port_);
  client.Send("GET /endless HTTP/1.1\r\n\r\n");
  EXPECT_NE(client.Read(milliseconds(1000)).find("200 OK"), std::string::npos);
  RawClient idle(port_);
  ASSERT_TRUE(WaitForOpenConnections(2));
  const Clock::time_point start = Clock::now();
  server_->Stop();
  EXPECT_TRUE(idle.WaitForClose(milliseconds(300)));  // idle connections close at once
  ASSERT_EQ(serve_.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  const double took = SecondsSince(start);
  EXPECT_GE(took, 0.4);
  EXPECT_LE(took, 2.0);
  EXPECT_TRUE(flags_->stream_failed);
  EXPECT_FALSE(flags_->stream_finished);
}

TEST_F(HttpListenerTest, StopLetsAnInFlightRequestFinish) {
  ConnectionLimits limits = FastLimits();
  limits.shutdown_grace = milliseconds(5000);
  Start(limits);
  RawClient client(port_);
  client.Send("GET /stream HTTP/1.1\r\n\r\n");
  std::string response = client.Read(milliseconds(1000));
  server_->Stop();
  bool eof = false;
  while (!eof) response += client.Read(milliseconds(1000), &eof);
  EXPECT_NE(response.find("data: 4\n\n"), std::string::npos) << response;
  EXPECT_NE(response.find("\r\n0\r\n\r\n"), std::string::npos);
  EXPECT_EQ(serve_.wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

}  // namespace
}  // namespace bora::server::http
