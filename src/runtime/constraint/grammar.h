// Compiled grammars for constrained decoding: rules are NFAs over byte ranges, special token ids,
// JSON string literals and calls to other rules; immutable and shared between requests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bora::runtime::constraint {

enum class TerminalKind : uint8_t {
  kBytes,       // one byte in [lo, hi]
  kSpecial,     // one special (control) token id, never produced by text
  kJsonString,  // a whole JSON string literal: '"', content of [min_chars, max_chars], '"'
};

// A terminal edge as seen from a state's epsilon closure: consuming it leads to `target`.
struct Terminal {
  TerminalKind kind = TerminalKind::kBytes;
  uint8_t lo = 0, hi = 0;  // kBytes: inclusive byte range
  int32_t token = -1;      // kSpecial: the token id
  int32_t min_chars = 0;   // kJsonString: bounds on the characters of the content, where a
  int32_t max_chars = -1;  //   character is one UTF-8 character or one escape; -1 = unbounded
  int32_t target = -1;     // state after the terminal
};

// A call edge in a state's closure: run the callee rule from its start, then go on at `ret`.
struct Call {
  int32_t callee_start = -1;
  int32_t ret = -1;
};

// A state's epsilon closure, precomputed: its terminal and call edges, and whether it reaches
// the end of its rule (where a call returns, or the whole text may end for the root rule).
struct StateClosure {
  int32_t terminals_begin = 0, terminals_end = 0;  // into Grammar::terminals
  int32_t calls_begin = 0, calls_end = 0;          // into Grammar::calls
  bool accepting = false;
};

// Immutable; safe to share between threads (std::shared_ptr<const Grammar>).
class Grammar {
 public:
  int32_t root_start() const { return root_start_; }
  int32_t num_states() const { return static_cast<int32_t>(closures_.size()); }
  int32_t num_rules() const { return static_cast<int32_t>(rule_names_.size()); }
  const std::string& rule_name(int32_t rule) const { return rule_names_[rule]; }

  std::span<const Terminal> terminals(int32_t state) const {
    const StateClosure& c = closures_[state];
    return {terminals_.data() + c.terminals_begin, terminals_.data() + c.terminals_end};
  }
  std::span<const Call> calls(int32_t state) const {
    const StateClosure& c = closures_[state];
    return {calls_.data() + c.calls_begin, calls_.data() + c.calls_end};
  }
  // All terminals of all closures; Thread::string indexes this.
  std::span<const Terminal> all_terminals() const { return terminals_; }
  bool accepting(int32_t state) const { return closures_[state].accepting; }
  bool has_terminals(int32_t state) const {
    return closures_[state].terminals_end > closures_[state].terminals_begin;
  }
  // Every special token id the grammar names, sorted.
  std::span<const int32_t> special_tokens() const { return special_tokens_; }

 private:
  friend class GrammarBuilder;
  Grammar() = default;

  int32_t root_start_ = 0;
  std::vector<std::string> rule_names_;
  std::vector<StateClosure> closures_;  // [num_states]
  std::vector<Terminal> terminals_;
  std::vector<Call> calls_;
  std::vector<int32_t> special_tokens_;
};

// Builds a Grammar rule by rule with Thompson-style edges between states. States are global ids;
// each belongs to one rule and edges stay inside their rule (calls name the callee rule).
class GrammarBuilder {
 public:
  // Limits that keep a hostile schema from exhausting memory (states, edges of all rules).
  static constexpr int64_t kMaxStates = 4'000'000;

  // A new rule with fresh start and final states; returns its id.
  int32_t AddRule(std::string name);
  int32_t Start(int32_t rule) const { return rules_[rule].start; }
  int32_t Final(int32_t rule) const { return rules_[rule].final; }
  int32_t NewState(int32_t rule);
  int32_t RuleOf(int32_t state) const { return state_rule_[state]; }

  void Epsilon(int32_t from, int32_t to);
  void Bytes(int32_t from, int32_t to, uint8_t lo, uint8_t hi);
  void Byte(int32_t from, int32_t to, char c) { Bytes(from, to, c, c); }
  // `text` byte by byte through fresh states; empty text is an epsilon edge.
  void Literal(int32_t from, int32_t to, std::string_view text);
  void Special(int32_t from, int32_t to, int32_t token);
  void JsonString(int32_t from, int32_t to, int32_t min_chars, int32_t max_chars);
  void CallRule(int32_t from, int32_t to, int32_t rule);

  // Precomputes closures and checks that no rule can call itself without consuming input
  // (left recursion, e.g. a $ref cycle through anyOf): InvalidArgument naming the rule.
  std::shared_ptr<const Grammar> Build(int32_t root_rule) const;

 private:
  struct Edge {
    enum Kind : uint8_t { kEpsilon, kTerminal, kCall } kind;
    int32_t to;
    Terminal terminal;  // kTerminal (target filled at Build)
    int32_t rule = -1;  // kCall
  };
  struct Rule {
    std::string name;
    int32_t start, final;
  };
  void AddEdge(int32_t from, Edge edge);
  void CheckLeftRecursion() const;

  std::vector<Rule> rules_;
  std::vector<int32_t> state_rule_;       // [state] owning rule
  std::vector<std::vector<Edge>> edges_;  // [state] outgoing edges
};

}  // namespace bora::runtime::constraint
