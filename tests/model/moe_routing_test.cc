// Tests the Mixtral router RouteTopK and the RoPE frequency table RopeTable on hand-computed cases.
#include "model/moe_routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "model/rope_table.h"

namespace bora::model {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs RouteTopK with guard entries after the k outputs, which must stay untouched.
struct Routed {
  std::vector<int32_t> chosen;
  std::vector<float> weights;
};
Routed Route(const std::vector<float>& logits, int64_t top_k) {
  std::vector<int32_t> chosen(static_cast<size_t>(top_k) + 1, -99);
  std::vector<float> weights(static_cast<size_t>(top_k) + 1, -99.0f);
  RouteTopK(logits.data(), static_cast<int64_t>(logits.size()), top_k, chosen.data(),
            weights.data());
  EXPECT_EQ(chosen.back(), -99) << "wrote past top_k";
  EXPECT_EQ(weights.back(), -99.0f) << "wrote past top_k";
  chosen.pop_back();
  weights.pop_back();
  return {chosen, weights};
}

TEST(RouteTopKTest, TopTwoOfFour) {
  // Largest logits: 2.0 (expert 1), then 1.0 (expert 3).
  // Weights softmax([2, 1]) = [e / (e + 1), 1 / (e + 1)] = [0.7310585786300049, 0.2689414213699951]
  Routed r = Route({0.1f, 2.0f, -1.0f, 1.0f}, 2);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1, 3}));
  EXPECT_FLOAT_EQ(r.weights[0], 0.7310585786300049f);
  EXPECT_FLOAT_EQ(r.weights[1], 0.2689414213699951f);
  EXPECT_NEAR(r.weights[0] + r.weights[1], 1.0f, 1e-7f);
}

TEST(RouteTopKTest, TopOneHasWeightExactlyOne) {
  Routed r = Route({0.1f, 2.0f, -1.0f, 1.0f}, 1);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1}));
  EXPECT_EQ(r.weights[0], 1.0f);
  // Also when the winner is the last expert and the logits are large.
  Routed last = Route({-5.0f, 100.0f, 3.0f, 250.0f}, 1);
  EXPECT_EQ(last.chosen, (std::vector<int32_t>{3}));
  EXPECT_EQ(last.weights[0], 1.0f);
}

TEST(RouteTopKTest, TiesPickTheLowerIndexFirst) {
  // Experts 1 and 2 tie at 3: 1 comes first; equal logits -> equal weights 1/2.
  Routed r = Route({1.0f, 3.0f, 3.0f, 0.0f}, 2);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(r.weights[0], 0.5f);
  EXPECT_EQ(r.weights[1], 0.5f);
  // All equal: the first k in index order.
  Routed all = Route({5.0f, 5.0f, 5.0f, 5.0f, 5.0f}, 3);
  EXPECT_EQ(all.chosen, (std::vector<int32_t>{0, 1, 2}));
  for (float weight : all.weights) EXPECT_FLOAT_EQ(weight, 1.0f / 3.0f);
  // A tie for second place: experts 0 and 3 both have 1.0 -> 0 before 3.
  Routed second = Route({1.0f, 2.0f, -1.0f, 1.0f}, 2);
  EXPECT_EQ(second.chosen, (std::vector<int32_t>{1, 0}));
}

TEST(RouteTopKTest, NaNLogitIsNeverChosenWhenOthersExist) {
  // NaN first: it must lose to everything.
  Routed leading = Route({kNaN, 1.0f, 0.0f}, 1);
  EXPECT_EQ(leading.chosen, (std::vector<int32_t>{1}));
  EXPECT_EQ(leading.weights[0], 1.0f);
  // NaN between valid experts, k = 2: the two valid ones in order, finite weights.
  Routed middle = Route({1.0f, kNaN, 2.0f}, 2);
  EXPECT_EQ(middle.chosen, (std::vector<int32_t>{2, 0}));
  EXPECT_FLOAT_EQ(middle.weights[0], 0.7310585786300049f);  // e / (e + 1)
  EXPECT_FLOAT_EQ(middle.weights[1], 0.2689414213699951f);
  // Two NaNs, k = 2: the two valid experts, even the one at -3.
  Routed two = Route({kNaN, 0.5f, kNaN, -3.0f}, 2);
  EXPECT_EQ(two.chosen, (std::vector<int32_t>{1, 3}));
  for (float weight : two.weights) EXPECT_FALSE(std::isnan(weight));
  EXPECT_NEAR(two.weights[0] + two.weights[1], 1.0f, 1e-6f);
  // NaN loses even against -inf.
  Routed against_inf = Route({kNaN, -kInf}, 1);
  EXPECT_EQ(against_inf.chosen, (std::vector<int32_t>{1}));
}

