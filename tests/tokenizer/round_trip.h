// What decode(encode(text)) gives for texts with invalid UTF-8 or U+2581, per backend.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/utf8.h"

namespace bora::tokenizer {

// SentencePiece: every byte outside a well-formed UTF-8 sequence becomes one U+FFFD (the
// library's normalizer repair) and U+2581 reads back as a space.
inline std::string SentencePieceRoundTrip(std::string_view text) {
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    uint32_t code_point;
    const size_t length = DecodeUtf8(text, pos, code_point);
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      ++pos;
    } else {
      out += code_point == 0x2581 ? std::string(" ") : std::string(text.substr(pos, length));
      pos += length;
    }
  }
  return out;
}

}  // namespace bora::tokenizer
