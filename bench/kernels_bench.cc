// Google Benchmark of the scalar-reference matmul at real Mistral 7B projection shapes.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "base/float16.h"
#include "base/thread_pool.h"
#include "ops/matmul.h"

namespace {

// Args: tokens, out_features, in_features. BF16 weights as shipped, f32 activations.
void BM_MatMulBf16(benchmark::State& state) {
  const int64_t tokens = state.range(0), rows = state.range(1), cols = state.range(2);
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> weight(static_cast<size_t>(rows * cols));
  for (auto& w : weight) w = bora::F32ToBf16(normal(random));
  std::vector<float> x(static_cast<size_t>(tokens * cols)), y(static_cast<size_t>(tokens * rows));
  for (auto& v : x) v = normal(random);
  bora::ThreadPool pool(static_cast<int>(state.range(3)));
  bora::MatrixView view{bora::DType::kBF16, weight.data(), rows, cols};
  for (auto _ : state) {
    bora::ops::MatMul(pool, x.data(), tokens, view, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 2);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * tokens * rows * cols * state.iterations(),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
// wq of Mistral 7B (4096x4096) and w1 (14336x4096), decode (1 token) and a prefill chunk (16).
BENCHMARK(BM_MatMulBf16)->Args({1, 4096, 4096, 1})->Args({1, 4096, 4096, 2})->Args({1, 14336, 4096, 2})
    ->Args({16, 4096, 4096, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
