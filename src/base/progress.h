// A one-line progress bar on stderr for long work (loading, generating weights, quantizing).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace bora {

class ProgressBar {
 public:
  // `total` is in `unit`s (e.g. bytes). When stderr is not a terminal, plain-text lines are
  // written at 25 % steps instead, once the work has lasted a second.
  ProgressBar(std::string label, uint64_t total, bool bytes_unit = true);
  ~ProgressBar();

  void Advance(uint64_t amount);
  void Finish();

 private:
  void Draw(bool final_draw);

  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool bytes_unit_;
  bool interactive_;
  bool finished_ = false;
  int last_percent_logged_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace bora
