// UTF-8 validation and repair following Unicode's table of well-formed byte sequences.
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

// For a lead byte: the sequence length (0 if it cannot start one) and the allowed range of
// the second byte (later bytes are always 0x80..0xBF).
struct LeadInfo {
  int length;
  uint8_t second_min;
  uint8_t second_max;
};

LeadInfo InfoForLead(uint8_t lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead < 0xC2) return {0, 0, 0};
  if (lead < 0xE0) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead < 0xF0) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead < 0xF4) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes at text[pos] that form a valid (possibly incomplete) prefix of a sequence,
// and whether the sequence is complete.
size_t ValidPrefixLength(std::string_view text, size_t pos, bool& complete) {
  LeadInfo info = InfoForLead(static_cast<uint8_t>(text[pos]));
  complete = false;
  if (info.length == 0) return 0;
  if (info.length == 1) {
    complete = true;
    return 1;
  }
  size_t count = 1;
  for (int i = 1; i < info.length; ++i) {
    if (pos + i >= text.size()) return count;
    uint8_t byte = static_cast<uint8_t>(text[pos + i]);
    uint8_t low = i == 1 ? info.second_min : 0x80;
    uint8_t high = i == 1 ? info.second_max : 0xBF;
    if (byte < low || byte > high) return count;
    ++count;
  }
  complete = true;
  return count;
}

}  // namespace

size_t DecodeUtf8(std::string_view text, size_t pos, uint32_t& code_point) {
  bool complete;
  size_t length = ValidPrefixLength(text, pos, complete);
  if (!complete) return 0;
  const auto byte = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(text[pos + i]));
  };
  switch (length) {
    case 1:
      code_point = byte(0);
      break;
    case 2:
      code_point = ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
      break;
    case 3:
      code_point = ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
      break;
    default:
      code_point = ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
                   (byte(3) & 0x3F);
  }
  return length;
}

void AppendUtf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

size_t CompleteUtf8Prefix(std::string_view bytes) {
  // Only the last three bytes can belong to an unfinished sequence.
  size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = start; pos < bytes.size(); ++pos) {
    bool complete;
    size_t length = ValidPrefixLength(bytes, pos, complete);
    if (length > 0 && !complete && pos + length == bytes.size()) return pos;
  }
  return bytes.size();
}

std::string ReplaceInvalidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete;
    size_t length = ValidPrefixLength(bytes, pos, complete);
    if (complete) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else {
      out += "\xEF\xBF\xBD";
      pos += length == 0 ? 1 : length;
    }
  }
  return out;
}

}  // namespace bora::tokenizer
