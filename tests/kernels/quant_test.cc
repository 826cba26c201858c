// Tests the q8/q4 block formats (round trip, Q4_0 comparison), the activation quantizer and the
// packed GEMM against exact references with math-derived bounds, and every ISA the host
// supports against the scalar reference (bit-identical integer paths, bounded f32 dots).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/cpu_features.h"
#include "base/error.h"
#include "base/float16.h"
#include "kernels/kernel_set.h"
#include "kernels/quant/block_quant.h"
#include "kernels/quant/qgemm.h"
#include "kernels/dot.h"

namespace bora::kernels {
namespace {

std::vector<float> Gaussian(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(n);
  for (float& v : values) v = normal(random);
  return values;
}

// A packed matrix with owned planes.
struct Packed {
  PackedShape shape;
  std::vector<uint8_t> quants;
  std::vector<uint16_t> scales;
  PackedMatrixRef ref() const { return {shape.format, quants.data(), scales.data(), shape.rows, shape.cols}; }
};

Packed Pack(QuantFormat format, const std::vector<float>& w, int64_t rows, int64_t cols) {
  Packed p{{format, rows, cols}, {}, {}};
  p.quants.resize(static_cast<size_t>(p.shape.quant_bytes()));
  p.scales.resize(static_cast<size_t>(p.shape.scale_count()));
  const int64_t blocks = p.shape.blocks();
  for (int64_t panel = 0; panel < p.shape.panels(); ++panel) {
    const int64_t panel_rows = std::min<int64_t>(kPanelRows, rows - panel * kPanelRows);
    QuantizePanel(format, w.data() + panel * kPanelRows * cols, panel_rows, cols,
                  p.quants.data() + panel * blocks * QuantBlockBytes(format),
                  p.scales.data() + panel * blocks * kPanelRows);
  }
  return p;
}

std::vector<float> Dequantize(const Packed& p) {
  std::vector<float> out(static_cast<size_t>(p.shape.rows * p.shape.cols));
  for (int64_t r = 0; r < p.shape.rows; ++r) {
    DequantizeRow(p.shape, p.quants.data(), p.scales.data(), r, out.data() + r * p.shape.cols);
  }
  return out;
}

float RowScale(const Packed& p, int64_t row, int64_t block) {
  const int64_t panel = row / kPanelRows;
  return F16ToF32(p.scales[(panel * p.shape.blocks() + block) * kPanelRows + row % kPanelRows]);
}

std::vector<Isa> HostIsas() {
  const CpuFeatures features = DetectCpuFeatures();
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (IsaSupported(isa, features)) isas.push_back(isa);
  }
  return isas;
}

struct Quantized {
  std::vector<uint8_t> scratch;
  QuantizedRows rows;
};

Quantized QuantizeActivations(const KernelSet& kernels, const std::vector<float>& x, int64_t tokens, int64_t cols) {
  Quantized q;
  q.scratch.resize(QuantizedRowsBytes(tokens, cols) + 64);
  void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(q.scratch.data()) + 63) & ~uintptr_t{63});
  q.rows = CarveQuantizedRows(aligned, tokens, cols);
  kernels.quantize_rows(x.data(), tokens, cols, q.rows);
  return q;
}

TEST(Float16Test, F32ToF16RoundsToNearestEven) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);              // halfway to 65536 rounds to even: inf
  EXPECT_EQ(F32ToF16(1.0f + 1.0f / 2048.0f), 0x3c00);  // tie between 1 and 1+2^-10: even (1)
  EXPECT_EQ(F32ToF16(1.0f + 3.0f / 2048.0f), 0x3c02);  // tie: rounds up to even mantissa 2
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -26)), 0x0000);  // below half of it: zero
  for (uint32_t bits = 0; bits < 0x7c00; bits += 7) {  // every finite half survives the round trip
    EXPECT_EQ(F32ToF16(F16ToF32(static_cast<uint16_t>(bits))), bits);
  }
}

TEST(BlockQuantTest, Q8RoundTripErrorIsAtMostHalfAStep) {
  const int64_t rows = 37, cols = 96;  // a partial last panel
  const std::vector<float> w = Gaussian(rows * cols, 1, 0.05f);
  const Packed p = Pack(QuantFormat::kQ8, w, rows, cols);
  const std::vector<float> back = Dequantize(p);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float step = RowScale(p, r, c / kQuantBlock);
      ASSERT_LE(std::fabs(back[r * cols + c] - w[r * cols + c]), 0.5001f * step) << r << "," << c;
    }
  }
}

