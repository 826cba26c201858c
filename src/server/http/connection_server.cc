// The poll loop (accept, read, deadlines, caps, shutdown) and the worker pool of the HTTP/1.1
// connection server.
#include "server/http/connection_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace bora::server::http {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxReadPerTurn = 256 * 1024;       // per connection per loop turn (fairness)
constexpr size_t kMaxAcceptPerTurn = 128;            // accepts per loop turn
constexpr size_t kMaxLingeringRejects = 64;          // refused sockets kept open to deliver the 503
constexpr size_t kMaxLingerDrain = size_t{1} << 20;  // bytes read and dropped after an error
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

long long MillisecondsUntil(Clock::time_point deadline, Clock::time_point now) {
  if (deadline <= now) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
}

std::string Seconds(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

}  // namespace

struct ConnectionServer::Connection {
  enum class State { kReading, kDispatched, kClosing };

  Connection(uint64_t connection_id, int socket, std::string ip, const ParserLimits& limits)
      : id(connection_id), fd(socket), peer(std::move(ip)), parser(limits) {}

  uint64_t id;
  int fd;
  std::string peer;
  bool counted = true;  // false for a refused connection delivering its 503
  State state = State::kReading;
  HttpRequestParser parser;
  std::string in;  // received and not yet parsed (the start of a pipelined request)
  bool in_header = false;
  bool in_body = false;
  Clock::time_point wait_deadline{};  // idle (no byte yet) or header deadline
  Clock::time_point body_start{};
  Clock::time_point body_last{};
  std::string out;  // written by the loop: 100 Continue, errors
  size_t out_sent = 0;
  bool write_shut = false;
  Clock::time_point close_deadline{};
  size_t drained = 0;
  bool keep_alive = false;  // set by the worker
  bool cut = false;         // shut down at the end of the shutdown grace
  bool dead = false;        // a write failed: closed at the end of the loop turn
};

ConnectionServer::ConnectionServer(ConnectionLimits limits, Handler handler, ErrorResponder errors)
    : limits_(limits), handler_(std::move(handler)), errors_(std::move(errors)) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw IoError(std::string("eventfd: ") + std::strerror(errno));
}

ConnectionServer::~ConnectionServer() {
  Stop();
  for (auto& entry : connections_) close(entry.second->fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  close(wake_fd_);
}

int ConnectionServer::Listen(const std::string& host, int port) {
  int bound = 0;
  const int fd = ListenTcp(host, port, &bound);
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = fd;
  return bound;
}

void ConnectionServer::Stop() {
  stopping_.store(true);
  Wake();
}

void ConnectionServer::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof(one));
}

HttpResponse ConnectionServer::ErrorResponse(int status, const std::string& message) {
  try {
    if (errors_) return errors_(status, message);
  } catch (...) {
  }
  HttpResponse response;
  response.status = status;
  response.SetContent(message + "\n", "text/plain; charset=utf-8");
  return response;
}

void ConnectionServer::Serve() {
  if (listen_fd_ < 0) throw IoError("the HTTP server serves before listening");
  const size_t threads = std::max<size_t>(1, limits_.worker_threads);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    workers_exit_ = false;
    slots_.clear();
    idle_.clear();
    for (size_t i = 0; i < threads; ++i) slots_.push_back(std::make_unique<WorkerSlot>());
    idle_.reserve(threads);
  }
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this, i] { WorkerMain(i); });
  Loop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    workers_exit_ = true;
    for (auto& slot : slots_) slot->wake.notify_all();
  }
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  std::vector<uint64_t> ids;
  for (auto& entry : connections_) ids.push_back(entry.first);
  for (uint64_t id : ids) Close(id);
}

