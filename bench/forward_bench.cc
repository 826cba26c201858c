// Google Benchmark of whole forward passes (prefill and decode) on a generated tiny model.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <random>
#include <unistd.h>

#include "base/thread_pool.h"
#include "model/random_model.h"
#include "model/transformer.h"

namespace {

namespace fs = std::filesystem;

// The preset `tiny` model (dim 256, 4 layers, vocab 32768), written once per process.
std::unique_ptr<bora::model::Transformer> TinyModel(int threads) {
  static const std::string dir = [] {
    std::string path = (fs::temp_directory_path() / ("bora-bench-tiny-" + std::to_string(::getpid()))).string();
    bora::ThreadPool pool(2);
    bora::model::WriteRandomModel(bora::model::PresetParams("tiny"), 42, path, pool, false);
    return path;
  }();
  bora::model::LoadOptions options;
  options.context = 512;
  options.threads = threads;
  return bora::model::LoadModel(dir, options);
}

void BM_Prefill(benchmark::State& state) {
  auto model = TinyModel(static_cast<int>(state.range(1)));
  std::vector<int32_t> prompt(static_cast<size_t>(state.range(0)));
  std::mt19937 random(3);
  for (auto& id : prompt) id = static_cast<int32_t>(random() % model->params().vocab_size);
  std::vector<float> logits(static_cast<size_t>(model->params().vocab_size));
  auto cache = model->NewCache();
  for (auto _ : state) {
    cache.Reset();
    model->Forward(prompt, cache, logits, false);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // tokens
}
BENCHMARK(BM_Prefill)->Args({128, 1})->Args({128, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decode(benchmark::State& state) {
  auto model = TinyModel(static_cast<int>(state.range(0)));
  std::vector<float> logits(static_cast<size_t>(model->params().vocab_size));
  auto cache = model->NewCache();
  int32_t token = 1;
  for (auto _ : state) {
    if (cache.position() >= 256) cache.Reset();  // decode positions 0..255
    model->Forward(std::span<const int32_t>(&token, 1), cache, logits, false);
  }
  state.SetItemsProcessed(state.iterations());  // tokens
}
BENCHMARK(BM_Decode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
