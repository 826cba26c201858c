// Exact conversions between 16-bit floats (bfloat16, IEEE half) and float32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace bora {

// bfloat16 is the top half of a float32, so the upcast is exact.
inline float Bf16ToF32(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}

// Round-to-nearest-even, as torch's `.to(torch.bfloat16)`; NaN stays a quiet NaN.
inline uint16_t F32ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// IEEE 754 binary16 to float32, exact for every input including subnormals, inf and NaN.
inline float F16ToF32(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t out_bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      out_bits = sign;
    } else {  // subnormal: value = mantissa * 2^-24, exactly representable in float32
      float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
      std::memcpy(&out_bits, &magnitude, sizeof(out_bits));
      out_bits |= sign;
    }
  } else if (exponent == 31) {
    out_bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    out_bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &out_bits, sizeof(out));
  return out;
}

// float32 to IEEE binary16, round-to-nearest-even (as F16C's vcvtps2ph with imm 0); values
// beyond the half range become infinity, NaN stays a quiet NaN.
inline uint16_t F32ToF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (magnitude < 0x38800000u) {  // below the smallest normal half 2^-14: subnormal or zero
    // value / 2^-24 rounded to an integer mantissa; exact float arithmetic then rint (ties even).
    float scaled;
    uint32_t m = magnitude;
    std::memcpy(&scaled, &m, sizeof(scaled));
    scaled = std::nearbyint(std::ldexp(scaled, 24));
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(scaled));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

}  // namespace bora
