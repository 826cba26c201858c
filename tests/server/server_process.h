// A `bora serve` child process for the server tests: started on an ephemeral loopback port,
// stopped with SIGTERM, with its pid and resident memory visible to the test.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bora::testing {

// A blocking TCP socket connected to 127.0.0.1:port, or -1.
int ConnectLoopback(int port);

class ServerProcess {
 public:
  // Runs `BORA_BINARY serve --port 0 ARGS...` with stderr in `log`, and waits (up to 30 s) for
  // its "listening on http://127.0.0.1:PORT" line. port() stays 0 when it did not start.
  ServerProcess(const std::vector<std::string>& args, const std::string& log);
  // SIGTERM, then waits; a non-zero exit is a test failure (not after Kill()).
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool alive() const;
  // SIGKILL (a crash: no shutdown code runs), then reaps it; port() and pid() stay as they were.
  void Kill();
  // A number from /proc/PID/status ("VmRSS" in KiB, "Threads"), or -1 when it cannot be read.
  int64_t Status(const std::string& field) const;
  int64_t RssKib() const { return Status("VmRSS"); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  mutable bool reaped_ = false;  // alive() saw it exit
  mutable int exit_status_ = 0;  // waitpid status once reaped
  bool killed_ = false;          // Kill() ended it: no clean exit expected
};

}  // namespace bora::testing