TEST(RouteTopKTest, NegativeInfinityGetsZeroWeight) {
  // softmax([0, -inf]) = [1, 0].
  Routed r = Route({-kInf, 0.0f, -kInf}, 2);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(r.weights[0], 1.0f);
  EXPECT_EQ(r.weights[1], 0.0f);
}

TEST(RouteTopKTest, KEqualsExpertsIsTheFullSoftmax) {
  // Sorted: 2.0 (1), 1.0 (3), 0.1 (0), -1.0 (2). With m = 2:
  // e^0 = 1, e^-1 = 0.36787944117, e^-1.9 = 0.14956861922, e^-3 = 0.04978706837,
  // sum = 1.56723512876 -> [0.6380663511479376, 0.2347314926906046, 0.09543470311362204,
  //                         0.031767453047835854]
  Routed r = Route({0.1f, 2.0f, -1.0f, 1.0f}, 4);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1, 3, 0, 2}));
  EXPECT_FLOAT_EQ(r.weights[0], 0.6380663511479376f);
  EXPECT_FLOAT_EQ(r.weights[1], 0.2347314926906046f);
  EXPECT_FLOAT_EQ(r.weights[2], 0.09543470311362204f);
  EXPECT_FLOAT_EQ(r.weights[3], 0.031767453047835854f);
}

TEST(RouteTopKTest, LargeLogitsDoNotOverflow) {
  // softmax([1001, 1000]) = [e / (e + 1), 1 / (e + 1)]: the max is subtracted first.
  Routed r = Route({1000.0f, 1001.0f, -5.0f}, 2);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{1, 0}));
  EXPECT_FLOAT_EQ(r.weights[0], 0.7310585786300049f);
  EXPECT_FLOAT_EQ(r.weights[1], 0.2689414213699951f);
}

TEST(RouteTopKTest, EightExpertsTopTwo) {
  // Mixtral's shape: 8 experts, k = 2. Best: 0.9 (6), then 0.8 (2);
  // softmax([0.9, 0.8]) = [1 / (1 + e^-0.1), e^-0.1 / (1 + e^-0.1)]
  //                     = [0.52497918747894, 0.47502081252106]
  Routed r = Route({0.1f, -0.3f, 0.8f, 0.0f, -2.0f, 0.5f, 0.9f, 0.7f}, 2);
  EXPECT_EQ(r.chosen, (std::vector<int32_t>{6, 2}));
  EXPECT_NEAR(r.weights[0], 0.52497918747894f, 1e-6f);
  EXPECT_NEAR(r.weights[1], 0.47502081252106f, 1e-6f);
}

// ---------------------------------------------------------------------------------------------
// RopeTable

// Parameters with only what the rotary table reads: theta and head_dim (no YaRN).
formats::ModelParams RopeParams(double theta, int64_t head_dim) {
  formats::ModelParams params;
  params.rope_theta = theta;
  params.head_dim = head_dim;
  return params;
}

// Element (position, pair, 0 = cos / 1 = sin) of a [positions, head_dim / 2, 2] table.
float At(const std::vector<float>& table, int64_t head_dim, int64_t position, int64_t pair,
         int component) {
  return table[static_cast<size_t>((position * (head_dim / 2) + pair) * 2 + component)];
}

// YaRN's attention factor multiplies cos and sin (so q.k by its square); the llama-4 query
// temperature steps at multiples of its original context, from 0-based positions.
TEST(RopeTableTest, YarnMagnitudeAndQueryTemperature) {
  formats::ModelParams params = RopeParams(1e6, 8);
  params.yarn = formats::YarnParams{16.0, 32, 32.0, 1.0, true, 0.1 * std::log(16.0) + 1.0};
  const std::vector<float> table = RopeTable(params, 40);
  for (int64_t pos : {0, 1, 39}) {
    for (int64_t pair = 0; pair < 4; ++pair) {
      const float c = At(table, 8, pos, pair, 0), s = At(table, 8, pos, pair, 1);
      EXPECT_NEAR(std::sqrt(c * c + s * s), 0.1 * std::log(16.0) + 1.0, 1e-6) << pos << " " << pair;
    }
  }
  // Pair 0 keeps theta's frequency (1), the last pair is divided by the factor.
  const std::vector<float> inv_freq = RopeInverseFrequencies(params);
  EXPECT_FLOAT_EQ(inv_freq[0], 1.0f);
  EXPECT_FLOAT_EQ(inv_freq[3], std::pow(1e6f, -6.0f / 8.0f) / 16.0f);
  EXPECT_EQ(QueryScale(params, 100), 1.0f);  // no llama_4_scaling
  params.llama4_scaling = formats::Llama4Scaling{0.1, 32};
  EXPECT_EQ(QueryScale(params, 31), 1.0f);
  EXPECT_FLOAT_EQ(QueryScale(params, 32), 1.0f + 0.1f * std::log(2.0f));
  EXPECT_FLOAT_EQ(QueryScale(params, 95), 1.0f + 0.1f * std::log(3.0f));
}

