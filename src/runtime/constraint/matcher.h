// Per-sequence constrained decoding state: which token ids may come next under a grammar
// (a bitset over the vocabulary), and advancing by the token the sampler chose.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/constraint/byte_matcher.h"
#include "runtime/constraint/grammar.h"
#include "runtime/constraint/token_vocabulary.h"

namespace bora::runtime::constraint {

// The constrained text is the decoded text (Tokenizer::Decode) of the accepted tokens:
// special ids contribute nothing but may be grammar terminals, and with SentencePiece the
// leading space of the first piece after the start or a special token is dropped, as the
// decoder does. Not thread-safe; one per sequence. Masks are computed by walking the
// vocabulary trie with the grammar (rejected subtrees are skipped) and, inside JSON strings,
// from per-sub-state tables of the vocabulary.
class Matcher {
 public:
  Matcher(std::shared_ptr<const Grammar> grammar,
          std::shared_ptr<const TokenVocabulary> vocabulary);

  int32_t vocab_size() const { return vocabulary_->size(); }
  const Grammar& grammar() const { return pda_.grammar(); }
  const TokenVocabulary& vocabulary() const { return *vocabulary_; }

  // Sets bit id of `allowed` (word id / 64, bit id % 64) for each id that may come next and
  // clears every other bit of the span, which needs at least MaskWords(vocab_size()) words.
  // EOS is allowed iff Complete(); other special ids only where the grammar names them.
  // After EOS was accepted nothing is allowed.
  void FillMask(std::span<uint64_t> allowed);
  // Whether `token` may come next (one token's check, without a whole mask).
  bool IsAllowed(int32_t token);
  // Advances by `token`; InvalidArgument when it is not allowed (the state is then unchanged).
  void Accept(int32_t token);
  // Whether the text so far is a complete sentence of the grammar (EOS may come next).
  bool Complete() const { return !finished_ && ByteMatcher::IsComplete(threads_); }
  // Whether EOS was accepted.
  bool Finished() const { return finished_; }
  // Whether any token at all may come next (false only after EOS).
  bool Alive() const { return !finished_; }

 private:
  // Advances `threads_` by text bytes into `out`; false when they are rejected.
  bool AdvanceText(std::string_view text, std::vector<Thread>& out);
  // The text a token adds (its bytes, less a leading space the decoder drops).
  std::string_view TextOf(int32_t token) const;
  // Whether `token` is a text token of the trie (not special, not unknown, not empty).
  bool IsText(int32_t token) const;
  void StringMask(const Thread& thread, std::span<uint64_t> allowed);
  template <typename OnPayload>
  void Walk(const ByteTrie& trie, std::span<const Thread> start, bool strip_space,
            OnPayload&& on_payload);

  std::shared_ptr<const TokenVocabulary> vocabulary_;
  ByteMatcher pda_;
  std::vector<Thread> threads_;  // the current parses
  bool strip_space_ = false;     // the next text token loses a leading space
  bool finished_ = false;
  // Scratch, sized once: per trie depth the threads after that many bytes, and arena marks.
  std::vector<std::vector<Thread>> levels_;
  std::vector<size_t> marks_;
  std::vector<Thread> scratch_a_, scratch_b_, closed_;
};

}  // namespace bora::runtime::constraint