// llama.cpp's Q4_0 on one block, with the scale rounded to f16 the same way.
double Q4_0BlockError(const float* x) {
  float max = 0.0f;
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > std::fabs(max)) max = x[i];
  }
  const float d = F16ToF32(F32ToF16(max / -8.0f));
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  double error = 0;
  for (int i = 0; i < 32; ++i) {
    const int q = std::min(15, static_cast<int>(x[i] * inverse + 8.5f));
    const double diff = x[i] - d * (q - 8);
    error += diff * diff;
  }
  return error;
}

TEST(BlockQuantTest, Q4ErrorNeverAboveQ4_0PerBlock) {
  const int64_t rows = 64, cols = 256;
  const std::vector<float> w = Gaussian(rows * cols, 2, 0.02f);
  const Packed p = Pack(QuantFormat::kQ4, w, rows, cols);
  const std::vector<float> back = Dequantize(p);
  double ours_total = 0, q4_0_total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      const float* x = w.data() + r * cols + b * 32;
      double ours = 0;
      for (int i = 0; i < 32; ++i) {
        const double diff = back[r * cols + b * 32 + i] - x[i];
        ours += diff * diff;
      }
      const double reference = Q4_0BlockError(x);
      ASSERT_LE(ours, reference * (1 + 1e-5) + 1e-12) << "row " << r << " block " << b;
      ours_total += ours;
      q4_0_total += reference;
    }
  }
  // The scale search is worth something on Gaussian weights.
  EXPECT_LT(ours_total, 0.95 * q4_0_total);
}

TEST(BlockQuantTest, ZeroBlocksStayZero) {
  for (QuantFormat format : {QuantFormat::kQ8, QuantFormat::kQ4}) {
    const Packed p = Pack(format, std::vector<float>(16 * 64, 0.0f), 16, 64);
    for (float v : Dequantize(p)) EXPECT_EQ(v, 0.0f);
  }
}

TEST(ActivationQuantTest, ScalarQuantizerBoundsAndSums) {
  const int64_t tokens = 3, cols = 64;
  std::vector<float> x = Gaussian(tokens * cols, 3);
  for (int i = 0; i < 32; ++i) x[32 + i] = 0.0f;  // an all-zero block
  const Quantized q = QuantizeActivations(KernelsFor(Isa::kScalar), x, tokens, cols);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t b = 0; b < 2; ++b) {
      const float d = q.rows.scale[t * 2 + b];
      int32_t sum = 0;
      for (int i = 0; i < 32; ++i) {
        const int8_t value = q.rows.q[(t * 2 + b) * 32 + i];
        sum += value;
        ASSERT_LE(std::abs(value), 127);
        ASSERT_LE(std::fabs(d * value - x[t * cols + b * 32 + i]), 0.5001f * d + 1e-30f);
      }
      EXPECT_EQ(sum, q.rows.sum[t * 2 + b]);
    }
  }
  EXPECT_EQ(q.rows.scale[1], 0.0f);
}

// The packed GEMM equals the exact dot of the dequantized weights with the dequantized
// activations up to f32 rounding of the block sums; against the unquantized activations the
// extra error is at most sum_k |w_k| * d_x/2.
TEST(QGemmTest, ScalarMatchesExactDotsWithinDerivedBounds) {
  const int64_t rows = 37, cols = 128, tokens = 5;
  for (QuantFormat format : {QuantFormat::kQ8, QuantFormat::kQ4}) {
    const std::vector<float> w = Gaussian(rows * cols, 4, 0.05f);
    const std::vector<float> x = Gaussian(tokens * cols, 5);
    const Packed p = Pack(format, w, rows, cols);
    const std::vector<float> w_deq = Dequantize(p);
    const Quantized q = QuantizeActivations(KernelsFor(Isa::kScalar), x, tokens, cols);
    std::vector<float> y(tokens * rows, -1.0f);
    QGemmScalar(p.ref(), q.rows, tokens, 0, p.shape.panels(), y.data(), rows);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        double exact_quantized = 0, exact = 0, abs_sum = 0, activation_bound = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const double wv = w_deq[r * cols + c];
          const double d_x = q.rows.scale[t * (cols / 32) + c / 32];
          exact_quantized += wv * d_x * q.rows.q[t * cols + c];
          exact += wv * x[t * cols + c];
          abs_sum += std::fabs(wv * d_x * q.rows.q[t * cols + c]);
          activation_bound += std::fabs(wv) * d_x * 0.5001;
        }
        const double rounding = 4 * (cols / 32 + 2) * std::ldexp(1.0, -24) * abs_sum;
        const double got = y[t * rows + r];
        ASSERT_NEAR(got, exact_quantized, rounding) << QuantFormatName(format) << " t" << t << " r" << r;
        ASSERT_NEAR(got, exact, rounding + activation_bound) << QuantFormatName(format);
      }
    }
  }
}

