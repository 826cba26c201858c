// Streaming detokenization with held-back partial UTF-8 and the backends' decode rules.
#include "tokenizer/streaming_detokenizer.h"

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";
// U+2581, the SentencePiece piece prefix that Decode turns into the dropped dummy-prefix space.
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

}  // namespace

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, SpecialTokenPolicy policy)
    : tokenizer_(&tokenizer),
      policy_(policy),
      one_replacement_per_byte_(tokenizer.backend() == Backend::kSentencePiece),
      keep_writes_pieces_(tokenizer.backend() == Backend::kSentencePiece &&
                          policy == SpecialTokenPolicy::kKeep),
      strips_leading_space_(tokenizer.StripsLeadingSpace()),
      strips_repeated_leading_space_(tokenizer.StripsRepeatedLeadingSpace()) {}

std::string StreamingDetokenizer::Push(int32_t id) {
  if (id < 0 || id >= tokenizer_->vocab_size()) {
    throw InvalidArgument("token id " + std::to_string(id) + " is out of range [0, " +
                          std::to_string(tokenizer_->vocab_size()) + ")");
  }
  if (tokenizer_->IsSpecial(id)) {
    if (policy_ == SpecialTokenPolicy::kRaise) {
      throw InvalidArgument("cannot decode special token " + tokenizer_->IdToPiece(id) + " (id " +
                            std::to_string(id) + ") under SpecialTokenPolicy::kRaise");
    }
    // Decode ends a byte run at every special id, even an ignored one: sentencepiece
    // assembles each run of byte pieces on its own, and mistral-common's Tekken decodes the
    // groups between special ids separately. Held bytes can therefore no longer complete.
    std::string out = FlushPending();
    if (policy_ == SpecialTokenPolicy::kKeep) out += tokenizer_->IdToPiece(id);
    return out;
  }
  if (keep_writes_pieces_) {
    at_start_ = false;
    return tokenizer_->IdToPiece(id);
  }
  std::string bytes = tokenizer_->TokenBytes(id);
  if (at_start_) {
    // SentencePiece drops the dummy-prefix space of the first non-control piece only when the
    // piece itself begins with U+2581; a byte piece <0x20> or <unk>'s " ⁇ " keep their space,
    // even when the unknown piece's own text begins with U+2581. Like the library, it keeps
    // looking for that space while nothing has been written (an <unk> whose surface is empty).
    if (strips_leading_space_ && bytes.starts_with(' ') && id != tokenizer_->unk_id() &&
        tokenizer_->IdToPiece(id).starts_with(kSpaceMarker)) {
      bytes.erase(0, 1);
      // remove_extra_whitespaces: a piece that was only the space leaves the next one stripped.
      at_start_ = strips_repeated_leading_space_ && bytes.empty();
    } else if (!bytes.empty()) {
      at_start_ = false;
    }
  }
  return Feed(bytes);
}

std::string StreamingDetokenizer::Finish() {
  std::string out = FlushPending();
  Reset();
  return out;
}

void StreamingDetokenizer::Reset() {
  pending_.clear();
  at_start_ = true;
}

std::string StreamingDetokenizer::Feed(std::string_view bytes) {
  pending_.append(bytes);
  // Everything before an incomplete tail is final: a sequence that starts earlier cannot
  // continue into the tail, whose first byte is a lead byte.
  const size_t complete = CompleteUtf8Prefix(pending_);
  std::string out;
  AppendRepaired(std::string_view(pending_).substr(0, complete), out);
  pending_.erase(0, complete);
  return out;
}

std::string StreamingDetokenizer::FlushPending() {
  std::string out;
  AppendRepaired(pending_, out);
  pending_.clear();
  return out;
}

void StreamingDetokenizer::AppendRepaired(std::string_view bytes, std::string& out) const {
  if (!one_replacement_per_byte_) {
    out += ReplaceInvalidUtf8(bytes);
    return;
  }
  uint32_t code_point;
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t length = DecodeUtf8(bytes, pos, code_point);
    if (length == 0) {
      out += kReplacementCharacter;
      ++pos;
    } else {
      out.append(bytes.substr(pos, length));
      pos += length;
    }
  }
}

}  // namespace bora::tokenizer
