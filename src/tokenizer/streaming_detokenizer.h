// Incremental detokenization: text of generated ids as they arrive, equal in total to Decode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

// Turns ids into text one at a time. For any id sequence, the concatenation of Push(id) for
// every id followed by Finish() equals tokenizer.Decode(ids, policy), and every returned chunk
// is valid UTF-8: the bytes of a character split over several tokens are held back until it
// is complete, and bytes that can no longer complete become U+FFFD exactly as Decode replaces
// them. Work per id is proportional to that token's length (the history is never re-decoded).
// The tokenizer must outlive the detokenizer. Not thread-safe; use one per stream.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer,
                                SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore);

  // Text that `id` completes; possibly empty. Throws InvalidArgument for an out-of-range id
  // and, under kRaise, for a special id (the state is then unchanged).
  std::string Push(int32_t id);

  // Ends the sequence: returns the held-back bytes (as U+FFFD, since they can no longer
  // complete) and resets, so the next Push starts a new sequence.
  std::string Finish();

  // Discards held-back bytes and starts a new sequence.
  void Reset();

 private:
  // Appends `bytes` to the held-back ones and returns the complete part, repaired.
  std::string Feed(std::string_view bytes);
  // Returns the held-back bytes repaired and clears them.
  std::string FlushPending();
  // Appends `bytes` to `out` with invalid sequences replaced the way the backend's Decode does.
  void AppendRepaired(std::string_view bytes, std::string& out) const;

  const Tokenizer* tokenizer_;
  SpecialTokenPolicy policy_;
  // sentencepiece writes one U+FFFD per byte of an invalid sequence; Tekken (Python's
  // bytes.decode(errors="replace")) one per maximal invalid subsequence.
  bool one_replacement_per_byte_;
  // mistral-common's SentencePiece kKeep writes every id as its raw piece text.
  bool keep_writes_pieces_;
  bool strips_leading_space_;
  bool strips_repeated_leading_space_;
  // Nothing written and no dummy-prefix space dropped since the start of the sequence.
  bool at_start_ = true;
  std::string pending_;  // an incomplete but so far valid UTF-8 sequence (at most 3 bytes)
};

}  // namespace bora::tokenizer
