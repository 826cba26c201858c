// Google Benchmark of ops::MatMul at real Mistral 7B projection shapes for every weight format
// (bf16 as shipped with f32 activations, q8, q4), decode (1 token) and prefill (512 tokens),
// with the ISA chosen at start-up (BORA_ISA to force one).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "base/float16.h"
#include "ops/compute_context.h"
#include "ops/gemm.h"
#include "ops/matmul.h"
#include "ops/pack_weights.h"

namespace {

constexpr bora::DType kFormats[] = {bora::DType::kBF16, bora::DType::kQ8, bora::DType::kQ4};

// Args: tokens, out_features (rows), in_features (cols), threads, format index (0 bf16, 1 q8, 2 q4).
void BM_MatMul(benchmark::State& state) {
  const int64_t tokens = state.range(0), rows = state.range(1), cols = state.range(2);
  const bora::DType format = kFormats[state.range(4)];
  bora::ops::ComputeContext ctx(static_cast<int>(state.range(3)));
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<uint16_t> weight(static_cast<size_t>(rows * cols));
  for (auto& w : weight) w = bora::F32ToBf16(normal(random));
  const bora::MatrixView source{bora::DType::kBF16, weight.data(), rows, cols};
  bora::ops::OwnedMatrix packed;
  bora::MatrixView view = source;
  if (format != bora::DType::kBF16) {
    packed = bora::ops::ConvertMatrix(ctx, source, format, nullptr);
    view = packed.view;
  }
  std::vector<float> x(static_cast<size_t>(tokens * cols)), y(static_cast<size_t>(tokens * rows));
  for (auto& v : x) v = normal(random) * 50.0f;
  for (auto _ : state) {
    bora::ops::MatMul(ctx, x.data(), tokens, view, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double weight_bytes = static_cast<double>(bora::ops::MatrixBytes(view.dtype, rows, cols));
  state.counters["GB/s"] = benchmark::Counter(weight_bytes * state.iterations(), benchmark::Counter::kIsRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GOP/s"] = benchmark::Counter(2.0 * tokens * rows * cols * state.iterations(),
                                               benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.SetLabel(std::string(bora::DTypeName(format)) + " " + std::string(bora::IsaName(ctx.isa())));
}

void Shapes(benchmark::internal::Benchmark* b) {
  // wq/wo (4096x4096), w1/w3 (14336x4096), w2 (4096x14336), output (32768x4096).
  const int64_t shapes[][2] = {{4096, 4096}, {14336, 4096}, {4096, 14336}, {32768, 4096}};
  for (int64_t format = 0; format < 3; ++format) {
    for (const auto& shape : shapes) b->Args({1, shape[0], shape[1], 2, format});
    b->Args({1, 32768, 4096, 1, format});
    b->Args({512, 4096, 4096, 2, format});
    b->Args({512, 14336, 4096, 2, format});
  }
}
BENCHMARK(BM_MatMul)->Apply(Shapes)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

// The training GEMM (ops::WeightGemm) on a bf16 weight at the 1b preset's shapes, 512 tokens:
// forward (x W^T) and input gradient (dy W), f32 or bf16 mixed precision.
// Args: rows (out), cols (in), input_gradient, precision (0 f32, 1 bf16), threads.
void BM_WeightGemm(benchmark::State& state) {
  const int64_t tokens = 512, rows = state.range(0), cols = state.range(1);
  const bool input_gradient = state.range(2) != 0;
  const auto precision =
      state.range(3) != 0 ? bora::ops::GemmPrecision::kBf16 : bora::ops::GemmPrecision::kF32;
  bora::ops::ComputeContext ctx(static_cast<int>(state.range(4)));
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<uint16_t> weight(static_cast<size_t>(rows * cols));
  for (auto& w : weight) w = bora::F32ToBf16(normal(random));
  const bora::MatrixView view{bora::DType::kBF16, weight.data(), rows, cols};
  const int64_t k = input_gradient ? rows : cols, n = input_gradient ? cols : rows;
  std::vector<float> a(static_cast<size_t>(tokens * k)), c(static_cast<size_t>(tokens * n));
  for (auto& v : a) v = normal(random);
  for (auto _ : state) {
    bora::ops::WeightGemm(ctx, a.data(), tokens, k, view, input_gradient, c.data(), n, false,
                          precision);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * tokens * rows * cols * state.iterations(),
                                                 benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(std::string(input_gradient ? "dy W " : "x W^T ") +
                 (state.range(3) != 0 && bora::ops::UsesBf16Gemm(ctx, view) ? "bf16" : "f32"));
}
BENCHMARK(BM_WeightGemm)
    ->ArgsProduct({{5632}, {2048}, {0, 1}, {0, 1}, {1, 2}})
    ->Args({2048, 2048, 0, 1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
