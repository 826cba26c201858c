// Socket helpers of the connection server: a listening socket, non-blocking sends bounded by a
// stall timeout (never SIGPIPE), peer addresses, and the streamed-body writer.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <string_view>

#include "server/http/http_response.h"

namespace bora::server::http {

using Clock = std::chrono::steady_clock;

// A non-blocking listening TCP socket on host:port (port 0: any free port). Stores the bound
// port in `*bound_port`. Throws IoError.
int ListenTcp(const std::string& host, int port, int* bound_port);

// The numeric IP of a peer address ("127.0.0.1", "::1").
std::string PeerIp(const sockaddr_storage& address, socklen_t length);

// Sends every byte of `data` on a non-blocking socket, waiting for room as needed. False when
// the peer is gone or no byte could be written for `stall_timeout`.
bool SendAll(int fd, std::string_view data, std::chrono::milliseconds stall_timeout);

// Sends what the socket takes now; returns the bytes sent, or -1 when the peer is gone.
long SendSome(int fd, std::string_view data);

// Whether the peer has closed (or reset) the connection, without reading from it: a poll for
// POLLRDHUP/POLLHUP/POLLERR that does not wait (rule H5).
bool PeerClosed(int fd);

// A streamed response body on a socket, chunked (HTTP/1.1) or raw until close (HTTP/1.0).
class SocketBodyWriter : public BodyWriter {
 public:
  SocketBodyWriter(int fd, bool chunked, std::chrono::milliseconds stall_timeout)
      : fd_(fd), chunked_(chunked), stall_timeout_(stall_timeout) {}
  bool Write(std::string_view data) override;
  bool PeerClosed() override;
  bool failed() const { return failed_; }

 private:
  int fd_;
  bool chunked_;
  std::chrono::milliseconds stall_timeout_;
  bool failed_ = false;
};

}  // namespace bora::server::http
