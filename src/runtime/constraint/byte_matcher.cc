// Thread expansion (calls, returns, completion), byte and special-token steps, frame compaction.
#include "runtime/constraint/byte_matcher.h"

#include <utility>

#include "base/error.h"
#include "runtime/constraint/json_string_lexer.h"

namespace bora::runtime::constraint {
namespace {

// Nested expansions beyond this (only reachable through nullable rules called in a loop, which
// the compilers never emit) are dropped instead of recursing without end.
constexpr int kMaxExpandLevel = 4 * ByteMatcher::kMaxDepth;

}  // namespace

ByteMatcher::ByteMatcher(std::shared_ptr<const Grammar> grammar)
    : grammar_(std::move(grammar)), terminals_base_(grammar_->all_terminals().data()) {
  frames_.reserve(1024);
}

void ByteMatcher::Start(std::vector<Thread>& out) {
  out.clear();
  frames_.clear();
  Expand(grammar_->root_start(), -1, out);
}

int32_t ByteMatcher::Push(int32_t ret, int32_t parent) {
  const int32_t depth = parent < 0 ? 1 : frames_[parent].depth + 1;
  frames_.push_back({ret, parent, depth});
  return static_cast<int32_t>(frames_.size() - 1);
}

bool ByteMatcher::SameStack(int32_t a, int32_t b) const {
  while (a != b) {
    if (a < 0 || b < 0) return false;
    const Frame& fa = frames_[a];
    const Frame& fb = frames_[b];
    if (fa.depth != fb.depth || fa.ret != fb.ret) return false;
    a = fa.parent;
    b = fb.parent;
  }
  return true;
}

void ByteMatcher::Add(const Thread& t, std::vector<Thread>& out) const {
  for (const Thread& o : out) {
    if (o.state == t.state && o.string == t.string && o.count == t.count && o.sub == t.sub &&
        SameStack(o.stack, t.stack)) {
      return;
    }
  }
  if (out.size() >= kMaxThreads) {
    throw ResourceExhausted("constrained decoding: the grammar is too ambiguous (more than " +
                            std::to_string(kMaxThreads) + " simultaneous parses)");
  }
  out.push_back(t);
}

void ByteMatcher::Expand(int32_t state, int32_t stack, std::vector<Thread>& out) {
  // Explicit work list of (state, stack, level) instead of recursion.
  work_.clear();
  work_.push_back({state, stack, 0});
  const Grammar& g = *grammar_;
  while (!work_.empty()) {
    const ExpandItem item = work_.back();
    work_.pop_back();
    if (g.has_terminals(item.state)) Add({item.state, item.stack, -1, 0, 0}, out);
    if (g.accepting(item.state)) {
      if (item.stack < 0) {
        Add({kCompleteState, -1, -1, 0, 0}, out);
      } else if (item.level < kMaxExpandLevel) {
        const Frame frame = frames_[item.stack];
        work_.push_back({frame.ret, frame.parent, item.level + 1});
      }
    }
    const int32_t depth = item.stack < 0 ? 0 : frames_[item.stack].depth;
    if (depth >= kMaxDepth || item.level >= kMaxExpandLevel) continue;
    for (const Call& call : g.calls(item.state)) {
      const int32_t frame = Push(call.ret, item.stack);
      work_.push_back({call.callee_start, frame, item.level + 1});
    }
  }
}

bool ByteMatcher::Step(std::span<const Thread> in, uint8_t byte, std::vector<Thread>& out) {
  out.clear();
  for (const Thread& t : in) {
    if (t.state == kCompleteState) continue;
    if (t.string >= 0) {
      const Terminal& term = terminals_base_[t.string];
      const JsonStringStep& step = JsonStringTransition(t.sub, byte);
      if (step.reject) continue;
      if (step.closes) {
        if (t.count >= term.min_chars) Expand(term.target, t.stack, out);
        continue;
      }
      const int32_t count = t.count + (step.starts ? 1 : 0);
      if (term.max_chars >= 0 && count > term.max_chars) continue;
      Add({t.state, t.stack, t.string, count, step.next}, out);
      continue;
    }
    const std::span<const Terminal> terms = grammar_->terminals(t.state);
    for (size_t i = 0; i < terms.size(); ++i) {
      const Terminal& term = terms[i];
      if (term.kind == TerminalKind::kBytes) {
        if (byte >= term.lo && byte <= term.hi) Expand(term.target, t.stack, out);
      } else if (term.kind == TerminalKind::kJsonString && byte == '"') {
        const auto index = static_cast<int32_t>(&term - terminals_base_);
        Add({t.state, t.stack, index, 0, kStrNormal}, out);
      }
    }
  }
  return !out.empty();
}

bool ByteMatcher::StepSpecial(std::span<const Thread> in, int32_t token, std::vector<Thread>& out) {
  out.clear();
  for (const Thread& t : in) {
    if (t.state == kCompleteState || t.string >= 0) continue;
    for (const Terminal& term : grammar_->terminals(t.state)) {
      if (term.kind == TerminalKind::kSpecial && term.token == token) {
        Expand(term.target, t.stack, out);
      }
    }
  }
  return !out.empty();
}

void ByteMatcher::CloseString(const Thread& thread, std::vector<Thread>& out) {
  out.clear();
  Expand(terminals_base_[thread.string].target, thread.stack, out);
}

bool ByteMatcher::AllowsSpecial(std::span<const Thread> threads, int32_t token) const {
  for (const Thread& t : threads) {
    if (t.state == kCompleteState || t.string >= 0) continue;
    for (const Terminal& term : grammar_->terminals(t.state)) {
      if (term.kind == TerminalKind::kSpecial && term.token == token) return true;
    }
  }
  return false;
}

bool ByteMatcher::IsComplete(std::span<const Thread> threads) {
  for (const Thread& t : threads) {
    if (t.state == kCompleteState) return true;
  }
  return false;
}

bool ByteMatcher::AllInsideStrings(std::span<const Thread> threads) {
  if (threads.empty()) return false;
  for (const Thread& t : threads) {
    if (t.string < 0) return false;
  }
  return true;
}

void ByteMatcher::Compact(std::vector<Thread>& threads) {
  remap_.assign(frames_.size(), -1);
  compact_frames_.clear();
  for (Thread& t : threads) {
    // Copy the chain below t.stack that is not yet copied, bottom frame first.
    int32_t f = t.stack;
    size_t chain_begin = compact_frames_.size();
    while (f >= 0 && remap_[f] < 0) {
      compact_frames_.push_back(frames_[f]);  // parent still in old numbering
      remap_[f] = static_cast<int32_t>(compact_frames_.size() - 1);
      f = frames_[f].parent;
    }
    // Frames chain_begin.. were pushed top first; their parents point at old indices, which
    // now all have a remap entry (either just copied or copied before).
    for (size_t i = chain_begin; i < compact_frames_.size(); ++i) {
      Frame& frame = compact_frames_[i];
      if (frame.parent >= 0) frame.parent = remap_[frame.parent];
    }
    if (t.stack >= 0) t.stack = remap_[t.stack];
  }
  frames_.swap(compact_frames_);
}

bool MatchesText(const std::shared_ptr<const Grammar>& grammar, std::string_view text) {
  ByteMatcher matcher(grammar);
  std::vector<Thread> current, next;
  matcher.Start(current);
  for (char c : text) {
    if (!matcher.Step(current, static_cast<uint8_t>(c), next)) return false;
    current.swap(next);
  }
  return ByteMatcher::IsComplete(current);
}

}  // namespace bora::runtime::constraint
