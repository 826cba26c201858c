// Tests the scalar kernels (dot, axpy, row conversion, RMSNorm, RoPE, SwiGLU, softmax, argmax) on
// hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "base/dtype.h"
#include "kernels/activation.h"
#include "kernels/convert.h"
#include "kernels/dot.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

namespace bora::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// bf16 encodings (top half of the float32 pattern).
constexpr uint16_t kBf16One = 0x3f80;         // 1.0
constexpr uint16_t kBf16MinusOne = 0xbf80;    // -1.0
constexpr uint16_t kBf16Two = 0x4000;         // 2.0
constexpr uint16_t kBf16MinusThree = 0xc040;  // -3.0
// IEEE half encodings.
constexpr uint16_t kF16One = 0x3c00;         // 1.0
constexpr uint16_t kF16MinusOne = 0xbc00;    // -1.0
constexpr uint16_t kF16Two = 0x4000;         // 2.0
constexpr uint16_t kF16MinusThree = 0xc200;  // -3.0

// 1, 2, ..., n as floats.
std::vector<float> Iota(int n) {
  std::vector<float> values(static_cast<size_t>(n));
  std::iota(values.begin(), values.end(), 1.0f);
  return values;
}

// ---------------------------------------------------------------------------------------------
// DotF32 / DotBf16F32 / DotF16F32

TEST(DotF32Test, EmptyIsZero) {
  const float a[1] = {5.0f};
  const float b[1] = {7.0f};
  EXPECT_EQ(DotF32(a, b, 0), 0.0f);
}

