// Pushdown runtime of a Grammar: a set of threads (grammar position + return stack) advanced
// byte by byte or by special token; return stacks share frames in an arena that can roll back.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/constraint/grammar.h"

namespace bora::runtime::constraint {

// One alternative parse. `state` is a grammar state whose closure has terminals, or, inside a
// JSON string literal (`string` >= 0, an index into Grammar terminals), the state the literal's
// terminal was taken from. `state == kCompleteState` marks "the root rule has ended".
struct Thread {
  int32_t state = 0;
  int32_t stack = -1;   // top return frame in the arena, -1 = empty
  int32_t string = -1;  // global index of the kJsonString terminal being read, or -1
  int32_t count = 0;    // characters started inside the string
  uint8_t sub = 0;      // JsonStringSub inside the string
};

inline constexpr int32_t kCompleteState = -2;

// A return frame: where the caller continues, and the frame below it.
struct Frame {
  int32_t ret = 0;
  int32_t parent = -1;
  int32_t depth = 1;  // frames in the stack up to and including this one
};

// Owns the frame arena; the thread vectors belong to the caller. Not thread-safe (one per
// sequence). Steps never allocate once the vectors and the arena have grown to their working
// size.
class ByteMatcher {
 public:
  // Deepest return stack (nesting of JSON values, recursion through $ref); deeper parses are
  // dropped, which makes deeper nesting unavailable rather than unbounded.
  static constexpr int32_t kMaxDepth = 96;
  // Most simultaneous alternatives; more means a pathologically ambiguous grammar.
  static constexpr size_t kMaxThreads = 4096;

  explicit ByteMatcher(std::shared_ptr<const Grammar> grammar);

  const Grammar& grammar() const { return *grammar_; }

  // The threads at the start of the text.
  void Start(std::vector<Thread>& out);
  // Advances every thread of `in` by `byte` into `out` (cleared first); false when none survive.
  bool Step(std::span<const Thread> in, uint8_t byte, std::vector<Thread>& out);
  bool StepSpecial(std::span<const Thread> in, int32_t token, std::vector<Thread>& out);
  // The threads right after the closing quote of the string `thread` is inside.
  void CloseString(const Thread& thread, std::vector<Thread>& out);
  // Whether the special `token` may come next.
  bool AllowsSpecial(std::span<const Thread> threads, int32_t token) const;

  static bool IsComplete(std::span<const Thread> threads);
  // Whether every thread is inside a JSON string literal (the vocabulary's fast path applies).
  static bool AllInsideStrings(std::span<const Thread> threads);
  const Terminal& string_terminal(const Thread& thread) const {
    return terminals_base_[thread.string];
  }

  // Arena marks: frames pushed after Mark() are dropped by Rollback(mark).
  size_t Mark() const { return frames_.size(); }
  void Rollback(size_t mark) { frames_.resize(mark); }
  // Keeps only the frames `threads` use (renumbering them); call between tokens.
  void Compact(std::vector<Thread>& threads);

 private:
  void Expand(int32_t state, int32_t stack, std::vector<Thread>& out);
  void Add(const Thread& thread, std::vector<Thread>& out) const;
  bool SameStack(int32_t a, int32_t b) const;
  int32_t Push(int32_t ret, int32_t parent);

  std::shared_ptr<const Grammar> grammar_;
  const Terminal* terminals_base_;  // Grammar terminals, indexed by Thread::string
  std::vector<Frame> frames_;
  std::vector<Frame> compact_frames_;  // scratch of Compact
  std::vector<int32_t> remap_;         // scratch of Compact
  struct ExpandItem {
    int32_t state, stack, level;
  };
  std::vector<ExpandItem> work_;  // scratch of Expand
};

// Whether the whole of `text` is a sentence of `grammar` (tests, tools).
bool MatchesText(const std::shared_ptr<const Grammar>& grammar, std::string_view text);

}  // namespace bora::runtime::constraint
