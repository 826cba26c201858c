// Tests the bfloat16/float32 and IEEE half/float32 conversions of base/float16.h.
#include "base/float16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace bora {
namespace {

float FromBits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t ToBits(float value) { return std::bit_cast<uint32_t>(value); }

// A bf16 pattern is NaN when its exponent is all ones and its mantissa is not zero.
bool IsBf16NaN(uint16_t bits) { return (bits & 0x7fffu) > 0x7f80u; }

TEST(Bf16ToF32Test, UpcastIsTheTopHalfOfTheFloat) {
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xc000), -2.0f);
  EXPECT_EQ(Bf16ToF32(0x4049), 3.140625f);               // 0x40490000
  EXPECT_EQ(Bf16ToF32(0x3f81), 1.0078125f);              // 1 + 2^-7
  EXPECT_EQ(Bf16ToF32(0x0001), std::ldexp(1.0f, -133));  // smallest bf16 subnormal
  EXPECT_EQ(Bf16ToF32(0x7f7f), FromBits(0x7f7f0000u));   // largest finite bf16
  EXPECT_EQ(Bf16ToF32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(Bf16ToF32(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7fc0)));
  EXPECT_TRUE(std::isnan(Bf16ToF32(0x7f81)));
  EXPECT_EQ(ToBits(Bf16ToF32(0x0000)), 0x00000000u);
  EXPECT_EQ(ToBits(Bf16ToF32(0x8000)), 0x80000000u);  // -0 keeps its sign
}

TEST(Bf16ToF32Test, EveryPatternFillsTheLowHalfWithZeros) {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    ASSERT_EQ(ToBits(Bf16ToF32(static_cast<uint16_t>(bits))), bits << 16) << std::hex << bits;
  }
}

TEST(F32ToBf16Test, ExactValuesPassThrough) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToBf16(1.0078125f), 0x3f81);
  EXPECT_EQ(F32ToBf16(0.0f), 0x0000);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
}

