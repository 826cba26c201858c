// Stop-string matching over streamed text.
#include "runtime/stop_strings.h"

#include <algorithm>

namespace bora::runtime {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
  for (std::string& stop : stops) {
    if (!stop.empty()) stops_.push_back(std::move(stop));
  }
}

StopStringMatcher::Result StopStringMatcher::Push(std::string_view delta) {
  Result result;
  if (stopped_) {
    result.stopped = true;
    return result;
  }
  held_.append(delta);
  // The earliest complete stop string wins (and, at the same position, the longest).
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stops_) stop_at = std::min(stop_at, held_.find(stop));
  if (stop_at != std::string::npos) {
    result.text = held_.substr(0, stop_at);
    result.stopped = stopped_ = true;
    held_.clear();
    return result;
  }
  // Hold back the longest tail that is a proper prefix of some stop string. Stop strings are
  // valid UTF-8, so that tail starts on a character boundary and the emitted text ends on one.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, held_.size());
    for (size_t length = longest; length > hold; --length) {
      if (std::string_view(held_).substr(held_.size() - length) == std::string_view(stop).substr(0, length)) {
        hold = length;
        break;
      }
    }
  }
  result.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return result;
}

std::string StopStringMatcher::Flush() {
  std::string rest;
  if (!stopped_) rest.swap(held_);
  held_.clear();
  return rest;
}

}  // namespace bora::runtime
