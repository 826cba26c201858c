// The Tekken (tiktoken-style byte-level BPE) tokenizer backend, as mistral-common's Tekkenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_merge.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

// Which config.pattern a Tekken file may carry (rule T3). kKnownOnly: only the patterns of
// released Mistral tokenizers. kTrustFile: any pattern, still run with PCRE2's step and memory
// limits; for tests and fuzzing of the bounded matcher, never for files from users.
enum class TekkenPatternPolicy { kKnownOnly, kTrustFile };

// A loaded `tekken*.json`. Ids 0..S-1 (S = config.default_num_special_tokens) are special
// tokens; BPE rank r is id r + S. Immutable after loading; every method is const and
// thread-safe (the compiled PCRE2 pattern is shared, match state is per call).
class TekkenTokenizer final : public Tokenizer {
 public:
  ~TekkenTokenizer() override;
  TekkenTokenizer(const TekkenTokenizer&) = delete;
  TekkenTokenizer& operator=(const TekkenTokenizer&) = delete;

  Backend backend() const override { return Backend::kTekken; }
  // config.default_vocab_size.
  int32_t vocab_size() const override { return vocab_size_; }
  // config.default_num_special_tokens.
  int32_t num_special_tokens() const override { return num_special_; }

  // tiktoken's encode with no special tokens: split `text` with config.pattern (successive
  // matches, left to right; text between matches is dropped as tiktoken does), BPE each piece,
  // add S. Bytes that are not valid UTF-8 are first replaced by U+FFFD (each maximal invalid
  // subsequence, as Python's errors="replace"), because mistral-common only ever sees str.
  std::vector<int32_t> Encode(std::string_view text) const override;

  // mistral-common's decode: runs of normal ids become their bytes decoded as UTF-8 with
  // U+FFFD replacements; special ids follow `policy`. Ids outside [0, vocab_size()) throw
  // InvalidArgument, as does a special id under kRaise.
  std::string Decode(std::span<const int32_t> ids,
                     SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) const override;

  // Decode({id}, kKeep).
  std::string IdToPiece(int32_t id) const override;
  // 0 <= id < S.
  bool IsSpecial(int32_t id) const override { return id >= 0 && id < num_special_; }
  std::optional<int32_t> FindSpecial(std::string_view name) const override;
  // The token's raw bytes (possibly a partial UTF-8 sequence); empty for special ids.
  std::string TokenBytes(int32_t id) const override;
  bool StripsLeadingSpace() const override { return false; }

  // Ids of `<s>`, `</s>`, `<unk>`, `<pad>` in the special table, -1 when absent.
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  int32_t unk_id() const override { return unk_id_; }
  int32_t pad_id() const override { return pad_id_; }

  // config.version as written in the file: "v1", "v2", "v3", "v7", "v11", "v13" or "v15".
  const std::string& config_version() const { return version_; }
  // Whether the file had its own `special_tokens` list (else mistral-common's default table).
  bool has_special_tokens_list() const { return has_special_tokens_list_; }
  // config.pattern as written in the file.
  const std::string& pattern() const { return pattern_; }
  // token_str of special id `id` (< S), e.g. "[INST]" or "<SPECIAL_42>"; InvalidArgument
  // for any other id.
  const std::string& SpecialName(int32_t id) const;

  // The pieces config.pattern splits `text` into (after the same UTF-8 repair as Encode), in
  // order; Encode BPE-encodes each of them.
  std::vector<std::string> PreTokenize(std::string_view text) const;

 private:
  struct Regex;  // compiled PCRE2 pattern (kept out of this header)

  TekkenTokenizer();
  void CheckId(int32_t id) const;
  // Calls on_piece(std::string_view) for each pre-tokenized piece of `text` (valid UTF-8).
  template <typename OnPiece>
  void SplitPieces(std::string_view text, OnPiece&& on_piece) const;

  friend std::unique_ptr<TekkenTokenizer> ParseTekkenTokenizer(std::string_view json,
                                                               const std::string& source,
                                                               TekkenPatternPolicy pattern_policy);

  // Hash for string-keyed maps that accepts std::string_view lookups without a copy.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };

  int32_t vocab_size_ = 0;
  int32_t num_special_ = 0;
  std::string version_;
  std::string pattern_;
  bool has_special_tokens_list_ = false;
  ByteRankMap ranks_;                  // the first vocab_size - S vocab entries
  std::vector<std::string> specials_;  // token_str per special id, padded to S
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> special_ids_;
  std::unique_ptr<Regex> regex_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  int32_t pad_id_ = -1;
};

// Reads and validates a Tekken JSON file. Throws IoError when it cannot be read and
// FormatError("<path>: <problem>") when it is malformed in any way mistral-common would reject
// (plus: special_tokens[i].rank must be i, the used vocabulary must hold at least the 256
// single bytes, S and default_vocab_size at most 2^20, tokens, special names and the pattern at
// most 4 KiB, the file at most 128 MiB). Encode throws ResourceExhausted when one match of the
// pattern needs more than PCRE2's 10^7 backtracking steps or 256 MiB.
// Only patterns of released Mistral tokenizers are compiled unless `pattern_policy` says
// otherwise (FormatError naming the pattern's sha256).
std::unique_ptr<TekkenTokenizer> LoadTekkenTokenizer(
    const std::string& path, TekkenPatternPolicy pattern_policy = TekkenPatternPolicy::kKnownOnly);

// As LoadTekkenTokenizer, from JSON text already in memory; `source` names it in messages.
std::unique_ptr<TekkenTokenizer> ParseTekkenTokenizer(
    std::string_view json, const std::string& source,
    TekkenPatternPolicy pattern_policy = TekkenPatternPolicy::kKnownOnly);

// True when `pattern` is the pre-tokenizer pattern of a released Mistral Tekken file.
bool IsKnownTekkenPattern(std::string_view pattern);

}  // namespace bora::tokenizer