TEST(DotF32Test, SmallExactCases) {
  {  // n = 1: 3 * -4 = -12
    const float a[] = {3.0f};
    const float b[] = {-4.0f};
    EXPECT_EQ(DotF32(a, b, 1), -12.0f);
  }
  {  // n = 7: [1..7] . [7..1] = 7 + 12 + 15 + 16 + 15 + 12 + 7 = 84
    const float a[] = {1, 2, 3, 4, 5, 6, 7};
    const float b[] = {7, 6, 5, 4, 3, 2, 1};
    EXPECT_EQ(DotF32(a, b, 7), 84.0f);
  }
  {  // n = 8: [1..8] . [1,-1,...] = (1-2) + (3-4) + (5-6) + (7-8) = -4
    const float a[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float b[] = {1, -1, 1, -1, 1, -1, 1, -1};
    EXPECT_EQ(DotF32(a, b, 8), -4.0f);
  }
  {  // n = 17: sum of squares 1..17 = 17 * 18 * 35 / 6 = 1785 (one full block plus a tail)
    std::vector<float> a = Iota(17);
    EXPECT_EQ(DotF32(a.data(), a.data(), 17), 1785.0f);
  }
  {  // Only the first n elements are read: n = 3 of [1,2,3,1000] . [1,1,1,1000] = 6
    const float a[] = {1, 2, 3, 1000};
    const float b[] = {1, 1, 1, 1000};
    EXPECT_EQ(DotF32(a, b, 3), 6.0f);
  }
}

TEST(DotF32Test, IsSymmetricBitwise) {
  // Same products, same summation order -> the same bits whichever argument comes first.
  std::vector<float> a(23), b(23);
  for (int i = 0; i < 23; ++i) {
    a[i] = 0.1f * static_cast<float>(i) - 1.3f;
    b[i] = 1.0f / static_cast<float>(i + 3);
  }
  EXPECT_EQ(DotF32(a.data(), b.data(), 23), DotF32(b.data(), a.data(), 23));
}

TEST(DotBf16F32Test, SmallExactCases) {
  const float x1[] = {5.0f};
  const uint16_t w1[] = {kBf16MinusThree};
  EXPECT_EQ(DotBf16F32(w1, x1, 0), 0.0f);
  EXPECT_EQ(DotBf16F32(w1, x1, 1), -15.0f);  // -3 * 5

  // 0x3f81 = 1 + 2^-7 (not an f16 value): 128 * (1 + 2^-7) = 129 exactly.
  const uint16_t w_fine[] = {0x3f81};
  const float x_fine[] = {128.0f};
  EXPECT_EQ(DotBf16F32(w_fine, x_fine, 1), 129.0f);

  // n = 7: w = [1, 2, 1, 2, 1, 2, 1], x = [1..7] -> 1 + 4 + 3 + 8 + 5 + 12 + 7 = 40
  const uint16_t w7[] = {kBf16One, kBf16Two, kBf16One, kBf16Two, kBf16One, kBf16Two, kBf16One};
  std::vector<float> x = Iota(17);
  EXPECT_EQ(DotBf16F32(w7, x.data(), 7), 40.0f);

  // n = 8: w = [1, -1, ...], x = [1..8] -> -4
  const uint16_t w8[] = {kBf16One, kBf16MinusOne, kBf16One, kBf16MinusOne,
                         kBf16One, kBf16MinusOne, kBf16One, kBf16MinusOne};
  EXPECT_EQ(DotBf16F32(w8, x.data(), 8), -4.0f);

  // n = 17: w = 2 except w[16] = -3, x = [1..17] -> 2 * 136 - 3 * 17 = 221
  std::vector<uint16_t> w17(17, kBf16Two);
  w17[16] = kBf16MinusThree;
  EXPECT_EQ(DotBf16F32(w17.data(), x.data(), 17), 221.0f);
}

TEST(DotF16F32Test, SmallExactCases) {
  const float x1[] = {5.0f};
  const uint16_t w1[] = {kF16MinusThree};
  EXPECT_EQ(DotF16F32(w1, x1, 0), 0.0f);
  EXPECT_EQ(DotF16F32(w1, x1, 1), -15.0f);  // -3 * 5

  // Subnormal weight 0x0001 = 2^-24 times 2^24 = 1 exactly.
  const uint16_t w_sub[] = {0x0001};
  const float x_sub[] = {16777216.0f};
  EXPECT_EQ(DotF16F32(w_sub, x_sub, 1), 1.0f);
  // 0x3c01 = 1 + 2^-10: 1024 * (1 + 2^-10) = 1025 exactly.
  const uint16_t w_fine[] = {0x3c01};
  const float x_fine[] = {1024.0f};
  EXPECT_EQ(DotF16F32(w_fine, x_fine, 1), 1025.0f);

  // n = 7: w = [1, 2, 1, 2, 1, 2, 1], x = [1..7] -> 40
  const uint16_t w7[] = {kF16One, kF16Two, kF16One, kF16Two, kF16One, kF16Two, kF16One};
  std::vector<float> x = Iota(17);
  EXPECT_EQ(DotF16F32(w7, x.data(), 7), 40.0f);

  // n = 8: w = [1, -1, ...], x = [1..8] -> -4
  const uint16_t w8[] = {kF16One, kF16MinusOne, kF16One, kF16MinusOne,
                         kF16One, kF16MinusOne, kF16One, kF16MinusOne};
  EXPECT_EQ(DotF16F32(w8, x.data(), 8), -4.0f);

  // n = 17: w = 2 except w[16] = -3, x = [1..17] -> 221
  std::vector<uint16_t> w17(17, kF16Two);
  w17[16] = kF16MinusThree;
  EXPECT_EQ(DotF16F32(w17.data(), x.data(), 17), 221.0f);
}

TEST(DotTest, AllDTypesAgreeOnTheSameValues) {
  // Weights exactly representable in all three formats: 1, 2, -1, -3 repeating.
  const int n = 29;
  std::vector<float> w32(n), x(n);
  std::vector<uint16_t> wbf(n), wf16(n);
  const float values[] = {1.0f, 2.0f, -1.0f, -3.0f};
  const uint16_t bf[] = {kBf16One, kBf16Two, kBf16MinusOne, kBf16MinusThree};
  const uint16_t hf[] = {kF16One, kF16Two, kF16MinusOne, kF16MinusThree};
  for (int i = 0; i < n; ++i) {
    w32[i] = values[i % 4];
    wbf[i] = bf[i % 4];
    wf16[i] = hf[i % 4];
    x[i] = 0.37f * static_cast<float>(i) - 2.1f;  // not integers: rounding happens
  }
  const float f32 = DotF32(w32.data(), x.data(), n);
  EXPECT_EQ(DotBf16F32(wbf.data(), x.data(), n), f32);
  EXPECT_EQ(DotF16F32(wf16.data(), x.data(), n), f32);
}

// ---------------------------------------------------------------------------------------------
// Axpy

TEST(AxpyTest, AddsScaledVector) {
  const float x[] = {1, 2, 3, 4};
  float y[] = {10, 20, 30, 40};
  Axpy(2.0f, x, y, 3);  // [10 + 2, 20 + 4, 30 + 6], y[3] untouched
  EXPECT_EQ(y[0], 12.0f);
  EXPECT_EQ(y[1], 24.0f);
  EXPECT_EQ(y[2], 36.0f);
  EXPECT_EQ(y[3], 40.0f);
  Axpy(-0.5f, x, y, 4);  // [12 - 0.5, 24 - 1, 36 - 1.5, 40 - 2]
  EXPECT_EQ(y[0], 11.5f);
  EXPECT_EQ(y[1], 23.0f);
  EXPECT_EQ(y[2], 34.5f);
  EXPECT_EQ(y[3], 38.0f);
  Axpy(100.0f, x, y, 0);  // no-op
  EXPECT_EQ(y[0], 11.5f);
}

// ---------------------------------------------------------------------------------------------
// RowToF32

TEST(RowToF32Test, F32IsCopied) {
  const float src[] = {1.5f, -2.0f, 0.0f, kInf};
  float dst[5] = {9, 9, 9, 9, 9};
  RowToF32(DType::kF32, src, dst, 4);
  EXPECT_EQ(dst[0], 1.5f);
  EXPECT_EQ(dst[1], -2.0f);
  EXPECT_EQ(dst[2], 0.0f);
  EXPECT_EQ(dst[3], kInf);
  EXPECT_EQ(dst[4], 9.0f);  // nothing past n is written
}

TEST(RowToF32Test, Bf16IsUpcast) {
  // 0x3f80 = 1, 0xc040 = -3, 0x3f81 = 1 + 2^-7, 0x7f80 = inf, 0x8000 = -0
  const uint16_t src[] = {0x3f80, 0xc040, 0x3f81, 0x7f80, 0x8000};
  float dst[6] = {9, 9, 9, 9, 9, 9};
  RowToF32(DType::kBF16, src, dst, 5);
  EXPECT_EQ(dst[0], 1.0f);
  EXPECT_EQ(dst[1], -3.0f);
  EXPECT_EQ(dst[2], 1.0078125f);
  EXPECT_EQ(dst[3], kInf);
  EXPECT_EQ(dst[4], 0.0f);
  EXPECT_TRUE(std::signbit(dst[4]));
  EXPECT_EQ(dst[5], 9.0f);
}

TEST(RowToF32Test, F16IsUpcast) {
  // 0x3c00 = 1, 0xc200 = -3, 0x0001 = 2^-24, 0x7bff = 65504, 0xfc00 = -inf
  const uint16_t src[] = {0x3c00, 0xc200, 0x0001, 0x7bff, 0xfc00};
  float dst[6] = {9, 9, 9, 9, 9, 9};
  RowToF32(DType::kF16, src, dst, 5);
  EXPECT_EQ(dst[0], 1.0f);
  EXPECT_EQ(dst[1], -3.0f);
  EXPECT_EQ(dst[2], 5.9604644775390625e-08f);
  EXPECT_EQ(dst[3], 65504.0f);
  EXPECT_EQ(dst[4], -kInf);
  EXPECT_EQ(dst[5], 9.0f);
}

// ---------------------------------------------------------------------------------------------
// RmsNorm

TEST(RmsNormTest, ThreeFourUnitWeights) {
  // mean(x^2) = (9 + 16) / 2 = 12.5, rms = sqrt(12.5) = 5 / sqrt(2):
  // out = [3 sqrt(2) / 5, 4 sqrt(2) / 5] = [0.848528137423857, 1.131370849898476]
  const float x[] = {3.0f, 4.0f};
  const float w[] = {1.0f, 1.0f};
  float out[2];
  RmsNorm(x, w, out, 2, 0.0f);
  EXPECT_FLOAT_EQ(out[0], 0.848528137423857f);
  EXPECT_FLOAT_EQ(out[1], 1.131370849898476f);
}

TEST(RmsNormTest, WeightsScaleAfterNormalising) {
  // Same x, weights [2, -0.5]: [2 * 0.848528137423857, -0.5 * 1.131370849898476]
  const float x[] = {3.0f, 4.0f};
  const float w[] = {2.0f, -0.5f};
  float out[2];
  RmsNorm(x, w, out, 2, 0.0f);
  EXPECT_FLOAT_EQ(out[0], 1.697056274847714f);
  EXPECT_FLOAT_EQ(out[1], -0.565685424949238f);
}

TEST(RmsNormTest, EpsilonIsAddedInsideTheRoot) {
  // x = [1, 1, 1, 1]: mean(x^2) = 1; eps = 3 -> 1 / sqrt(4) = 0.5 exactly.
  const float x[] = {1, 1, 1, 1};
  const float w[] = {1, 2, 4, -8};
  float out[4];
  RmsNorm(x, w, out, 4, 3.0f);
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 2.0f);
  EXPECT_EQ(out[3], -4.0f);
}

