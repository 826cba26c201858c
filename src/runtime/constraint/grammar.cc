// Grammar construction: edges per state, epsilon closures, and the left-recursion check.
#include "runtime/constraint/grammar.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "base/error.h"

namespace bora::runtime::constraint {
namespace {

bool SameTerminal(const Terminal& a, const Terminal& b) {
  return std::tie(a.kind, a.lo, a.hi, a.token, a.min_chars, a.max_chars, a.target) ==
         std::tie(b.kind, b.lo, b.hi, b.token, b.min_chars, b.max_chars, b.target);
}

}  // namespace

int32_t GrammarBuilder::AddRule(std::string name) {
  const int32_t id = static_cast<int32_t>(rules_.size());
  rules_.push_back({std::move(name), -1, -1});
  rules_[id].start = NewState(id);
  rules_[id].final = NewState(id);
  return id;
}

int32_t GrammarBuilder::NewState(int32_t rule) {
  if (static_cast<int64_t>(state_rule_.size()) >= kMaxStates) {
    throw InvalidArgument("grammar too large: more than " + std::to_string(kMaxStates) +
                          " states (reduce maxItems/enum sizes or nesting)");
  }
  state_rule_.push_back(rule);
  edges_.emplace_back();
  return static_cast<int32_t>(state_rule_.size() - 1);
}

void GrammarBuilder::AddEdge(int32_t from, Edge edge) { edges_[from].push_back(edge); }

void GrammarBuilder::Epsilon(int32_t from, int32_t to) {
  if (from != to) AddEdge(from, {Edge::kEpsilon, to, {}, -1});
}

void GrammarBuilder::Bytes(int32_t from, int32_t to, uint8_t lo, uint8_t hi) {
  Terminal t;
  t.kind = TerminalKind::kBytes;
  t.lo = lo;
  t.hi = hi;
  AddEdge(from, {Edge::kTerminal, to, t, -1});
}

void GrammarBuilder::Literal(int32_t from, int32_t to, std::string_view text) {
  if (text.empty()) {
    Epsilon(from, to);
    return;
  }
  int32_t current = from;
  for (size_t i = 0; i < text.size(); ++i) {
    const int32_t next = i + 1 == text.size() ? to : NewState(RuleOf(from));
    Byte(current, next, text[i]);
    current = next;
  }
}

void GrammarBuilder::Special(int32_t from, int32_t to, int32_t token) {
  Terminal t;
  t.kind = TerminalKind::kSpecial;
  t.token = token;
  AddEdge(from, {Edge::kTerminal, to, t, -1});
}

void GrammarBuilder::JsonString(int32_t from, int32_t to, int32_t min_chars, int32_t max_chars) {
  Terminal t;
  t.kind = TerminalKind::kJsonString;
  t.min_chars = min_chars;
  t.max_chars = max_chars;
  AddEdge(from, {Edge::kTerminal, to, t, -1});
}

void GrammarBuilder::CallRule(int32_t from, int32_t to, int32_t rule) {
  AddEdge(from, {Edge::kCall, to, {}, rule});
}

void GrammarBuilder::CheckLeftRecursion() const {
  const size_t n = rules_.size();
  // nullable[r]: rule r can match the empty string (fixpoint over calls).
  std::vector<char> nullable(n, 0);
  std::vector<int32_t> stack;
  std::vector<int32_t> seen(state_rule_.size(), -1);
  int32_t stamp = 0;
  // Visits the states rule r reaches without consuming input; calls `on_call` for each call.
  auto walk = [&](size_t r, auto&& on_call) {
    ++stamp;
    bool reaches_final = false;
    stack.assign(1, rules_[r].start);
    seen[rules_[r].start] = stamp;
    while (!stack.empty()) {
      const int32_t s = stack.back();
      stack.pop_back();
      if (s == rules_[r].final) reaches_final = true;
      for (const Edge& e : edges_[s]) {
        bool through = e.kind == Edge::kEpsilon;
        if (e.kind == Edge::kCall) {
          on_call(e.rule);
          through = nullable[e.rule] != 0;
        }
        if (through && seen[e.to] != stamp) {
          seen[e.to] = stamp;
          stack.push_back(e.to);
        }
      }
    }
    return reaches_final;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (!nullable[r] && walk(r, [](int32_t) {})) nullable[r] = 1, changed = true;
    }
  }
  std::vector<std::vector<int32_t>> left_calls(n);
  for (size_t r = 0; r < n; ++r) {
    walk(r, [&](int32_t callee) { left_calls[r].push_back(callee); });
  }
  // Iterative DFS for a cycle: 0 unvisited, 1 on the path, 2 done.
  std::vector<char> color(n, 0);
  std::vector<std::pair<int32_t, size_t>> path;
  for (size_t root = 0; root < n; ++root) {
    if (color[root]) continue;
    path.assign(1, {static_cast<int32_t>(root), 0});
    color[root] = 1;
    while (!path.empty()) {
      auto& [r, next] = path.back();
      if (next < left_calls[r].size()) {
        const int32_t callee = left_calls[r][next++];
        if (color[callee] == 1) {
          throw InvalidArgument("grammar rule '" + rules_[callee].name +
                                "' can recurse into itself without consuming input "
                                "(a $ref cycle with nothing in between)");
        }
        if (color[callee] == 0) {
          color[callee] = 1;
          path.push_back({callee, 0});
        }
      } else {
        color[r] = 2;
        path.pop_back();
      }
    }
  }
}

