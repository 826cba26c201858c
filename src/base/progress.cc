// A one-line progress bar on stderr.
#include "base/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/memory_info.h"

namespace bora {

ProgressBar::ProgressBar(std::string label, uint64_t total, bool bytes_unit)
    : label_(std::move(label)),
      total_(std::max<uint64_t>(total, 1)),
      bytes_unit_(bytes_unit),
      interactive_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && interactive_) std::fputc('\n', stderr);
}

void ProgressBar::Advance(uint64_t amount) {
  done_ = std::min(total_, done_ + amount);
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ >= std::chrono::milliseconds(100)) {
    last_draw_ = now;
    Draw(false);
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  done_ = total_;
  Draw(true);
  finished_ = true;
}

void ProgressBar::Draw(bool final_draw) {
  int percent = static_cast<int>(100.0 * static_cast<double>(done_) / static_cast<double>(total_));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string amount = bytes_unit_ ? FormatBytes(done_) + " / " + FormatBytes(total_)
                                   : std::to_string(done_) + " / " + std::to_string(total_);
  if (interactive_) {
    constexpr int kWidth = 30;
    int filled = percent * kWidth / 100;
    std::string bar(filled, '#');
    bar.append(kWidth - filled, '.');
    std::fprintf(stderr, "\r%s [%s] %3d%% %s %.1fs%s", label_.c_str(), bar.c_str(), percent,
                 amount.c_str(), seconds, final_draw ? "\n" : "");
    std::fflush(stderr);
  } else if (seconds >= 1.0 && ((final_draw && last_percent_logged_ < 100) ||
                                 percent / 25 > last_percent_logged_ / 25)) {
    // Non-terminal output (logs, CI): a line at 25/50/75/100 % only, and only for work that
    // lasts over a second (quick steps stay silent).
    last_percent_logged_ = percent;
    std::fprintf(stderr, "%s: %d%% (%s, %.1fs)\n", label_.c_str(), percent, amount.c_str(), seconds);
  }
}

}  // namespace bora
