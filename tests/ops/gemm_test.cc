// Tests the training GEMMs (ops::Gemm, GemmSerial, WeightGemm) against a double-precision
// reference for every ISA the CPU has, every weight format and both weight orientations.
#include "ops/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/cpu_features.h"
#include "base/float16.h"
#include "kernels/gemm_bf16.h"
#include "kernels/kernel_set.h"
#include "ops/pack_weights.h"

namespace bora::ops {
namespace {

std::vector<float> RandomValues(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = uniform(rng);
  return values;
}

std::vector<Isa> SupportedIsas() {
  const CpuFeatures features = DetectCpuFeatures();
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa, features)) isas.push_back(isa);
  }
  return isas;
}

// The f64 reference of WeightGemm: A[m, k] times W^T (W [rows, cols] holding `values`), or times
// W for the input gradient, plus `offset`.
std::vector<double> ReferenceWeightProduct(const std::vector<float>& a, int64_t m,
                                           const std::vector<float>& values, int64_t rows,
                                           int64_t cols, bool input_gradient, double offset) {
  const int64_t k = input_gradient ? rows : cols, n = input_gradient ? cols : rows;
  std::vector<double> want(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = offset;
      for (int64_t p = 0; p < k; ++p) {
        sum += static_cast<double>(a[i * k + p]) *
               (input_gradient ? values[p * cols + j] : values[j * cols + p]);
      }
      want[i * n + j] = sum;
    }
  }
  return want;
}

// Largest |got - want| relative to the largest |want|.
double RelativeError(const std::vector<float>& got, const std::vector<double>& want) {
  double max_diff = 0, max_want = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
    max_want = std::max(max_want, std::abs(want[i]));
  }
  return max_diff / max_want;
}

TEST(GemmTest, StridedOperandsMatchReference) {
  // Odd sizes: row tails (not a multiple of 12), strip tails (not 16), k over two depth slices.
  const int64_t m = 29, n = 37, k = 300;
  const std::vector<float> a = RandomValues(m * k, 1), b = RandomValues(k * n, 2),
                           c0 = RandomValues(m * n, 3);
  for (Isa isa : SupportedIsas()) {
    ComputeContext ctx(2, isa);
    for (bool transpose_a : {false, true}) {
      for (bool transpose_b : {false, true}) {
        for (bool accumulate : {false, true}) {
          // A stored as [m, k] or [k, m]; B as [k, n] or [n, k].
          const StridedMatrix sa =
              transpose_a ? StridedMatrix{a.data(), 1, m} : StridedMatrix{a.data(), k, 1};
          const StridedMatrix sb =
              transpose_b ? StridedMatrix{b.data(), 1, k} : StridedMatrix{b.data(), n, 1};
          std::vector<double> want(static_cast<size_t>(m * n));
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double sum = accumulate ? c0[i * n + j] : 0.0;
              for (int64_t p = 0; p < k; ++p) {
                sum += static_cast<double>(sa.data[i * sa.row_stride + p * sa.col_stride]) *
                       sb.data[p * sb.row_stride + j * sb.col_stride];
              }
              want[i * n + j] = sum;
            }
          }
          std::vector<float> c = c0;
          Gemm(ctx, m, n, k, sa, sb, c.data(), n, accumulate);
          EXPECT_LT(RelativeError(c, want), 1e-5) << IsaName(isa);
          std::vector<float> serial = c0;
          std::vector<float> pack(static_cast<size_t>(GemmPackFloats()));
          GemmSerial(ctx.kernels(), m, n, k, sa, sb, serial.data(), n, accumulate, pack.data());
          EXPECT_EQ(serial, c) << "serial and threaded differ on " << IsaName(isa);
        }
      }
    }
  }
}