void ConnectionServer::Loop() {
  bool stop_started = false;
  bool cut_done = false;
  Clock::time_point grace_deadline{};
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;  // parallel to fds from index 2
  while (true) {
    Clock::time_point now = Clock::now();
    if (stopping_.load() && !stop_started) {
      stop_started = true;
      grace_deadline = now + limits_.shutdown_grace;
      if (listen_fd_ >= 0) close(listen_fd_);
      listen_fd_ = -1;
      std::vector<uint64_t> idle;
      for (auto& [id, c] : connections_) {
        if (c->state != Connection::State::kDispatched) idle.push_back(id);
      }
      for (uint64_t id : idle) Close(id);
    }
    if (stop_started) {
      bool busy = false;
      for (auto& entry : connections_) {
        busy = busy || entry.second->state == Connection::State::kDispatched;
      }
      if (!busy) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (returned_.empty()) break;
      }
      if (now >= grace_deadline && !cut_done) {
        cut_done = true;  // writes of the remaining handlers now fail, which ends them
        for (auto& entry : connections_) {
          if (entry.second->state == Connection::State::kDispatched) {
            shutdown(entry.second->fd, SHUT_RDWR);
            entry.second->cut = true;
          }
        }
      }
    }

    fds.clear();
    ids.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool accepting = listen_fd_ >= 0 && now >= accept_paused_until_;
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    Clock::time_point next = Clock::time_point::max();
    if (listen_fd_ >= 0 && !accepting) next = accept_paused_until_;
    if (stop_started && !cut_done) next = std::min(next, grace_deadline);
    for (auto& [id, c] : connections_) {
      if (c->state == Connection::State::kDispatched) continue;
      short events = POLLIN;
      if (c->out_sent < c->out.size()) events |= POLLOUT;
      fds.push_back({c->fd, events, 0});
      ids.push_back(id);
      next = std::min(next, NextDeadline(*c));
    }
    const int timeout =
        next == Clock::time_point::max()
            ? -1
            : static_cast<int>(std::min<long long>(MillisecondsUntil(next, now), 60'000));
    const int ready = poll(fds.data(), fds.size(), timeout);
    if (ready < 0 && errno != EINTR) throw IoError(std::string("poll: ") + std::strerror(errno));
    now = Clock::now();

    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = read(wake_fd_, &count, sizeof(count));
    }
    std::vector<Connection*> returned;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      returned.swap(returned_);
    }
    for (Connection* c : returned) OnReturned(*c, now);
    if (ready > 0 && fds[1].fd >= 0 && (fds[1].revents & POLLIN) != 0) AcceptAll(now);
    for (size_t i = 2; ready > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto found = connections_.find(ids[i - 2]);
      if (found == connections_.end()) continue;
      Connection& c = *found->second;
      if ((fds[i].revents & POLLOUT) != 0) FlushOutput(c);
      if (!c.dead && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) OnReadable(c, now);
    }
    std::vector<uint64_t> all;
    all.reserve(connections_.size());
    for (auto& entry : connections_) all.push_back(entry.first);
    for (uint64_t id : all) {
      auto found = connections_.find(id);
      if (found != connections_.end()) CheckDeadline(*found->second, now);
    }
  }
}

void ConnectionServer::AcceptAll(Clock::time_point now) {
  for (size_t i = 0; i < kMaxAcceptPerTurn; ++i) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ = now + std::chrono::milliseconds(100);  // out of descriptors
      }
      return;
    }
    const int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    std::string ip = PeerIp(address, length);
    auto per_ip = per_ip_.find(ip);
    const size_t from_ip = per_ip == per_ip_.end() ? 0 : per_ip->second;
    if (counted_ >= limits_.max_connections || from_ip >= limits_.max_connections_per_ip) {
      Reject(fd, now);
      continue;
    }
    const uint64_t id = next_id_++;
    auto c = std::make_unique<Connection>(id, fd, ip, limits_.parser);
    c->wait_deadline = now + limits_.header_timeout;
    connections_.emplace(id, std::move(c));
    ++per_ip_[ip];
    ++counted_;
    open_connections_.store(counted_);
  }
}

void ConnectionServer::Reject(int fd, Clock::time_point now) {
  HttpResponse response = ErrorResponse(
      503, "the server has too many open connections (from this address or in all); retry later");
  response.SetHeader("Retry-After", "1");
  const std::string bytes =
      SerializeHead(response, 1, false, BodyFraming::kContentLength, response.body.size()) +
      response.body;
  if (rejected_lingering_ >= kMaxLingeringRejects) {
    SendSome(fd, bytes);
    close(fd);
    return;
  }
  const uint64_t id = next_id_++;
  auto c = std::make_unique<Connection>(id, fd, "", limits_.parser);
  c->counted = false;
  c->state = Connection::State::kClosing;
  c->out = bytes;
  c->close_deadline = now + std::min(limits_.linger, std::chrono::milliseconds(1000));
  ++rejected_lingering_;
  Connection& ref = *c;
  connections_.emplace(id, std::move(c));
  FlushOutput(ref);
}