class IsaTest : public ::testing::TestWithParam<Isa> {};

TEST_P(IsaTest, ActivationQuantizerIsBitIdenticalToScalar) {
  const int64_t tokens = 7, cols = 160;
  std::vector<float> x = Gaussian(tokens * cols, 6);
  x[5] = 0.5f * x[6];  // values that sit on rounding ties after scaling are rare; force variety
  const Quantized reference = QuantizeActivations(KernelsFor(Isa::kScalar), x, tokens, cols);
  const Quantized simd = QuantizeActivations(KernelsFor(GetParam()), x, tokens, cols);
  const int64_t blocks = tokens * cols / 32;
  for (int64_t i = 0; i < blocks * 32; ++i) ASSERT_EQ(reference.rows.q[i], simd.rows.q[i]) << i;
  for (int64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(reference.rows.scale[i], simd.rows.scale[i]);
    ASSERT_EQ(reference.rows.sum[i], simd.rows.sum[i]);
  }
}

// Every ISA gives the scalar reference's bits, for every batch size (which also makes each
// token's row independent of its batch-mates).
TEST_P(IsaTest, QGemmIsBitIdenticalToScalarForEveryBatchSize) {
  const KernelSet& kernels = KernelsFor(GetParam());
  for (QuantFormat format : {QuantFormat::kQ8, QuantFormat::kQ4}) {
    for (int64_t rows : {16, 45}) {
      const int64_t cols = 96, max_tokens = 13;
      const Packed p = Pack(format, Gaussian(rows * cols, 7, 0.05f), rows, cols);
      const std::vector<float> x = Gaussian(max_tokens * cols, 8);
      const Quantized q = QuantizeActivations(KernelsFor(Isa::kScalar), x, max_tokens, cols);
      std::vector<float> reference(max_tokens * rows);
      QGemmScalar(p.ref(), q.rows, max_tokens, 0, p.shape.panels(), reference.data(), rows);
      for (int64_t tokens = 1; tokens <= max_tokens; ++tokens) {
        std::vector<float> y(max_tokens * rows, 12345.0f);
        kernels.qgemm(p.ref(), q.rows, tokens, 0, p.shape.panels(), y.data(), rows);
        for (int64_t i = 0; i < tokens * rows; ++i) {
          ASSERT_EQ(y[i], reference[i]) << QuantFormatName(format) << " rows " << rows << " tokens " << tokens;
        }
        for (int64_t i = tokens * rows; i < max_tokens * rows; ++i) ASSERT_EQ(y[i], 12345.0f) << "wrote past";
      }
      // A panel range writes only its rows.
      if (p.shape.panels() < 2) continue;
      std::vector<float> y(rows, 7.0f);
      kernels.qgemm(p.ref(), q.rows, 1, 1, 2, y.data(), rows);
      for (int64_t r = 0; r < rows; ++r) {
        if (r >= 16 && r < 32) {
          ASSERT_EQ(y[r], reference[r]);
        } else {
          ASSERT_EQ(y[r], 7.0f);
        }
      }
    }
  }
}

