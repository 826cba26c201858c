// The raw tokenizer interface shared by the SentencePiece and Tekken backends.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "image/preprocess.h"

namespace bora::tokenizer {

enum class Backend { kSentencePiece, kTekken };

// What Decode does with special (control) ids, as mistral-common's SpecialTokenPolicy.
enum class SpecialTokenPolicy {
  kIgnore,  // drop them (the default everywhere)
  kKeep,    // write their name, e.g. "[INST]"
  kRaise,   // throw InvalidArgument
};

// A loaded tokenizer file. Immutable after construction and safe to share between threads.
// Ids are int32 model ids in [0, vocab_size()).
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual Backend backend() const = 0;
  // Model vocabulary size: SentencePiece piece count, Tekken default_vocab_size.
  virtual int32_t vocab_size() const = 0;
  // Number of leading special ids (Tekken: default_num_special_tokens, 1000); 0 for
  // SentencePiece, whose control pieces are not a contiguous prefix.
  virtual int32_t num_special_tokens() const = 0;

  // Raw encoding exactly as mistral-common's encode(text, bos=False, eos=False): no BOS/EOS,
  // control/special token names inside `text` are ordinary text, never control ids.
  // `text` should be UTF-8; invalid bytes are never rejected but first replaced by U+FFFD
  // (SentencePiece: one per byte, as the library does; Tekken: one per maximal invalid run,
  // as Python's errors="replace").
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;

  // Text of `ids` as mistral-common's decode(ids, policy). Out-of-range ids throw InvalidArgument.
  virtual std::string Decode(std::span<const int32_t> ids,
                             SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) const = 0;

  // mistral-common's id_to_piece: SentencePiece piece text ("▁Hello", "<0x0A>", "[INST]");
  // Tekken KEEP-decode of the single id (partial UTF-8 shows as U+FFFD).
  virtual std::string IdToPiece(int32_t id) const = 0;

  // Whether `id` is a control/special id (SentencePiece CONTROL pieces, as mistral-common's
  // _control_tokens; Tekken ids below num_special_tokens()). Never produced by Encode.
  virtual bool IsSpecial(int32_t id) const = 0;

  // Id of the special token named `name` ("[INST]", "<s>"...), or nullopt when the file does
  // not define it as a special/control token.
  virtual std::optional<int32_t> FindSpecial(std::string_view name) const = 0;

  // Raw bytes `id` contributes to decoded text (policy IGNORE), for streaming detokenization:
  // SentencePiece: the piece with U+2581 replaced by a space, or the single byte of a byte
  // piece; Tekken: the token's bytes. Empty for special ids.
  virtual std::string TokenBytes(int32_t id) const = 0;

  // Whether Decode drops one leading space from the first piece (SentencePiece's dummy
  // prefix); the streaming detokenizer applies the same rule.
  virtual bool StripsLeadingSpace() const = 0;
  // With StripsLeadingSpace(): whether the rule repeats until text appears (SentencePiece's
  // remove_extra_whitespaces: a piece that was only a space leaves the next one stripped too).
  virtual bool StripsRepeatedLeadingSpace() const { return false; }

  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  // -1 when the file has no padding token (SentencePiece files).
  virtual int32_t pad_id() const = 0;

  // How images become tokens: the Tekken file's `image` (or older `multimodal`) block, or the
  // SentencePiece `m1` file-name suffix; none when the tokenizer does not encode images.
  const std::optional<image::ImageConfig>& image_config() const { return image_config_; }
  // Sets the image settings, looking up [IMG], [IMG_BREAK] and [IMG_END]; throws FormatError
  // when the file lacks one of them.
  void SetImageConfig(int64_t patch_size, int64_t max_image_size, int64_t spatial_merge_size,
                      const std::string& source);

 private:
  std::optional<image::ImageConfig> image_config_;
};

}  // namespace bora::tokenizer