TEST(GemmTest, WeightFormatsBothOrientations) {
  const int64_t rows = 50, cols = 96, m = 14;  // rows not a multiple of the 16-row panel
  const std::vector<float> dense = RandomValues(rows * cols, 4);
  MatrixView f32_view{DType::kF32, dense.data(), rows, cols, nullptr};
  ComputeContext ctx(2);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kQ8, DType::kQ4}) {
    OwnedMatrix owned;
    MatrixView w = f32_view;
    if (dtype != DType::kF32) {
      owned = ConvertMatrix(ctx, f32_view, dtype, nullptr);
      w = owned.view;
    }
    // The values the weight holds, as the embedding lookup dequantizes them.
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) MatrixRowToF32(w, r, values.data() + r * cols);
    for (Isa isa : SupportedIsas()) {
      ComputeContext isa_ctx(2, isa);
      for (bool input_gradient : {false, true}) {
        const int64_t k = input_gradient ? rows : cols, n = input_gradient ? cols : rows;
        const std::vector<float> a = RandomValues(m * k, 5);
        const std::vector<double> want =
            ReferenceWeightProduct(a, m, values, rows, cols, input_gradient, 0.0);
        std::vector<float> c(static_cast<size_t>(m * n), 7.0f);
        WeightGemm(isa_ctx, a.data(), m, k, w, input_gradient, c.data(), n, false);
        EXPECT_LT(RelativeError(c, want), 1e-5)
            << DTypeName(dtype) << " " << IsaName(isa) << " input_gradient=" << input_gradient;
      }
    }
  }
}

// The AVX512-BF16 strip kernel against its scalar reference: every row count, one and two
// strips, odd column counts, accumulation into C.
TEST(GemmBf16Test, StripKernelMatchesScalarReference) {
  const kernels::KernelSet& simd = kernels::KernelsFor(Isa::kAvx512);
  if (!IsaSupported(Isa::kAvx512, DetectCpuFeatures()) || simd.gemm_strip_bf16 == nullptr) {
    GTEST_SKIP() << "this CPU has no AVX512-BF16";
  }
  const int64_t k_pairs = 37, strip_stride = k_pairs * 32 + 64;
  std::vector<uint16_t> a(24 * k_pairs), bp(2 * strip_stride);
  const std::vector<float> av = RandomValues(static_cast<int64_t>(a.size()), 11);
  const std::vector<float> bv = RandomValues(static_cast<int64_t>(bp.size()), 12);
  for (size_t i = 0; i < a.size(); ++i) a[i] = F32ToBf16(av[i]);
  for (size_t i = 0; i < bp.size(); ++i) bp[i] = F32ToBf16(bv[i]);
  for (int64_t rows = 1; rows <= kernels::kGemmBf16MaxRows; ++rows) {
    for (int64_t columns : {1, 7, 16, 17, 31, 32}) {
      std::vector<float> want(12 * 40, 0.5f), got(12 * 40, 0.5f);
      // A panel of 12 rows: pair q of row i at a[q * 24 + 2 i].
      kernels::GemmBf16StripScalar(a.data(), 24, bp.data(), strip_stride, k_pairs, rows,
                                   want.data(), 40, columns);
      simd.gemm_strip_bf16(a.data(), 24, bp.data(), strip_stride, k_pairs, rows, got.data(), 40,
                           columns);
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::abs(want[i])))
            << "rows " << rows << " columns " << columns << " at " << i;
      }
    }
  }
}

TEST(GemmBf16Test, RowConversionRoundsToNearestEvenLikeTheReference) {
  const kernels::KernelSet& simd = kernels::KernelsFor(Isa::kAvx512);
  if (!IsaSupported(Isa::kAvx512, DetectCpuFeatures()) || simd.f32_to_bf16_row == nullptr) {
    GTEST_SKIP() << "this CPU has no AVX512-BF16";
  }
  std::vector<float> x = RandomValues(70, 13);
  x[3] = 1.0f + 0x1.0p-8f;  // a tie: rounds to even (1.0)
  x[4] = 1.0f + 0x1.8p-8f;  // above the tie: rounds up
  for (int64_t n = 0; n <= 70; ++n) {
    std::vector<uint16_t> want(72, 0xabcd), got(72, 0xabcd);
    kernels::F32ToBf16RowScalar(x.data(), want.data(), n);
    simd.f32_to_bf16_row(x.data(), got.data(), n);
    EXPECT_EQ(got, want) << "n = " << n;  // including the untouched tail
  }
}