TEST(RmsNormTest, ZeroInputWithEpsilonIsZero) {
  const float x[] = {0, 0, 0};
  const float w[] = {1, 1, 1};
  float out[3] = {9, 9, 9};
  RmsNorm(x, w, out, 3, 1e-5f);
  for (float value : out) EXPECT_EQ(value, 0.0f);
}

TEST(RmsNormTest, SingleElementAndInPlace) {
  // n = 1: x / |x| * w -> -2 / 2 * 3 = -3; computed in place (out aliases x).
  float x[] = {-2.0f};
  const float w[] = {3.0f};
  RmsNorm(x, w, x, 1, 0.0f);
  EXPECT_EQ(x[0], -3.0f);
}

TEST(RmsNormTest, IsScaleInvariant) {
  // x = [3e10, 4e10] normalises to the same [3 sqrt(2) / 5, 4 sqrt(2) / 5] as [3, 4].
  const float x[] = {3e10f, 4e10f};
  const float w[] = {1.0f, 1.0f};
  float out[2];
  RmsNorm(x, w, out, 2, 0.0f);
  EXPECT_FLOAT_EQ(out[0], 0.848528137423857f);
  EXPECT_FLOAT_EQ(out[1], 1.131370849898476f);
}

// ---------------------------------------------------------------------------------------------
// RopeInterleaved