// f32-compute dots: |simd - exact| and |scalar - exact| are each <= gamma_n * sum|w x|.
TEST_P(IsaTest, F32DotsAgreeWithScalarWithinRoundingBound) {
  const KernelSet& kernels = KernelsFor(GetParam());
  for (int64_t n : {1, 7, 16, 33, 64, 100, 4096}) {
    const std::vector<float> a = Gaussian(n, 9), b = Gaussian(n, 10);
    std::vector<uint16_t> bf16(n), f16(n);
    for (int64_t i = 0; i < n; ++i) {
      bf16[i] = F32ToBf16(a[i]);
      f16[i] = F32ToF16(a[i]);
    }
    double abs_sum = 0;
    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(a[i] * b[i]);
    const double gamma = n * std::ldexp(1.0, -24) / (1 - n * std::ldexp(1.0, -24));
    const double bound = 2 * gamma * abs_sum * 1.01;  // both sides' errors, with a bf16/f16 margin
    EXPECT_NEAR(kernels.dot_f32(a.data(), b.data(), n), DotF32(a.data(), b.data(), n), bound) << n;
    EXPECT_NEAR(kernels.dot_bf16(bf16.data(), b.data(), n), DotBf16F32(bf16.data(), b.data(), n), bound) << n;
    EXPECT_NEAR(kernels.dot_f16(f16.data(), b.data(), n), DotF16F32(f16.data(), b.data(), n), bound) << n;
    std::vector<float> y_simd = b, y_scalar = b;
    kernels.axpy(0.75f, a.data(), y_simd.data(), n);
    Axpy(0.75f, a.data(), y_scalar.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y_simd[i], y_scalar[i], 1e-6 * (1 + std::fabs(y_scalar[i])));
  }
}

// exp: within 2 ulp of the exact value over the whole finite range, exact at the edges that
// softmax relies on (exp(-inf) = 0, exp(0) = 1), and every length (SIMD tails) handled.
TEST_P(IsaTest, ExpIsWithinTwoUlpOfExact) {
  const KernelSet& kernels = KernelsFor(GetParam());
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.5f; v += 0.0137f) x.push_back(v);
  std::vector<float> y = x;
  kernels.exp_inplace(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp(static_cast<double>(x[i]));
    const double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
    ASSERT_LE(std::fabs(y[i] - exact), 2 * ulp) << x[i];
  }
  std::vector<float> edges = {-INFINITY, -1000.0f, -88.0f, 0.0f, 89.0f, INFINITY};
  kernels.exp_inplace(edges.data(), static_cast<int64_t>(edges.size()));
  EXPECT_EQ(edges[0], 0.0f);
  EXPECT_EQ(edges[1], 0.0f);
  EXPECT_LT(edges[2], 1e-37f);
  EXPECT_EQ(edges[3], 1.0f);
  EXPECT_EQ(edges[4], INFINITY);
  EXPECT_EQ(edges[5], INFINITY);
  for (int64_t n = 0; n <= 37; ++n) {
    std::vector<float> values(static_cast<size_t>(n) + 1, 0.5f);
    values[static_cast<size_t>(n)] = 7.0f;  // sentinel past the end: untouched
    kernels.exp_inplace(values.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(values[i], std::exp(0.5), 2e-7) << n;
    ASSERT_EQ(values[static_cast<size_t>(n)], 7.0f) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(HostIsas, IsaTest, ::testing::ValuesIn(HostIsas()),
                         [](const ::testing::TestParamInfo<Isa>& info) { return std::string(IsaName(info.param)); });

TEST(CpuFeaturesTest, SelectionHonoursSupportAndRejectsBadNames) {
  CpuFeatures none;
  EXPECT_EQ(BestIsa(none), Isa::kScalar);
  EXPECT_EQ(SelectIsa(none, ""), Isa::kScalar);
  EXPECT_EQ(SelectIsa(none, "scalar"), Isa::kScalar);
  EXPECT_THROW(SelectIsa(none, "avx512"), InvalidArgument);
  EXPECT_THROW(SelectIsa(none, "sse9"), InvalidArgument);
  CpuFeatures avx512;
  avx512.avx2 = avx512.avx512 = avx512.avx512_vnni = true;
  EXPECT_EQ(BestIsa(avx512), Isa::kAvx512);
  EXPECT_EQ(SelectIsa(avx512, "avx2"), Isa::kAvx2);
  EXPECT_THROW(SelectIsa(avx512, "amx"), InvalidArgument);
  avx512.amx_int8 = true;
  EXPECT_EQ(BestIsa(avx512), Isa::kAmx);
  // The host: whatever it reports is consistent.
  const CpuFeatures host = DetectCpuFeatures();
  EXPECT_TRUE(!host.avx512 || host.avx2);
  EXPECT_TRUE(!host.amx_int8 || host.avx512_vnni);
  EXPECT_TRUE(IsaSupported(BestIsa(host), host));
}

}  // namespace
}  // namespace bora::kernels