// Mixed precision: activations rounded to bf16 against bf16 or q8/q4 weights. Within bf16's
// rounding (2^-9 relative per activation) of the exact product, for every shape remainder.
TEST(GemmBf16Test, WeightGemmInBf16IsCloseToTheExactProduct) {
  const int64_t rows = 50, cols = 96, m = 29;
  const std::vector<float> dense = RandomValues(rows * cols, 14);
  MatrixView f32_view{DType::kF32, dense.data(), rows, cols, nullptr};
  ComputeContext ctx(2);
  for (DType dtype : {DType::kBF16, DType::kQ8, DType::kQ4}) {
    OwnedMatrix owned = ConvertMatrix(ctx, f32_view, dtype, nullptr);
    const MatrixView w = owned.view;
    std::vector<float> values(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) MatrixRowToF32(w, r, values.data() + r * cols);
    EXPECT_EQ(UsesBf16Gemm(ctx, w), ctx.kernels().gemm_strip_bf16 != nullptr);
    for (bool input_gradient : {false, true}) {
      const int64_t k = input_gradient ? rows : cols, n = input_gradient ? cols : rows;
      const std::vector<float> a = RandomValues(m * k, 15);
      // Accumulated onto 1.0.
      const std::vector<double> want =
          ReferenceWeightProduct(a, m, values, rows, cols, input_gradient, 1.0);
      std::vector<float> c(static_cast<size_t>(m * n), 1.0f);
      WeightGemm(ctx, a.data(), m, k, w, input_gradient, c.data(), n, true, GemmPrecision::kBf16);
      // bf16 rounding of the activations (and of the dequantized q8/q4 values): a few 1e-3.
      EXPECT_LT(RelativeError(c, want), 1e-2)
          << DTypeName(dtype) << " input_gradient=" << input_gradient;
      // ... but not exact: the bf16 path really ran where the CPU has it.
      if (UsesBf16Gemm(ctx, w)) {
        EXPECT_GT(RelativeError(c, want), 1e-6) << DTypeName(dtype);
      }
    }
  }
}

// An odd inner dimension pads the last k-pair with zero (bf16 rows of odd length).
TEST(GemmBf16Test, OddInnerDimension) {
  const int64_t rows = 33, cols = 47, m = 13;
  const std::vector<float> dense = RandomValues(rows * cols, 16);
  MatrixView f32_view{DType::kF32, dense.data(), rows, cols, nullptr};
  ComputeContext ctx(1);
  OwnedMatrix owned = ConvertMatrix(ctx, f32_view, DType::kBF16, nullptr);
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) MatrixRowToF32(owned.view, r, values.data() + r * cols);
  for (bool input_gradient : {false, true}) {
    const int64_t k = input_gradient ? rows : cols, n = input_gradient ? cols : rows;
    std::vector<float> a = RandomValues(m * k, 17);
    for (float& v : a) v = Bf16ToF32(F32ToBf16(v));  // exact in bf16: only summation error left
    const std::vector<double> want =
        ReferenceWeightProduct(a, m, values, rows, cols, input_gradient, 0.0);
    std::vector<float> c(static_cast<size_t>(m * n), 3.0f);
    WeightGemm(ctx, a.data(), m, k, owned.view, input_gradient, c.data(), n, false,
               GemmPrecision::kBf16);
    EXPECT_LT(RelativeError(c, want), 1e-5) << "input_gradient=" << input_gradient;
  }
}

}  // namespace
}  // namespace bora::ops
