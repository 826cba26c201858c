// Token masks by trie walk and string tables; token acceptance.
#include "runtime/constraint/matcher.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "base/error.h"

namespace bora::runtime::constraint {
namespace {

inline void SetBit(std::span<uint64_t> bits, int32_t id) {
  bits[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
}

}  // namespace

Matcher::Matcher(std::shared_ptr<const Grammar> grammar,
                 std::shared_ptr<const TokenVocabulary> vocabulary)
    : vocabulary_(std::move(vocabulary)), pda_(std::move(grammar)) {
  if (!vocabulary_) throw InvalidArgument("constraint matcher: no vocabulary");
  for (int32_t token : pda_.grammar().special_tokens()) {
    if (token < 0 || token >= vocabulary_->size() || !vocabulary_->is_special(token)) {
      throw InvalidArgument("constraint grammar names token " + std::to_string(token) +
                            ", which is not a special token of this vocabulary");
    }
  }
  pda_.Start(threads_);
  strip_space_ = vocabulary_->strips_leading_space();
  levels_.resize(static_cast<size_t>(vocabulary_->max_depth()) + 2);
  for (auto& level : levels_) level.reserve(16);
  marks_.resize(levels_.size());
}

template <typename OnPayload>
void Matcher::Walk(const ByteTrie& trie, std::span<const Thread> start, bool strip_space,
                   OnPayload&& on_payload) {
  levels_[0].assign(start.begin(), start.end());
  marks_[0] = pda_.Mark();
  const std::span<const ByteTrie::Node> nodes = trie.nodes();
  const auto n = static_cast<int32_t>(nodes.size());
  int32_t i = 0;
  while (i < n) {
    const ByteTrie::Node& node = nodes[i];
    const int d = node.depth;
    pda_.Rollback(marks_[d - 1]);
    if (strip_space && d == 1 && node.byte == ' ') {
      // The decoder drops this space: the subtree continues from the same parses, and the
      // token " " alone adds no text (SentencePiece encodes "42" as "▁", "4", "2").
      levels_[1] = levels_[0];
      marks_[1] = marks_[0];
      if (node.payload_end > node.payload_begin) on_payload(trie.payload(node));
      ++i;
      continue;
    }
    if (!pda_.Step(levels_[d - 1], node.byte, levels_[d])) {
      i = node.end;
      continue;
    }
    if (node.payload_end > node.payload_begin) on_payload(trie.payload(node));
    marks_[d] = pda_.Mark();
    ++i;
  }
  pda_.Rollback(marks_[0]);
}

void Matcher::StringMask(const Thread& thread, std::span<uint64_t> allowed) {
  const Terminal& term = pda_.string_terminal(thread);
  const StringTokenTable& table = vocabulary_->string_table(thread.sub);
  const int32_t remaining = term.max_chars < 0 ? INT_MAX : term.max_chars - thread.count;
  // Tokens that stay inside the string: all of them, or those starting few enough characters.
  if (remaining >= table.max_chars) {
    for (size_t w = 0; w < table.inside.size(); ++w) allowed[w] |= table.inside[w];
  } else if (remaining >= 0) {
    const int32_t end = table.chars_offsets[static_cast<size_t>(remaining) + 1];
    for (int32_t k = 0; k < end; ++k) SetBit(allowed, table.inside_by_chars[k]);
  }
  // Tokens that close it: the characters before the quote must fit [min, max]; what follows
  // the quote is walked from the parses after the string.
  const int32_t need = term.min_chars - thread.count;
  auto fits = [&](int32_t index) {
    const int32_t chars = table.exit_chars[index];
    return chars >= need && chars <= remaining;
  };
  for (int32_t index : table.exits_at_quote) {
    if (fits(index)) SetBit(allowed, table.exit_tokens[index]);
  }
  if (table.exits.nodes().empty()) return;
  const size_t mark = pda_.Mark();
  pda_.CloseString(thread, closed_);
  Walk(table.exits, closed_, false, [&](std::span<const int32_t> payload) {
    for (int32_t index : payload) {
      if (fits(index)) SetBit(allowed, table.exit_tokens[index]);
    }
  });
  pda_.Rollback(mark);
}

void Matcher::FillMask(std::span<uint64_t> allowed) {
  const size_t words = MaskWords(vocabulary_->size());
  if (allowed.size() < words) {
    throw InvalidArgument("constraint mask of " + std::to_string(allowed.size()) +
                          " words for a vocabulary of " + std::to_string(vocabulary_->size()));
  }
  std::memset(allowed.data(), 0, allowed.size() * sizeof(uint64_t));
  if (finished_) return;
  if (ByteMatcher::IsComplete(threads_)) SetBit(allowed, vocabulary_->eos_id());
  for (int32_t token : pda_.grammar().special_tokens()) {
    if (pda_.AllowsSpecial(threads_, token)) SetBit(allowed, token);
  }
  if (!strip_space_ && ByteMatcher::AllInsideStrings(threads_)) {
    for (const Thread& thread : threads_) StringMask(thread, allowed);
    return;
  }
  Walk(vocabulary_->trie(), threads_, strip_space_, [&](std::span<const int32_t> payload) {
    for (int32_t id : payload) SetBit(allowed, id);
  });
}

std::string_view Matcher::TextOf(int32_t token) const {
  std::string_view text = vocabulary_->bytes(token);
  if (strip_space_ && !text.empty() && text.front() == ' ') text.remove_prefix(1);
  return text;
}

bool Matcher::IsText(int32_t token) const {
  return !vocabulary_->is_special(token) && !vocabulary_->bytes(token).empty();
}

bool Matcher::AdvanceText(std::string_view text, std::vector<Thread>& out) {
  if (text.empty()) {
    out = threads_;  // a lone space the decoder drops
    return true;
  }
  const std::vector<Thread>* current = &threads_;
  std::vector<Thread>* next = &scratch_a_;
  for (char c : text) {
    if (!pda_.Step(*current, static_cast<uint8_t>(c), *next)) return false;
    current = next;
    next = next == &scratch_a_ ? &scratch_b_ : &scratch_a_;
  }
  out = *current;
  return true;
}

bool Matcher::IsAllowed(int32_t token) {
  if (finished_ || token < 0 || token >= vocabulary_->size()) return false;
  if (token == vocabulary_->eos_id()) return ByteMatcher::IsComplete(threads_);
  if (vocabulary_->is_special(token)) return pda_.AllowsSpecial(threads_, token);
  if (!IsText(token)) return false;
  const size_t mark = pda_.Mark();
  std::vector<Thread>& out = closed_;
  const bool ok = AdvanceText(TextOf(token), out);
  pda_.Rollback(mark);
  return ok;
}

void Matcher::Accept(int32_t token) {
  auto refuse = [&](const char* why) {
    throw InvalidArgument("constrained decoding: token " + std::to_string(token) + " " + why);
  };
  if (finished_) refuse("comes after the end of sequence");
  if (token < 0 || token >= vocabulary_->size()) refuse("is outside the vocabulary");
  if (token == vocabulary_->eos_id()) {
    if (!ByteMatcher::IsComplete(threads_)) refuse("(end of sequence) ends an incomplete text");
    finished_ = true;
    return;
  }
  const size_t mark = pda_.Mark();
  if (vocabulary_->is_special(token)) {
    if (!pda_.StepSpecial(threads_, token, scratch_a_)) {
      pda_.Rollback(mark);
      refuse("(a special token) is not allowed here by the grammar");
    }
    threads_.swap(scratch_a_);
    strip_space_ = vocabulary_->strips_leading_space();
  } else {
    const std::string_view text = IsText(token) ? TextOf(token) : std::string_view();
    if (!IsText(token) || !AdvanceText(text, closed_)) {
      pda_.Rollback(mark);
      refuse("does not continue the text allowed by the grammar");
    }
    threads_.swap(closed_);
    // remove_extra_whitespaces: a token that decoded to nothing leaves the next one stripped.
    strip_space_ = strip_space_ && text.empty() && vocabulary_->strips_repeated_leading_space();
  }
  pda_.Compact(threads_);
}

}  // namespace bora::runtime::constraint
