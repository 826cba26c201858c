// Google Benchmark of runtime::SequenceSampler per token at Mistral vocabulary sizes (32768 for
// SentencePiece v3, 131072 for Tekken): greedy, plain temperature, and with top-p / top-k.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/cpu_features.h"
#include "runtime/sampler.h"

namespace {

// Args: vocabulary, mode (0 greedy, 1 temperature 0.7, 2 + top_p 0.9, 3 + top_k 40).
void BM_Sample(benchmark::State& state) {
  const int64_t vocab = state.range(0);
  bora::runtime::SamplingParams params;
  params.temperature = state.range(1) == 0 ? 0.0f : 0.7f;
  if (state.range(1) == 2) params.top_p = 0.9f;
  if (state.range(1) == 3) params.top_k = 40;
  // Logits shaped like a language model's: a few strong candidates over a Gaussian floor.
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& v : logits) v = normal(random);
  for (int i = 0; i < 20; ++i) logits[static_cast<size_t>(random() % vocab)] += 8.0f;
  const bora::kernels::KernelSet& kernels = bora::kernels::KernelsFor(bora::SelectIsaFromEnvironment());
  bora::runtime::SamplerScratch scratch(vocab);
  bora::runtime::SequenceSampler sampler(params, vocab, {}, 1, 0, kernels);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Sample(logits, scratch).id);
  static const char* kModes[] = {"greedy", "temperature", "top_p 0.9", "top_k 40"};
  state.SetLabel(kModes[state.range(1)]);
}
BENCHMARK(BM_Sample)->ArgsProduct({{32768, 131072}, {0, 1, 2, 3}})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
