// A tokenizer's vocabulary as constrained decoding needs it, built once per tokenizer: token
// bytes, a byte trie of all text tokens, and per JSON-string sub-state tables for fast masks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/constraint/byte_trie.h"
#include "runtime/constraint/json_string_lexer.h"
#include "tokenizer/tokenizer.h"

namespace bora::runtime::constraint {

// Words of a token bitset for `vocab_size` ids (bit id % 64 of word id / 64).
inline size_t MaskWords(int64_t vocab_size) { return static_cast<size_t>((vocab_size + 63) / 64); }

// How tokens behave when they start inside a JSON string literal in one sub-state.
struct StringTokenTable {
  std::vector<uint64_t> inside;          // [MaskWords] tokens whose bytes all stay inside
  std::vector<int32_t> inside_by_chars;  // the same ids sorted by characters they start
  std::vector<int32_t> chars_offsets;    // [max_chars + 2]: first index with >= c characters
  int32_t max_chars = 0;                 // most characters any inside token starts
  // Tokens that close the string: their bytes after the closing quote form `exits`, whose
  // payload indexes exit_tokens / exit_chars (characters started before the quote);
  // `exits_at_quote` lists those that end right at the quote.
  ByteTrie exits;
  std::vector<int32_t> exit_tokens;
  std::vector<int32_t> exit_chars;
  std::vector<int32_t> exits_at_quote;
};

// Immutable after construction; share one per tokenizer between sequences and threads.
class TokenVocabulary {
 public:
  // Reads TokenBytes for every id (SentencePiece: U+2581 as space, byte pieces as their byte).
  // Special ids and the unknown id are kept out of the trie (special ids are allowed only as
  // grammar terminals, EOS only when the grammar is complete).
  explicit TokenVocabulary(const tokenizer::Tokenizer& tokenizer);

  int32_t size() const { return static_cast<int32_t>(offsets_.size() - 1); }
  int32_t eos_id() const { return eos_id_; }
  // The decoder drops a leading space of the first piece of a text segment (SentencePiece's
  // dummy prefix): at the start of the output and right after a special token.
  bool strips_leading_space() const { return strips_leading_space_; }
  // remove_extra_whitespaces: the strip repeats while the tokens decoded nothing.
  bool strips_repeated_leading_space() const { return strips_repeated_leading_space_; }
  bool is_special(int32_t id) const { return special_[id] != 0; }
  std::string_view bytes(int32_t id) const {
    return std::string_view(bytes_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  const ByteTrie& trie() const { return trie_; }
  const StringTokenTable& string_table(uint8_t sub) const { return string_tables_[sub]; }
  // Longest byte string in any trie (for walk buffers).
  int32_t max_depth() const { return max_depth_; }

 private:
  void BuildStringTable(uint8_t sub);

  std::string bytes_;              // every token's bytes, concatenated
  std::vector<uint32_t> offsets_;  // [size + 1] into bytes_
  std::vector<uint8_t> special_;   // [size] 1 for special/control ids
  std::vector<uint8_t> in_trie_;   // [size] 1 for ids in the trie
  int32_t eos_id_ = -1;
  bool strips_leading_space_ = false;
  bool strips_repeated_leading_space_ = false;
  ByteTrie trie_;
  std::vector<StringTokenTable> string_tables_;  // [kStrSubCount]
  int32_t max_depth_ = 0;
};

}  // namespace bora::runtime::constraint
