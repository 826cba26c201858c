// Stop strings over streamed text: text that could still become the start of a stop string is
// held back, a completed stop string ends the stream, and neither is ever emitted (so a stop
// string split over several tokens is still found and never leaks to the client).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bora::runtime {

class StopStringMatcher {
 public:
  // Empty strings are ignored (they would stop before the first character).
  explicit StopStringMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string completed; nothing after it is to be emitted
  };

  // Feeds the next piece of generated text (e.g. a detokenizer delta).
  Result Push(std::string_view delta);
  // The end of generation for another reason: releases whatever was held back.
  std::string Flush();

  bool stopped() const { return stopped_; }
  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace bora::runtime
