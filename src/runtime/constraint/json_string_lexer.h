// Byte-level DFA for the content of a JSON string literal: escapes, valid UTF-8 only (no
// overlong forms, no surrogates, nothing past U+10FFFF), no control characters.
#pragma once

#include <array>
#include <cstdint>

namespace bora::runtime::constraint {

// Sub-states inside a string literal, after its opening quote.
enum JsonStringSub : uint8_t {
  kStrNormal = 0,  // between characters
  kStrCont1,       // one UTF-8 continuation byte (80..BF) left
  kStrCont2,       // two left
  kStrCont3,       // three left
  kStrE0,          // after E0: A0..BF, then one more
  kStrED,          // after ED: 80..9F (no surrogates), then one more
  kStrF0,          // after F0: 90..BF, then two more
  kStrF4,          // after F4: 80..8F (<= U+10FFFF), then two more
  kStrEscape,      // after a backslash
  kStrU1,          // \u, expecting the first of four hex digits
  kStrU2,          // second hex digit
  kStrU2D,         // second hex digit after 'D': 0..7 only (escaped surrogates are refused)
  kStrU3,          // third
  kStrU4,          // fourth
  kStrSubCount,
};

// One transition: the next sub-state and flags.
struct JsonStringStep {
  uint8_t next = 0;
  bool reject = true;   // the byte cannot come here
  bool starts = false;  // the byte starts a new character (counted against maxLength)
  bool closes = false;  // the closing quote: the literal ends with this byte
};

namespace internal {

constexpr bool IsHex(int b) {
  return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

constexpr JsonStringStep Go(uint8_t next, bool starts = false) {
  return {next, false, starts, false};
}

constexpr JsonStringStep Transition(int sub, int b) {
  switch (sub) {
    case kStrNormal:
      if (b == '"') return {kStrNormal, false, false, true};
      if (b == '\\') return Go(kStrEscape, true);
      if (b >= 0x20 && b < 0x80) return Go(kStrNormal, true);
      if (b >= 0xC2 && b <= 0xDF) return Go(kStrCont1, true);
      if (b == 0xE0) return Go(kStrE0, true);
      if (b == 0xED) return Go(kStrED, true);
      if (b >= 0xE1 && b <= 0xEF) return Go(kStrCont2, true);
      if (b == 0xF0) return Go(kStrF0, true);
      if (b >= 0xF1 && b <= 0xF3) return Go(kStrCont3, true);
      if (b == 0xF4) return Go(kStrF4, true);
      return {};
    case kStrCont1:
      return b >= 0x80 && b <= 0xBF ? Go(kStrNormal) : JsonStringStep{};
    case kStrCont2:
      return b >= 0x80 && b <= 0xBF ? Go(kStrCont1) : JsonStringStep{};
    case kStrCont3:
      return b >= 0x80 && b <= 0xBF ? Go(kStrCont2) : JsonStringStep{};
    case kStrE0:
      return b >= 0xA0 && b <= 0xBF ? Go(kStrCont1) : JsonStringStep{};
    case kStrED:
      return b >= 0x80 && b <= 0x9F ? Go(kStrCont1) : JsonStringStep{};
    case kStrF0:
      return b >= 0x90 && b <= 0xBF ? Go(kStrCont2) : JsonStringStep{};
    case kStrF4:
      return b >= 0x80 && b <= 0x8F ? Go(kStrCont2) : JsonStringStep{};
    case kStrEscape:
      if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' ||
          b == 't') {
        return Go(kStrNormal);
      }
      return b == 'u' ? Go(kStrU1) : JsonStringStep{};
    case kStrU1:
      if (b == 'd' || b == 'D') return Go(kStrU2D);
      return IsHex(b) ? Go(kStrU2) : JsonStringStep{};
    case kStrU2:
      return IsHex(b) ? Go(kStrU3) : JsonStringStep{};
    case kStrU2D:
      return b >= '0' && b <= '7' ? Go(kStrU3) : JsonStringStep{};
    case kStrU3:
      return IsHex(b) ? Go(kStrU4) : JsonStringStep{};
    case kStrU4:
      return IsHex(b) ? Go(kStrNormal) : JsonStringStep{};
    default:
      return {};
  }
}

constexpr std::array<std::array<JsonStringStep, 256>, kStrSubCount> MakeTable() {
  std::array<std::array<JsonStringStep, 256>, kStrSubCount> table{};
  for (int sub = 0; sub < kStrSubCount; ++sub) {
    for (int b = 0; b < 256; ++b) table[sub][b] = Transition(sub, b);
  }
  return table;
}

inline constexpr std::array<std::array<JsonStringStep, 256>, kStrSubCount> kJsonStringTable =
    MakeTable();

}  // namespace internal

inline const JsonStringStep& JsonStringTransition(uint8_t sub, uint8_t byte) {
  return internal::kJsonStringTable[sub][byte];
}

}  // namespace bora::runtime::constraint
