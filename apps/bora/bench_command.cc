// `bora bench --model DIR`: prefill and decode throughput, median of repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "commands.h"
#include "kernels/activation.h"
#include "model/transformer.h"

namespace bora::app {
namespace {

struct BenchFlags {
  std::string model_dir;
  int64_t prompt_tokens = 128;
  int64_t generate_tokens = 64;
  int repetitions = 5;
  int threads = 0;
  bool json = false;
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

int RunBench(const BenchFlags& flags) {
  model::LoadOptions options;
  options.context = flags.prompt_tokens + flags.generate_tokens;
  options.threads = flags.threads;
  auto load_start = std::chrono::steady_clock::now();
  std::unique_ptr<model::Transformer> model = model::LoadModel(flags.model_dir, options);
  double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  if (model->context_length() < options.context) {
    throw InvalidArgument("the model's maximum context " + std::to_string(model->context_length()) +
                          " is shorter than --prompt-tokens + --gen-tokens");
  }
  const int64_t vocab = model->params().vocab_size;
  std::mt19937 random(1234);  // fixed prompt: same work every run
  std::vector<int32_t> prompt(flags.prompt_tokens);
  for (int32_t& id : prompt) id = static_cast<int32_t>(random() % vocab);

  model::KvCache cache = model->NewCache();
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<double> prefill_rates, decode_rates;
  // One untimed warm-up pass faults in the mapped weights.
  for (int rep = -1; rep < flags.repetitions; ++rep) {
    cache.Reset();
    auto start = std::chrono::steady_clock::now();
    model->Forward(prompt, cache, logits, false);
    auto prefilled = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < flags.generate_tokens; ++i) {
      int32_t next = static_cast<int32_t>(kernels::ArgMax(logits.data(), vocab));
      model->Forward(std::span<const int32_t>(&next, 1), cache, logits, false);
    }
    auto done = std::chrono::steady_clock::now();
    if (rep < 0) continue;
    prefill_rates.push_back(flags.prompt_tokens / std::chrono::duration<double>(prefilled - start).count());
    decode_rates.push_back(flags.generate_tokens / std::chrono::duration<double>(done - prefilled).count());
  }
  double prefill = Median(prefill_rates);
  double decode = Median(decode_rates);
  if (flags.json) {
    nlohmann::ordered_json report = {{"model", flags.model_dir},       {"threads", model->num_threads()},
                                     {"prompt_tokens", flags.prompt_tokens}, {"generate_tokens", flags.generate_tokens},
                                     {"repetitions", flags.repetitions}, {"load_seconds", load_seconds},
                                     {"prefill_tokens_per_second", prefill}, {"decode_tokens_per_second", decode}};
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::printf("model %s, %d threads, f32 compute from checkpoint weights, load %.2f s\n", flags.model_dir.c_str(),
                model->num_threads(), load_seconds);
    std::printf("prefill %lld tokens: %10.1f tok/s (median of %d)\n", static_cast<long long>(flags.prompt_tokens),
                prefill, flags.repetitions);
    std::printf("decode  %lld tokens: %10.1f tok/s (median of %d)\n", static_cast<long long>(flags.generate_tokens),
                decode, flags.repetitions);
  }
  return 0;
}

}  // namespace

Command RegisterBench(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Measure prefill and decode speed (tokens/s, median of repetitions) on a model folder.");
  sub->add_option("--model", flags->model_dir, "Model folder")->required();
  sub->add_option("-p,--prompt-tokens", flags->prompt_tokens, "Prompt length for the prefill measurement")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-n,--gen-tokens", flags->generate_tokens, "Tokens decoded one at a time")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-r,--repetitions", flags->repetitions, "Timed repetitions")->check(CLI::Range(1, 1000))->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  sub->add_flag("--json", flags->json, "Print a JSON report");
  return {sub, [flags] { return RunBench(*flags); }};
}

}  // namespace bora::app