TEST(RopeTableTest, ThetaOneMillionHeadDimFour) {
  // Frequencies theta^(-2i/d): i = 0 -> 1, i = 1 -> 1e6^(-1/2) = 1e-3.
  const std::vector<float> table = RopeTable(RopeParams(1e6, 4), 3);
  ASSERT_EQ(table.size(), 3u * 2u * 2u);
  // Position 0: every angle is 0 -> cos 1, sin 0, exactly.
  for (int64_t pair = 0; pair < 2; ++pair) {
    EXPECT_EQ(At(table, 4, 0, pair, 0), 1.0f);
    EXPECT_EQ(At(table, 4, 0, pair, 1), 0.0f);
  }
  // Position 1: angles 1 and 0.001.
  EXPECT_FLOAT_EQ(At(table, 4, 1, 0, 0), 0.5403023058681398f);     // cos 1
  EXPECT_FLOAT_EQ(At(table, 4, 1, 0, 1), 0.8414709848078965f);     // sin 1
  EXPECT_FLOAT_EQ(At(table, 4, 1, 1, 0), 0.9999995000000417f);     // cos 0.001
  EXPECT_FLOAT_EQ(At(table, 4, 1, 1, 1), 0.0009999998333333417f);  // sin 0.001
  // Position 2: angles 2 and 0.002.
  EXPECT_FLOAT_EQ(At(table, 4, 2, 0, 0), -0.4161468365471424f);    // cos 2
  EXPECT_FLOAT_EQ(At(table, 4, 2, 0, 1), 0.9092974268256817f);     // sin 2
  EXPECT_FLOAT_EQ(At(table, 4, 2, 1, 0), 0.9999980000006666f);     // cos 0.002
  EXPECT_FLOAT_EQ(At(table, 4, 2, 1, 1), 0.0019999986666669333f);  // sin 0.002
}

TEST(RopeTableTest, ThetaTenThousandHeadDimFour) {
  // i = 1 of head_dim 4 with theta 1e4: 1e4^(-1/2) = 1e-2, so position 2 has angle 0.02.
  const std::vector<float> table = RopeTable(RopeParams(1e4, 4), 3);
  EXPECT_FLOAT_EQ(At(table, 4, 1, 1, 0), 0.9999500004166653f);    // cos 0.01
  EXPECT_FLOAT_EQ(At(table, 4, 1, 1, 1), 0.009999833334166664f);  // sin 0.01
  EXPECT_FLOAT_EQ(At(table, 4, 2, 1, 0), 0.9998000066665778f);    // cos 0.02
  EXPECT_FLOAT_EQ(At(table, 4, 2, 1, 1), 0.01999866669333308f);   // sin 0.02
  // Pair 0 has frequency 1 whatever theta is.
  EXPECT_FLOAT_EQ(At(table, 4, 2, 0, 0), -0.4161468365471424f);
  EXPECT_FLOAT_EQ(At(table, 4, 2, 0, 1), 0.9092974268256817f);
}

TEST(RopeTableTest, LargePositionUsesAFloatAngle) {
  // Position 1000, frequency 1: angle 1000 (exact in float) -> cos 0.5623790762907029,
  // sin 0.8268795405320025.
  const std::vector<float> table = RopeTable(RopeParams(1e4, 4), 1001);
  EXPECT_FLOAT_EQ(At(table, 4, 1000, 0, 0), 0.5623790762907029f);
  EXPECT_FLOAT_EQ(At(table, 4, 1000, 0, 1), 0.8268795405320025f);
}

TEST(RopeTableTest, Head128FrequenciesAndUnitCircle) {
  // head_dim 128, theta 1e6: pair i has frequency 1e6^(-2i/128); at position 1 the angle is the
  // frequency itself, e.g. pair 32 -> 1e6^(-1/2) = 1e-3, pair 63 -> 1e6^(-126/128).
  const int64_t head_dim = 128;
  const std::vector<float> table = RopeTable(RopeParams(1e6, head_dim), 4);
  ASSERT_EQ(table.size(), 4u * 64u * 2u);
  EXPECT_NEAR(At(table, head_dim, 1, 32, 1), std::sin(1e-3), 1e-9);
  const double last = std::pow(1e6, -126.0 / 128.0);  // 1.2409e-6
  EXPECT_NEAR(At(table, head_dim, 3, 63, 1) / std::sin(3 * last), 1.0, 1e-5);
  for (size_t i = 0; i < table.size(); i += 2) {
    const double c = table[i];
    const double s = table[i + 1];
    EXPECT_NEAR(c * c + s * s, 1.0, 1e-6) << i;
  }
}

}  // namespace
}  // namespace bora::model