TEST(RopeInterleavedTest, QuarterTurn) {
  // cos 90 = 0, sin 90 = 1: (re, im) -> (re * 0 - im * 1, re * 1 + im * 0) = (-im, re).
  const float cos_sin[] = {0.0f, 1.0f};
  float x[] = {1.0f, 0.0f};
  RopeInterleaved(x, cos_sin, 1, 2);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
  RopeInterleaved(x, cos_sin, 1, 2);  // (0, 1) -> (-1, 0)
  EXPECT_EQ(x[0], -1.0f);
  EXPECT_EQ(x[1], 0.0f);
}

TEST(RopeInterleavedTest, HeadsShareAngles) {
  // Two heads of dimension 2, one angle of 90 degrees: (1, 0) -> (0, 1); (2, 3) -> (-3, 2).
  const float cos_sin[] = {0.0f, 1.0f};
  float x[] = {1.0f, 0.0f, 2.0f, 3.0f};
  RopeInterleaved(x, cos_sin, 2, 2);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[2], -3.0f);
  EXPECT_EQ(x[3], 2.0f);
}

TEST(RopeInterleavedTest, HeadDimFourWithTwoAngles) {
  // Pair 0: cos = 0.6, sin = 0.8 (a 3-4-5 triangle); pair 1: -90 degrees (cos 0, sin -1).
  // Pair 0: (re, im) -> (0.6 re - 0.8 im, 0.8 re + 0.6 im); pair 1: (re, im) -> (im, -re).
  // Head 0 = [1, 2, 3, 4]: (0.6 - 1.6, 0.8 + 1.2) = (-1, 2); (3, 4) -> (4, -3).
  // Head 1 = [5, 0, 0, 7]: (3, 4); (0, 7) -> (7, 0).
  const float cos_sin[] = {0.6f, 0.8f, 0.0f, -1.0f};
  float x[] = {1, 2, 3, 4, 5, 0, 0, 7};
  RopeInterleaved(x, cos_sin, 2, 4);
  const float expected[] = {-1, 2, 4, -3, 3, 4, 7, 0};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(x[i], expected[i], 1e-6f) << i;
  // Pair 1 involves only multiplications by 0 and -1: exact.
  EXPECT_EQ(x[2], 4.0f);
  EXPECT_EQ(x[3], -3.0f);
  EXPECT_EQ(x[6], 7.0f);
  EXPECT_EQ(x[7], 0.0f);
}

