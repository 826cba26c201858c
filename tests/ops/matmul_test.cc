// Tests ops::MatMul against a double-precision reference and for batch and thread invariance.
#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/float16.h"
#include "base/thread_pool.h"
#include "tensor/matrix_view.h"

namespace bora::ops {
namespace {

// A weight matrix in one dtype plus its exact f32 values (for the reference).
struct TestWeight {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> f32;      // storage when dtype is F32
  std::vector<uint16_t> half;  // storage when dtype is BF16 / F16
  std::vector<float> exact;    // the value of every element as f32, for the reference

  MatrixView View() const {
    MatrixView view;
    view.dtype = dtype;
    view.data = dtype == DType::kF32 ? static_cast<const void*>(f32.data())
                                     : static_cast<const void*>(half.data());
    view.rows = rows;
    view.cols = cols;
    return view;
  }
};

TestWeight MakeWeight(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  TestWeight weight;
  weight.dtype = dtype;
  weight.rows = rows;
  weight.cols = cols;
  const size_t n = static_cast<size_t>(rows * cols);
  weight.exact.resize(n);
  switch (dtype) {
    case DType::kF32:
      weight.f32.resize(n);
      for (size_t i = 0; i < n; ++i) weight.exact[i] = weight.f32[i] = uniform(rng);
      break;
    case DType::kBF16:
      weight.half.resize(n);
      for (size_t i = 0; i < n; ++i) {
        weight.half[i] = F32ToBf16(uniform(rng));
        weight.exact[i] = Bf16ToF32(weight.half[i]);
      }
      break;
    case DType::kF16: {
      // Random sign, exponent 9..16 (|w| in [2^-6, 4)), random mantissa.
      std::uniform_int_distribution<uint32_t> bits(0, 0xffff);
      weight.half.resize(n);
      for (size_t i = 0; i < n; ++i) {
        uint32_t r = bits(rng);
        uint32_t sign = r & 0x8000u;
        uint32_t exponent = 9 + (r >> 10) % 8;
        uint32_t mantissa = bits(rng) & 0x3ffu;
        weight.half[i] = static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
        weight.exact[i] = F16ToF32(weight.half[i]);
      }
      break;
    }
    default:
      ADD_FAILURE() << "dense dtypes only (packed formats are tested in kernels/quant_test)";
  }
  return weight;
}

std::vector<float> MakeActivations(int64_t tokens, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(tokens * cols));
  for (float& value : x) value = uniform(rng);
  return x;
}

const DType kDTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

TEST(MatMulTest, MatchesDoubleReferenceOnOddShapes) {
  ComputeContext pool(3);
  uint32_t seed = 1;
  for (DType dtype : kDTypes) {
    for (int64_t tokens : {1, 3}) {
      for (int64_t rows : {1, 7, 33}) {
        for (int64_t cols : {1, 9, 130}) {
          SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " tokens=" << tokens
                                            << " rows=" << rows << " cols=" << cols);
          TestWeight weight = MakeWeight(dtype, rows, cols, seed++);
          std::vector<float> x = MakeActivations(tokens, cols, seed++);
          // One guard element past the end must stay untouched.
          std::vector<float> y(static_cast<size_t>(tokens * rows) + 1, -777.0f);
          MatMul(pool, x.data(), tokens, weight.View(), y.data());
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              double reference = 0.0;
              double magnitude = 0.0;  // sum |x| |w|
              for (int64_t c = 0; c < cols; ++c) {
                double product = static_cast<double>(x[t * cols + c]) * weight.exact[r * cols + c];
                reference += product;
                magnitude += std::fabs(product);
              }
              // f32 summation of `cols` products: |error| <= cols * u * sum|x||w| with
              // u = FLT_EPSILON / 2; allow twice the classical bound of cols * FLT_EPSILON.
              const double tolerance = 2.0 * cols * FLT_EPSILON * magnitude;
              EXPECT_NEAR(y[t * rows + r], reference, tolerance) << "t=" << t << " r=" << r;
            }
          }
          EXPECT_EQ(y.back(), -777.0f);
        }
      }
    }
  }
}

