// Spawning, watching and stopping a `bora serve` child process for the server tests.
#include "server/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace bora::testing {

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

ServerProcess::ServerProcess(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {BORA_BINARY, "serve", "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  // No state folder unless the test names one: tests must not write to the user's home.
  if (std::find(args.begin(), args.end(), "--state-dir") == args.end()) {
    argv.push_back("--state-dir");
    argv.push_back("none");
  }
  std::vector<char*> raw;
  for (std::string& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  if (posix_spawn(&pid_, raw[0], &actions, nullptr, raw.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
  for (int i = 0; i < 600 && pid_ > 0 && port_ == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    std::smatch match;
    const std::string content = text.str();
    if (std::regex_search(content, match, listening)) port_ = std::stoi(match[1]);
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      ADD_FAILURE() << "bora serve exited: " << content;
      pid_ = -1;
    }
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0 || killed_) return;
  int status = exit_status_;
  if (!reaped_) {
    kill(pid_, SIGTERM);
    waitpid(pid_, &status, 0);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "bora serve did not stop cleanly";
}

void ServerProcess::Kill() {
  if (pid_ <= 0 || reaped_) return;  // already gone: the destructor reports how it ended
  kill(pid_, SIGKILL);
  waitpid(pid_, &exit_status_, 0);
  reaped_ = true;
  killed_ = true;
}

bool ServerProcess::alive() const {
  if (pid_ <= 0 || reaped_) return false;
  // A zombie still answers kill(pid, 0); reaping it here tells an exited server apart.
  if (waitpid(pid_, &exit_status_, WNOHANG) == 0) return true;
  reaped_ = true;
  return false;
}

int64_t ServerProcess::Status(const std::string& field) const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

}  // namespace bora::testing