std::shared_ptr<const Grammar> GrammarBuilder::Build(int32_t root_rule) const {
  CheckLeftRecursion();
  std::shared_ptr<Grammar> grammar(new Grammar());
  grammar->root_start_ = rules_[root_rule].start;
  for (const Rule& rule : rules_) grammar->rule_names_.push_back(rule.name);
  const size_t n = state_rule_.size();
  grammar->closures_.resize(n);
  std::vector<int32_t> seen(n, -1);
  std::vector<int32_t> stack;
  for (size_t s = 0; s < n; ++s) {
    StateClosure& closure = grammar->closures_[s];
    closure.terminals_begin = static_cast<int32_t>(grammar->terminals_.size());
    closure.calls_begin = static_cast<int32_t>(grammar->calls_.size());
    const int32_t final_state = rules_[state_rule_[s]].final;
    stack.assign(1, static_cast<int32_t>(s));
    seen[s] = static_cast<int32_t>(s);
    while (!stack.empty()) {
      const int32_t state = stack.back();
      stack.pop_back();
      if (state == final_state) closure.accepting = true;
      for (const Edge& e : edges_[state]) {
        if (e.kind == Edge::kEpsilon) {
          if (seen[e.to] != static_cast<int32_t>(s)) {
            seen[e.to] = static_cast<int32_t>(s);
            stack.push_back(e.to);
          }
        } else if (e.kind == Edge::kTerminal) {
          Terminal t = e.terminal;
          t.target = e.to;
          auto begin = grammar->terminals_.begin() + closure.terminals_begin;
          if (std::none_of(begin, grammar->terminals_.end(),
                           [&](const Terminal& o) { return SameTerminal(o, t); })) {
            grammar->terminals_.push_back(t);
          }
          if (t.kind == TerminalKind::kSpecial) grammar->special_tokens_.push_back(t.token);
        } else {
          const Call call{rules_[e.rule].start, e.to};
          auto begin = grammar->calls_.begin() + closure.calls_begin;
          if (std::none_of(begin, grammar->calls_.end(), [&](const Call& o) {
                return o.callee_start == call.callee_start && o.ret == call.ret;
              })) {
            grammar->calls_.push_back(call);
          }
        }
      }
    }
    closure.terminals_end = static_cast<int32_t>(grammar->terminals_.size());
    closure.calls_end = static_cast<int32_t>(grammar->calls_.size());
  }
  auto& specials = grammar->special_tokens_;
  std::sort(specials.begin(), specials.end());
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());
  return grammar;
}

}  // namespace bora::runtime::constraint