TEST(MatMulTest, HandComputedSmallCase) {
  // W = [[1, 2, 3], [-1, 0, 1]], x = [[1, 1, 1], [2, 0, -1]]
  // y = x W^T = [[6, 0], [2 - 3, -2 - 1]] = [[6, 0], [-1, -3]]
  const float w[] = {1, 2, 3, -1, 0, 1};
  const float x[] = {1, 1, 1, 2, 0, -1};
  MatrixView view;
  view.dtype = DType::kF32;
  view.data = w;
  view.rows = 2;
  view.cols = 3;
  float y[4];
  ComputeContext pool(2);
  MatMul(pool, x, 2, view, y);
  EXPECT_EQ(y[0], 6.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], -1.0f);
  EXPECT_EQ(y[3], -3.0f);

  // The same matrix in bf16 (1 = 0x3f80, 2 = 0x4000, 3 = 0x4040, -1 = 0xbf80, 0 = 0x0000)
  // and in f16 (0x3c00, 0x4000, 0x4200, 0xbc00, 0x0000).
  const uint16_t w_bf16[] = {0x3f80, 0x4000, 0x4040, 0xbf80, 0x0000, 0x3f80};
  const uint16_t w_f16[] = {0x3c00, 0x4000, 0x4200, 0xbc00, 0x0000, 0x3c00};
  for (auto [dtype, data] : {std::pair<DType, const void*>{DType::kBF16, w_bf16},
                             std::pair<DType, const void*>{DType::kF16, w_f16}}) {
    view.dtype = dtype;
    view.data = data;
    float y_half[4];
    MatMul(pool, x, 2, view, y_half);
    EXPECT_EQ(y_half[0], 6.0f) << DTypeName(dtype);
    EXPECT_EQ(y_half[1], 0.0f) << DTypeName(dtype);
    EXPECT_EQ(y_half[2], -1.0f) << DTypeName(dtype);
    EXPECT_EQ(y_half[3], -3.0f) << DTypeName(dtype);
  }
}

TEST(MatMulTest, BatchInvariance) {
  constexpr int64_t kTokens = 5;
  constexpr int64_t kRows = 33;
  constexpr int64_t kCols = 130;
  ComputeContext pool(3);
  uint32_t seed = 100;
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    TestWeight weight = MakeWeight(dtype, kRows, kCols, seed++);
    std::vector<float> x = MakeActivations(kTokens, kCols, seed++);
    std::vector<float> batch(kTokens * kRows);
    MatMul(pool, x.data(), kTokens, weight.View(), batch.data());
    for (int64_t t = 0; t < kTokens; ++t) {
      std::vector<float> alone(kRows);
      MatMul(pool, x.data() + t * kCols, 1, weight.View(), alone.data());
      EXPECT_EQ(std::memcmp(alone.data(), batch.data() + t * kRows, kRows * sizeof(float)), 0)
          << "row " << t << " differs when computed alone";
    }
    // A batch of 2 starting at token 2 gives the same bits as rows 2..3 of the batch of 5.
    std::vector<float> pair(2 * kRows);
    MatMul(pool, x.data() + 2 * kCols, 2, weight.View(), pair.data());
    EXPECT_EQ(std::memcmp(pair.data(), batch.data() + 2 * kRows, pair.size() * sizeof(float)), 0);
  }
}

TEST(MatMulTest, ThreadInvariance) {
  constexpr int64_t kTokens = 3;
  constexpr int64_t kRows = 37;
  constexpr int64_t kCols = 131;
  uint32_t seed = 200;
  ComputeContext one(1);
  ComputeContext two(2);
  ComputeContext four(4);
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    TestWeight weight = MakeWeight(dtype, kRows, kCols, seed++);
    std::vector<float> x = MakeActivations(kTokens, kCols, seed++);
    std::vector<float> y1(kTokens * kRows), y2(kTokens * kRows), y4(kTokens * kRows);
    MatMul(one, x.data(), kTokens, weight.View(), y1.data());
    MatMul(two, x.data(), kTokens, weight.View(), y2.data());
    MatMul(four, x.data(), kTokens, weight.View(), y4.data());
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(y1.data(), y4.data(), y1.size() * sizeof(float)), 0);
  }
}

TEST(MatMulTest, ZeroTokensWritesNothing) {
  const float w[] = {1, 2};
  MatrixView view;
  view.dtype = DType::kF32;
  view.data = w;
  view.rows = 1;
  view.cols = 2;
  const float x[] = {1, 1};
  float y[1] = {-5.0f};
  ComputeContext pool(2);
  MatMul(pool, x, 0, view, y);
  EXPECT_EQ(y[0], -5.0f);
}

}  // namespace
}  // namespace bora::ops