void ConnectionServer::Close(uint64_t id) {
  auto found = connections_.find(id);
  if (found == connections_.end()) return;
  Connection& c = *found->second;
  close(c.fd);
  if (c.counted) {
    auto per_ip = per_ip_.find(c.peer);
    if (per_ip != per_ip_.end() && --per_ip->second == 0) per_ip_.erase(per_ip);
    --counted_;
    open_connections_.store(counted_);
  } else {
    --rejected_lingering_;
  }
  connections_.erase(found);
}

void ConnectionServer::FlushOutput(Connection& c) {
  if (c.out_sent < c.out.size()) {
    const long sent = SendSome(c.fd, std::string_view(c.out).substr(c.out_sent));
    if (sent < 0) {
      c.dead = true;
      return;
    }
    c.out_sent += static_cast<size_t>(sent);
  }
  if (c.out_sent < c.out.size()) return;
  c.out.clear();
  c.out_sent = 0;
  if (c.state == Connection::State::kClosing && !c.write_shut) {
    shutdown(c.fd, SHUT_WR);  // the peer sees the end of the response
    c.write_shut = true;
  }
}

void ConnectionServer::OnReadable(Connection& c, Clock::time_point now) {
  char buffer[kReadChunk];
  size_t total = 0;
  while (total < kMaxReadPerTurn) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // end of stream or a reset: nothing more to answer
      Close(c.id);
      return;
    }
    total += static_cast<size_t>(n);
    if (c.state == Connection::State::kClosing) {
      c.drained += static_cast<size_t>(n);
      if (c.drained > kMaxLingerDrain) {
        Close(c.id);
        return;
      }
      continue;
    }
    c.in.append(buffer, static_cast<size_t>(n));
    ProcessInput(c, now);
    if (c.state != Connection::State::kReading || c.dead) return;
  }
}

void ConnectionServer::ProcessInput(Connection& c, Clock::time_point now) {
  const size_t used = c.parser.Feed(c.in);
  c.in.erase(0, used);
  if (c.parser.started() && !c.in_header) {
    c.in_header = true;
    // A fresh connection's header deadline runs from accept; a kept-alive one's from now.
    c.wait_deadline = std::min(c.wait_deadline, now + limits_.header_timeout);
  }
  if (c.parser.failed()) {
    RespondError(c, c.parser.error_status(), c.parser.error_message(), now);
    return;
  }
  if (c.parser.complete()) {
    Dispatch(c);
    return;
  }
  if (c.parser.in_body()) {
    if (!c.in_body) {
      c.in_body = true;
      c.body_start = now;
      c.body_last = now;
      if (c.parser.request().expect_continue) {
        c.out.append(kContinue);
        FlushOutput(c);
      }
    } else if (used > 0) {
      c.body_last = now;
    }
  }
}

void ConnectionServer::RespondError(Connection& c, int status, const std::string& message,
                                    Clock::time_point now) {
  const HttpResponse response = ErrorResponse(status, message);
  c.out.append(
      SerializeHead(response, 1, false, BodyFraming::kContentLength, response.body.size()));
  c.out.append(response.body);
  c.state = Connection::State::kClosing;
  c.close_deadline = now + limits_.linger;
  c.in.clear();
  FlushOutput(c);
}

void ConnectionServer::Dispatch(Connection& c) {
  c.state = Connection::State::kDispatched;
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.empty()) {
    work_.push_back(&c);  // a worker takes it when it finishes its request
    return;
  }
  WorkerSlot& slot = *slots_[idle_.back()];
  idle_.pop_back();
  slot.assigned = &c;
  slot.wake.notify_one();
}

void ConnectionServer::OnReturned(Connection& c, Clock::time_point now) {
  if (!c.keep_alive || c.cut || stopping_.load()) {
    Close(c.id);
    return;
  }
  c.state = Connection::State::kReading;
  c.parser.Reset();
  c.in_header = false;
  c.in_body = false;
  c.out.clear();
  c.out_sent = 0;
  c.wait_deadline = now + limits_.keep_alive_timeout;
  if (!c.in.empty()) ProcessInput(c, now);  // a pipelined request already arrived
}

