// Tests ops::RmsNormRows and ops::SwiGlu: agreement with the scalar kernels and a double
// reference on every host instruction set, and results independent of length and thread count.
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/cpu_features.h"
#include "kernels/activation.h"
#include "kernels/rmsnorm.h"

namespace bora::ops {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float& value : values) value = normal(rng);
  return values;
}

std::vector<Isa> HostIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (IsaSupported(isa, DetectCpuFeatures())) isas.push_back(isa);
  }
  return isas;
}

TEST(ElementwiseTest, RmsNormRowsIsTheScalarKernelPerRowForAnyThreadCount) {
  const int64_t rows = 40, dim = 1024;  // above the parallel threshold
  const std::vector<float> x = Random(rows * dim, 1, 2.0f), weight = Random(dim, 2, 1.0f);
  std::vector<float> expected(x.size());
  for (int64_t t = 0; t < rows; ++t) {
    kernels::RmsNorm(x.data() + t * dim, weight.data(), expected.data() + t * dim, dim, 1e-5f);
  }
  for (int threads : {1, 2, 3}) {
    ComputeContext ctx(threads);
    std::vector<float> out(x.size());
    RmsNormRows(ctx, x.data(), weight.data(), out.data(), rows, dim, 1e-5f);
    EXPECT_EQ(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)), 0) << threads;
    std::vector<float> in_place = x;  // out may alias x
    RmsNormRows(ctx, in_place.data(), weight.data(), in_place.data(), rows, dim, 1e-5f);
    EXPECT_EQ(std::memcmp(in_place.data(), expected.data(), out.size() * sizeof(float)), 0) << threads;
  }
}

// silu(g) * u from an exp within 2 ulp: e = exp(-g)(1 + 2^-22), 1 + e, one division and one
// product each round once, so the relative error is below ~5 * 2^-24 + 2^-22 < 6e-7.
TEST(ElementwiseTest, SwiGluIsWithinRoundingOfDoubleOnEveryIsa) {
  const int64_t n = 70001;  // above the parallel threshold, with a ragged tail
  const std::vector<float> gate = Random(n, 3, 4.0f), up = Random(n, 4, 1.0f);
  std::vector<float> scalar(n);
  kernels::SwiGlu(gate.data(), up.data(), scalar.data(), n);
  for (Isa isa : HostIsas()) {
    SCOPED_TRACE(IsaName(isa));
    ComputeContext two(2, isa), one(1, isa);
    std::vector<float> out(n), single(n), in_place = gate;
    SwiGlu(two, gate.data(), up.data(), out.data(), n);
    SwiGlu(one, gate.data(), up.data(), single.data(), n);
    SwiGlu(two, in_place.data(), up.data(), in_place.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i];
      const double exact = g / (1.0 + std::exp(-g)) * up[i];
      ASSERT_NEAR(out[i], exact, 6e-7 * std::fabs(exact) + 1e-30) << i;
      ASSERT_NEAR(out[i], scalar[i], 1e-6 * std::fabs(exact) + 1e-30) << i;
    }
    EXPECT_EQ(std::memcmp(out.data(), single.data(), n * sizeof(float)), 0) << "thread count changed bits";
    EXPECT_EQ(std::memcmp(out.data(), in_place.data(), n * sizeof(float)), 0) << "aliasing changed bits";
    // A short call (no fork-join) gives the same bits as the same elements in a long one.
    std::vector<float> prefix(300);
    SwiGlu(two, gate.data(), up.data(), prefix.data(), 300);
    EXPECT_EQ(std::memcmp(out.data(), prefix.data(), 300 * sizeof(float)), 0);
  }
}

}  // namespace
}  // namespace bora::ops