TEST(RopeInterleavedTest, IdentityAngleLeavesValuesUnchanged) {
  const float cos_sin[] = {1.0f, 0.0f, 1.0f, 0.0f};
  float x[] = {0.1f, -0.2f, 0.3f, 7.5f};
  const float before[] = {0.1f, -0.2f, 0.3f, 7.5f};
  RopeInterleaved(x, cos_sin, 1, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(x[i], before[i]);
}

// ---------------------------------------------------------------------------------------------
// SwiGlu

TEST(SwiGluTest, HandComputedValues) {
  // silu(g) = g / (1 + e^-g):
  //   silu(0) * 5 = 0
  //   silu(1) * 1 = 1 / (1 + e^-1) = e / (e + 1) = 0.7310585786300049
  //   silu(-1) * 2 = -2 / (1 + e) = -0.5378828427399902
  //   silu(2) * 0.5 = 1 / (1 + e^-2) = 0.8807970779778823
  const float gate[] = {0.0f, 1.0f, -1.0f, 2.0f};
  const float up[] = {5.0f, 1.0f, 2.0f, 0.5f};
  float out[4];
  SwiGlu(gate, up, out, 4);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 0.7310585786300049f);
  EXPECT_FLOAT_EQ(out[2], -0.5378828427399902f);
  EXPECT_FLOAT_EQ(out[3], 0.8807970779778823f);
}

TEST(SwiGluTest, ExtremeGatesStayFinite) {
  // silu(100) = 100 (to float precision); silu(-100) ~ -3.7e-42 ~ 0; silu(-1000): e^1000 = inf,
  // -1000 / inf = -0 (not NaN).
  const float gate[] = {100.0f, -100.0f, -1000.0f};
  const float up[] = {1.0f, 1.0f, 1.0f};
  float out[3];
  SwiGlu(gate, up, out, 3);
  EXPECT_FLOAT_EQ(out[0], 100.0f);
  EXPECT_NEAR(out[1], 0.0f, 1e-30f);
  EXPECT_EQ(out[2], 0.0f);
  for (float value : out) EXPECT_FALSE(std::isnan(value));
}