Clock::time_point ConnectionServer::NextDeadline(const Connection& c) const {
  if (c.dead) return Clock::time_point::min();
  if (c.state == Connection::State::kClosing) return c.close_deadline;
  if (c.in_body) {
    return std::min(c.body_last + limits_.body_idle_timeout, c.body_start + limits_.body_timeout);
  }
  return c.wait_deadline;
}

void ConnectionServer::CheckDeadline(Connection& c, Clock::time_point now) {
  if (c.state == Connection::State::kDispatched || now < NextDeadline(c)) return;
  if (c.dead) {
    Close(c.id);
    return;
  }
  if (c.state == Connection::State::kClosing || !c.in_header) {
    Close(c.id);  // lingering done, or idle with no request begun
    return;
  }
  if (c.in_body) {
    const bool idle = now >= c.body_last + limits_.body_idle_timeout;
    RespondError(c, 408,
                 idle ? "the client sent no body bytes for " + Seconds(limits_.body_idle_timeout)
                      : "the request body did not arrive within " + Seconds(limits_.body_timeout),
                 now);
    return;
  }
  RespondError(c, 408,
               "the request headers did not arrive within " + Seconds(limits_.header_timeout), now);
}

void ConnectionServer::WorkerMain(size_t index) {
  while (true) {
    Connection* c = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      WorkerSlot& slot = *slots_[index];
      if (!work_.empty()) {
        c = work_.front();
        work_.pop_front();
      } else {
        if (workers_exit_) return;
        idle_.push_back(index);
        slot.wake.wait(lock, [&] { return slot.assigned != nullptr || workers_exit_; });
        if (slot.assigned == nullptr) return;  // exiting (Dispatch has stopped by then)
        c = slot.assigned;
        slot.assigned = nullptr;
      }
    }
    const bool keep_alive = ServeRequest(*c);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      c->keep_alive = keep_alive;
      returned_.push_back(c);
    }
    Wake();
  }
}

bool ConnectionServer::ServeRequest(Connection& c) {
  const auto stall = limits_.write_stall_timeout;
  if (c.out_sent < c.out.size() &&
      !SendAll(c.fd, std::string_view(c.out).substr(c.out_sent), stall)) {
    return false;
  }
  c.out.clear();
  c.out_sent = 0;
  HttpRequest& request = c.parser.request();
  request.peer = c.peer;
  request.peer_closed = [fd = c.fd] { return PeerClosed(fd); };
  HttpResponse response;
  try {
    handler_(request, response);
  } catch (const std::exception&) {
    response = ErrorResponse(500, "internal error");
  } catch (...) {
    response = ErrorResponse(500, "internal error");
  }
  const int minor = request.version_minor;
  const bool head_only = request.method == "HEAD";
  bool keep_alive = request.keep_alive && !stopping_.load() &&
                    !EqualsIgnoreCase(response.Header("Connection"), "close");
  if (response.stream && StatusHasBody(response.status)) {
    const BodyFraming framing = minor >= 1 ? BodyFraming::kChunked : BodyFraming::kUntilClose;
    if (framing == BodyFraming::kUntilClose) keep_alive = false;
    if (!SendAll(c.fd, SerializeHead(response, minor, keep_alive, framing, 0), stall)) {
      return false;
    }
    if (head_only) return keep_alive;
    SocketBodyWriter writer(c.fd, framing == BodyFraming::kChunked, stall);
    try {
      response.stream(writer);
    } catch (...) {
      return false;  // mid-stream: no status can be sent any more, so the connection ends
    }
    if (writer.failed()) return false;
    if (framing == BodyFraming::kChunked && !SendAll(c.fd, kLastChunk, stall)) return false;
    return keep_alive;
  }
  const BodyFraming framing =
      StatusHasBody(response.status) ? BodyFraming::kContentLength : BodyFraming::kNone;
  std::string bytes = SerializeHead(response, minor, keep_alive, framing, response.body.size());
  if (!head_only && framing != BodyFraming::kNone) bytes += response.body;
  if (!SendAll(c.fd, bytes, stall)) return false;
  return keep_alive;
}

}  // namespace bora::server::http
