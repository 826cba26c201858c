// The SentencePiece tokenizer backend (v1, v2, v3, v7 `.model` files), wrapping libsentencepiece.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace bora::tokenizer {

// A SentencePiece model behaving as mistral-common's SentencePieceTokenizer:
// - Encode is the library's EncodeAsIds. Control pieces ("<s>", "[INST]") are never produced
//   from text; user-defined pieces ("[REF]", "[REFERENCE_DOC_0]") are. Invalid UTF-8 in the
//   input never fails: the library's normalizer turns every byte that is not part of a
//   well-formed sequence into U+FFFD (one per byte) before encoding.
// - Decode(kIgnore) is the library's DecodeIds. Decode(kKeep) concatenates the piece text of
//   every id ("▁Hello", "<0x0A>", "[INST]"), as mistral-common's KEEP does. Decode(kRaise)
//   throws InvalidArgument when an id is a control piece, else decodes like kIgnore.
// - Special ids are the CONTROL pieces (mistral-common's special_ids); <unk> is not one.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads the model at `path`. Throws IoError when it cannot be read, FormatError when it is
  // not a SentencePiece model, Unsupported when its decoding cannot be streamed (a
  // denormalizer, or whitespace options other than the dummy prefix).
  explicit SentencePieceTokenizer(const std::string& path);
  // As above, from a serialized ModelProto already in memory; `source` names it in messages.
  SentencePieceTokenizer(std::string_view proto, const std::string& source);
  ~SentencePieceTokenizer() override;

  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  Backend backend() const override { return Backend::kSentencePiece; }
  int32_t vocab_size() const override { return static_cast<int32_t>(kinds_.size()); }
  int32_t num_special_tokens() const override { return 0; }

  std::vector<int32_t> Encode(std::string_view text) const override;
  std::string Decode(std::span<const int32_t> ids,
                     SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) const override;
  std::string IdToPiece(int32_t id) const override;
  bool IsSpecial(int32_t id) const override;
  std::optional<int32_t> FindSpecial(std::string_view name) const override;

  // Control pieces: empty. <unk>: the library's unknown surface (" ⁇ ", U+2047 between
  // spaces). Byte pieces "<0xXX>": that single byte. Other pieces (normal, user-defined): the
  // piece text with every U+2581 replaced by a space.
  std::string TokenBytes(int32_t id) const override;
  // True for the shipped files (add_dummy_prefix): Decode drops the U+2581 that begins the
  // first non-control piece when that piece is a normal or user-defined piece. Byte pieces and
  // <unk> are never stripped, and once any of them has been decoded no later piece is.
  bool StripsLeadingSpace() const override { return strips_leading_space_; }
  // remove_extra_whitespaces (llama2.c's and other trainers' default): the leading U+2581 of
  // every such piece is dropped until decoded text is non-empty.
  bool StripsRepeatedLeadingSpace() const override { return strips_repeated_leading_space_; }

  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  int32_t unk_id() const override { return unk_id_; }
  int32_t pad_id() const override { return pad_id_; }

 private:
  enum class PieceKind : uint8_t { kControl, kUnknown, kByte, kText };

  // Throws InvalidArgument unless 0 <= id < vocab_size().
  void CheckId(int32_t id) const;
  // Validates `proto` (see the .cc), hands it to the library and builds the tables.
  void Load(std::string_view proto, const std::string& source);
  // Fills kinds_ and token_bytes_, and decides strips_leading_space_ by asking the library.
  void BuildTables(const std::string& path);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::vector<PieceKind> kinds_;
  std::vector<std::string> token_bytes_;
  bool strips_leading_space_ = false;
  bool strips_repeated_leading_space_ = false;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  int32_t pad_id_ = -1;
};

// Loads a SentencePiece `.model` file; see SentencePieceTokenizer for what it throws.
std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path);

// As LoadSentencePieceTokenizer, from the file's bytes already in memory; `source` names them
// in messages.
std::unique_ptr<Tokenizer> ParseSentencePieceTokenizer(std::string_view proto,
                                                       const std::string& source);

}  // namespace bora::tokenizer