TEST(F32ToBf16Test, RoundsToNearest) {
  // Below and above the midpoint between 0x3f80 (1.0) and 0x3f81 (1 + 2^-7).
  EXPECT_EQ(F32ToBf16(FromBits(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(F32ToBf16(FromBits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(F32ToBf16(FromBits(0xbf807fffu)), 0xbf80);
  EXPECT_EQ(F32ToBf16(FromBits(0xbf808001u)), 0xbf81);
  // 0.1f = 0x3dcccccd and 1/3 = 0x3eaaaaab: low halves 0xcccd and 0xaaab exceed 0x8000,
  // so both round up.
  EXPECT_EQ(F32ToBf16(FromBits(0x3dcccccdu)), 0x3dcd);
  EXPECT_EQ(F32ToBf16(FromBits(0x3eaaaaabu)), 0x3eab);
  EXPECT_EQ(F32ToBf16(FromBits(0x40490fdbu)), 0x4049);  // pi: low half 0x0fdb rounds down
}

TEST(F32ToBf16Test, TiesRoundToEven) {
  // Exactly halfway: 1 + 2^-8 lies between 0x3f80 (even) and 0x3f81 (odd) -> down to 0x3f80.
  EXPECT_EQ(F32ToBf16(FromBits(0x3f808000u)), 0x3f80);
  // Exactly halfway between 0x3f81 (odd) and 0x3f82 (even) -> up to 0x3f82.
  EXPECT_EQ(F32ToBf16(FromBits(0x3f818000u)), 0x3f82);
  // Same for negative values (magnitude rounding, sign kept).
  EXPECT_EQ(F32ToBf16(FromBits(0xbf808000u)), 0xbf80);
  EXPECT_EQ(F32ToBf16(FromBits(0xbf818000u)), 0xbf82);
  // Subnormal ties: 0x00008000 -> 0x0000 (even), 0x00018000 -> 0x0002 (even).
  EXPECT_EQ(F32ToBf16(FromBits(0x00008000u)), 0x0000);
  EXPECT_EQ(F32ToBf16(FromBits(0x00018000u)), 0x0002);
  // A tie whose round-up carries into the exponent: 0x3fff8000 -> 0x4000 (2.0).
  EXPECT_EQ(F32ToBf16(FromBits(0x3fff8000u)), 0x4000);
}

TEST(F32ToBf16Test, InfinityAndOverflow) {
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // FLT_MAX is past the midpoint between 0x7f7f and 2^128, so it rounds to infinity.
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::max()), 0xff80);
  // Just below that midpoint it stays the largest finite bf16.
  EXPECT_EQ(F32ToBf16(FromBits(0x7f7f7fffu)), 0x7f7f);
}

TEST(F32ToBf16Test, NaNStaysQuietNaN) {
  const uint32_t nans[] = {
      0x7fc00000u,  // canonical quiet NaN
      0x7f800001u,  // signalling NaN whose payload is only in the low half (naive: inf)
      0x7fffffffu,  // all-ones payload (naive rounding would carry into the sign)
      0xffffffffu,  // negative, all ones (naive rounding would wrap to 0x0000)
      0xff800001u,  // negative signalling NaN
      0x7f80ffffu,
  };
  for (uint32_t bits : nans) {
    uint16_t out = F32ToBf16(FromBits(bits));
    EXPECT_TRUE(IsBf16NaN(out)) << std::hex << bits << " -> " << out;
    EXPECT_NE(out & 0x0040u, 0u) << "not quiet: " << std::hex << bits << " -> " << out;
    EXPECT_TRUE(std::isnan(Bf16ToF32(out)));
  }
}

TEST(F32ToBf16Test, RoundTripsEveryNonNaNPattern) {
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    uint16_t pattern = static_cast<uint16_t>(bits);
    uint16_t back = F32ToBf16(Bf16ToF32(pattern));
    if (IsBf16NaN(pattern)) {
      ASSERT_TRUE(IsBf16NaN(back)) << std::hex << bits;
    } else {
      ASSERT_EQ(back, pattern) << std::hex << bits;
    }
  }
}

TEST(F16ToF32Test, NormalValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x3800), 0.5f);
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);        // (1 + 341/1024) / 4 = 1365/4096
  EXPECT_EQ(F16ToF32(0x3c01), 1.0009765625f);          // 1 + 2^-10
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
}

TEST(F16ToF32Test, Subnormals) {
  EXPECT_EQ(F16ToF32(0x0001), 5.9604644775390625e-08f);  // 2^-24
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x0200), std::ldexp(1.0f, -15));     // 512 * 2^-24
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
}

TEST(F16ToF32Test, MaxInfinityNaNAndSignedZero) {
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0xfbff), -65504.0f);
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));  // signalling NaN must not become infinity
  EXPECT_TRUE(std::isnan(F16ToF32(0xfe00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7fff)));
  EXPECT_EQ(ToBits(F16ToF32(0x0000)), 0x00000000u);
  EXPECT_EQ(ToBits(F16ToF32(0x8000)), 0x80000000u);
}

TEST(F16ToF32Test, EveryPatternMatchesTheDefinition) {
  // value = (-1)^s * (e == 0 ? m * 2^-24 : (1024 + m) * 2^(e - 25)), computed in double.
  for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
    const uint32_t sign = bits >> 15;
    const int exponent = static_cast<int>((bits >> 10) & 0x1fu);
    const uint32_t mantissa = bits & 0x3ffu;
    const float got = F16ToF32(static_cast<uint16_t>(bits));
    if (exponent == 31) {
      if (mantissa == 0) {
        ASSERT_TRUE(std::isinf(got)) << std::hex << bits;
        ASSERT_EQ(std::signbit(got), sign == 1) << std::hex << bits;
      } else {
        ASSERT_TRUE(std::isnan(got)) << std::hex << bits;
      }
      continue;
    }
    double magnitude = exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)
                                     : std::ldexp(1024.0 + mantissa, exponent - 25);
    double expected = sign ? -magnitude : magnitude;
    ASSERT_EQ(static_cast<double>(got), expected) << std::hex << bits;
    ASSERT_EQ(std::signbit(got), sign == 1) << std::hex << bits;
  }
}

}  // namespace
}  // namespace bora
