// The HTTP/1.1 connection server: one poll loop accepts and reads requests under per-connection
// deadlines and connection caps, and a bounded worker pool runs handlers and writes responses.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/http/http_request_parser.h"
#include "server/http/http_response.h"
#include "server/http/socket_io.h"

namespace bora::server::http {

struct ConnectionLimits {
  ParserLimits parser;
  std::chrono::milliseconds header_timeout{10'000};      // whole header section
  std::chrono::milliseconds body_idle_timeout{30'000};   // between body bytes
  std::chrono::milliseconds body_timeout{120'000};       // whole body
  std::chrono::milliseconds keep_alive_timeout{60'000};  // idle between requests
  std::chrono::milliseconds write_stall_timeout{30'000};
  std::chrono::milliseconds shutdown_grace{30'000};  // in-flight requests after Stop()
  std::chrono::milliseconds linger{2'000};           // reading the rest of a refused request
  size_t max_connections = 512;
  size_t max_connections_per_ip = 64;
  size_t worker_threads = 64;  // requests handled at once
};

class ConnectionServer {
 public:
  // Runs on a worker thread; may throw (answered 500 before any byte is sent).
  using Handler = std::function<void(HttpRequest&, HttpResponse&)>;
  // The response for an error the server answers itself (400, 408, 413, 414, 431, 500, 503,
  // 505); called from the loop and worker threads.
  using ErrorResponder = std::function<HttpResponse(int status, const std::string& message)>;

  ConnectionServer(ConnectionLimits limits, Handler handler, ErrorResponder errors);
  ~ConnectionServer();
  ConnectionServer(const ConnectionServer&) = delete;
  ConnectionServer& operator=(const ConnectionServer&) = delete;

  // Binds and listens; returns the port. Throws IoError.
  int Listen(const std::string& host, int port);
  // Serves until Stop(): then stops accepting, closes idle connections, lets in-flight requests
  // finish for up to `shutdown_grace`, cuts the rest, and returns.
  void Serve();
  // Thread-safe; may be called before, during or after Serve().
  void Stop();

  // Connections counted against the caps right now.
  size_t open_connections() const { return open_connections_.load(); }

 private:
  struct Connection;

  void Loop();
  void AcceptAll(Clock::time_point now);
  void Reject(int fd, Clock::time_point now);
  void OnReadable(Connection& c, Clock::time_point now);
  void ProcessInput(Connection& c, Clock::time_point now);
  void RespondError(Connection& c, int status, const std::string& message, Clock::time_point now);
  void FlushOutput(Connection& c);
  void OnReturned(Connection& c, Clock::time_point now);
  void CheckDeadline(Connection& c, Clock::time_point now);
  Clock::time_point NextDeadline(const Connection& c) const;
  void Close(uint64_t id);
  void Dispatch(Connection& c);
  void WorkerMain(size_t index);
  bool ServeRequest(Connection& c);
  HttpResponse ErrorResponse(int status, const std::string& message);
  void Wake();

  const ConnectionLimits limits_;
  const Handler handler_;
  const ErrorResponder errors_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, size_t> per_ip_;
  uint64_t next_id_ = 1;
  size_t counted_ = 0;
  size_t rejected_lingering_ = 0;
  Clock::time_point accept_paused_until_{};

  // Shared between the loop and the workers.
  // A request goes to the worker that went idle last (a stack), so a light load keeps reusing
  // the same few threads and their malloc arenas instead of touching all of them in turn.
  struct WorkerSlot {
    std::condition_variable wake;
    Connection* assigned = nullptr;
  };
  std::mutex mutex_;
  std::vector<std::unique_ptr<WorkerSlot>> slots_;  // [worker_threads]
  std::vector<size_t> idle_;                        // idle workers, most recent last
  std::deque<Connection*> work_;                    // requests waiting for a busy pool
  std::vector<Connection*> returned_;
  bool workers_exit_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace bora::server::http