TEST(SwiGluTest, OutputMayAliasGate) {
  float gate[] = {1.0f, 0.0f};
  const float up[] = {1.0f, 3.0f};
  SwiGlu(gate, up, gate, 2);
  EXPECT_FLOAT_EQ(gate[0], 0.7310585786300049f);
  EXPECT_EQ(gate[1], 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Softmax

TEST(SoftmaxTest, UniformInputs) {
  float x[] = {5.0f, 5.0f, 5.0f, 5.0f};
  Softmax(x, 4);
  for (float value : x) EXPECT_EQ(value, 0.25f);  // e^0 / 4, exact
}

TEST(SoftmaxTest, SingleElementIsOne) {
  float x[] = {-123.0f};
  Softmax(x, 1);
  EXPECT_EQ(x[0], 1.0f);
}

TEST(SoftmaxTest, LargeValuesDoNotOverflow) {
  // softmax([1000, 1001]) = [1 / (1 + e), e / (1 + e)] = [0.2689414213699951, 0.7310585786300049]
  float x[] = {1000.0f, 1001.0f};
  Softmax(x, 2);
  EXPECT_FLOAT_EQ(x[0], 0.2689414213699951f);
  EXPECT_FLOAT_EQ(x[1], 0.7310585786300049f);
}

TEST(SoftmaxTest, LargeNegativeValuesDoNotUnderflowToNaN) {
  float x[] = {-1000.0f, -1000.0f};
  Softmax(x, 2);
  EXPECT_EQ(x[0], 0.5f);
  EXPECT_EQ(x[1], 0.5f);
}

TEST(SoftmaxTest, KnownRatio) {
  // [0, ln 3] -> [1/4, 3/4]; a -inf entry gets weight 0.
  float x[] = {0.0f, std::log(3.0f), -kInf};
  Softmax(x, 3);
  EXPECT_FLOAT_EQ(x[0], 0.25f);
  EXPECT_FLOAT_EQ(x[1], 0.75f);
  EXPECT_EQ(x[2], 0.0f);
}

TEST(SoftmaxTest, SumsToOneAndPreservesOrder) {
  std::vector<float> x(37);
  for (int i = 0; i < 37; ++i) x[i] = std::sin(static_cast<float>(i) * 1.7f) * 8.0f;
  std::vector<float> before = x;
  Softmax(x.data(), 37);
  double sum = 0.0;
  for (int i = 0; i < 37; ++i) {
    EXPECT_GT(x[i], 0.0f);
    EXPECT_LE(x[i], 1.0f);
    sum += x[i];
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  for (int i = 1; i < 37; ++i) {
    if (before[i] > before[i - 1]) {
      EXPECT_GT(x[i], x[i - 1]) << i;
    } else if (before[i] < before[i - 1]) {
      EXPECT_LT(x[i], x[i - 1]) << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ArgMax

TEST(ArgMaxTest, PicksTheLargest) {
  const float x[] = {1.0f, -2.0f, 7.5f, 3.0f};
  EXPECT_EQ(ArgMax(x, 4), 2);
  EXPECT_EQ(ArgMax(x, 2), 0);  // only the first n are considered
  EXPECT_EQ(ArgMax(x, 1), 0);
}

TEST(ArgMaxTest, FirstOnTies) {
  const float x[] = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(ArgMax(x, 4), 1);
  const float negative_inf[] = {-kInf, -kInf, -kInf};
  EXPECT_EQ(ArgMax(negative_inf, 3), 0);
}

TEST(ArgMaxTest, NaNIsIgnored) {
  const float leading[] = {kNaN, 1.0f, 2.0f};
  EXPECT_EQ(ArgMax(leading, 3), 2);
  const float middle[] = {1.0f, kNaN, 0.0f};
  EXPECT_EQ(ArgMax(middle, 3), 0);
  const float before_max[] = {2.0f, kNaN, 5.0f};
  EXPECT_EQ(ArgMax(before_max, 3), 2);
  // NaN is smaller than everything, even -inf; the first -inf wins.
  const float against_inf[] = {kNaN, -kInf, -kInf};
  EXPECT_EQ(ArgMax(against_inf, 3), 1);
}

}  // namespace
}  // namespace bora::kernels
