// Concurrency benchmark over runtime::Engine.
#include "bench_concurrent.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "runtime/engine.h"

namespace bora::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Timeline {
  Clock::time_point submitted;
  std::vector<Clock::time_point> tokens;  // arrival of each token event
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

struct RunResult {
  double aggregate_tg_tok_s = 0;
  double tokens_per_sequence = 0;
  double ttft_ms_p50 = 0;
  double wall_seconds = 0;
  int64_t prefix_hit_tokens = 0;
};

// All `concurrent` requests submitted at once. The aggregate decode rate counts the tokens that
// arrive while every sequence is decoding (from the last first token to the first finish).
RunResult RunOnce(model::Transformer& model, int concurrent, const ConcurrentBenchConfig& config,
                  uint32_t salt, bool constrained) {
  runtime::EngineOptions options = config.engine;
  options.max_sequences = concurrent;
  options.max_queued = concurrent;
  options.prefill_budget = 512;
  runtime::Engine engine(model, config.tokenizer, options);
  std::mt19937 random(1234 + salt);
  const int64_t vocab = model.params().vocab_size;
  // --shared-prefix N: every prompt starts with the same N tokens (an agent's system prompt and
  // tools), which one earlier request has already run through this engine.
  std::vector<int32_t> prefix;
  for (int64_t t = 0; t < std::min(config.shared_prefix, config.prompt_tokens); ++t) {
    prefix.push_back(static_cast<int32_t>(random() % vocab));
  }
  if (!prefix.empty()) {
    runtime::GenerationRequest warm;
    warm.prompt = prefix;
    warm.prompt.push_back(static_cast<int32_t>(random() % vocab));
    warm.max_tokens = 1;
    warm.sampling.temperature = 0.0f;
    auto stream = engine.Submit(std::move(warm));
    runtime::Event event;
    while (stream->Next(event) && event.kind != runtime::Event::Kind::kDone) {
    }
  }
  std::vector<Timeline> timelines(concurrent);
  std::vector<std::shared_ptr<runtime::RequestStream>> streams;
  const auto start = Clock::now();
  for (int i = 0; i < concurrent; ++i) {
    runtime::GenerationRequest request;
    request.prompt = prefix;
    while (static_cast<int64_t>(request.prompt.size()) < config.prompt_tokens) {
      request.prompt.push_back(static_cast<int32_t>(random() % vocab));
    }
    request.max_tokens = config.generate_tokens;
    request.sampling.temperature = 0.0f;
    if (constrained) {
      request.grammar = config.grammar;  // EOS ends it once the output is complete
    } else {
      request.ignore_eos = true;
    }
    timelines[i].submitted = Clock::now();
    timelines[i].tokens.reserve(static_cast<size_t>(config.generate_tokens));
    streams.push_back(engine.Submit(std::move(request)));
  }
  std::vector<std::thread> readers;
  for (int i = 0; i < concurrent; ++i) {
    readers.emplace_back([&, i] {
      runtime::Event event;
      while (streams[i]->Next(event) && event.kind == runtime::Event::Kind::kToken) {
        timelines[i].tokens.push_back(Clock::now());
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  const auto end = Clock::now();
  Clock::time_point all_decoding = start, first_finish = end;
  std::vector<double> ttft_ms;
  for (const Timeline& t : timelines) {
    if (t.tokens.empty()) continue;
    all_decoding = std::max(all_decoding, t.tokens.front());
    first_finish = std::min(first_finish, t.tokens.back());
    ttft_ms.push_back(
        std::chrono::duration<double, std::milli>(t.tokens.front() - t.submitted).count());
  }
  RunResult result;
  result.prefix_hit_tokens = engine.counters().prefix_hit_tokens;
  result.wall_seconds = std::chrono::duration<double>(end - start).count();
  result.ttft_ms_p50 = ttft_ms.empty() ? 0 : Median(ttft_ms);
  int64_t in_window = 0, generated = 0;
  for (const Timeline& t : timelines) generated += static_cast<int64_t>(t.tokens.size());
  result.tokens_per_sequence = static_cast<double>(generated) / concurrent;
  for (const Timeline& t : timelines) {
    for (const auto& arrival : t.tokens)
      in_window += arrival > all_decoding && arrival <= first_finish;
  }
  const double window = std::chrono::duration<double>(first_finish - all_decoding).count();
  if (in_window > 0 && window > 0) {
    result.aggregate_tg_tok_s = static_cast<double>(in_window) / window;
  } else {  // too few tokens for a common decode window: the whole run's rate
    int64_t total = 0;
    for (const Timeline& t : timelines) total += static_cast<int64_t>(t.tokens.size());
    result.aggregate_tg_tok_s = static_cast<double>(total) / result.wall_seconds;
  }
  return result;
}

}  // namespace

int RunConcurrentBench(model::Transformer& model, const ConcurrentBenchConfig& config) {
  double single = 0;
  for (int concurrent : config.concurrency) {
    std::vector<double> rates, ttfts, walls, constrained_rates, constrained_tokens;
    int64_t prefix_hits = 0;
    for (int rep = 0; rep < config.repetitions; ++rep) {
      const RunResult r = RunOnce(model, concurrent, config, static_cast<uint32_t>(rep), false);
      rates.push_back(r.aggregate_tg_tok_s);
      ttfts.push_back(r.ttft_ms_p50);
      walls.push_back(r.wall_seconds);
      prefix_hits = r.prefix_hit_tokens;
      if (config.grammar) {
        const RunResult c = RunOnce(model, concurrent, config, static_cast<uint32_t>(rep), true);
        constrained_rates.push_back(c.aggregate_tg_tok_s);
        constrained_tokens.push_back(c.tokens_per_sequence);
      }
    }
    const double rate = Median(rates), ttft = Median(ttfts);
    const double constrained_rate = config.grammar ? Median(constrained_rates) : 0.0;
    // Time per output token with the constraint over time per output token without.
    const double overhead = constrained_rate > 0 ? rate / constrained_rate : 0.0;
    if (concurrent == 1) single = rate;
    if (config.json) {
      nlohmann::ordered_json line = {{"concurrent", concurrent},
                                     {"aggregate_tg_tok_s", rate},
                                     {"ttft_ms_p50", ttft},
                                     {"per_sequence_tg_tok_s", rate / concurrent},
                                     {"n_prompt", config.prompt_tokens},
                                     {"n_gen", config.generate_tokens},
                                     {"repetitions", config.repetitions},
                                     {"wall_seconds", Median(walls)}};
      if (single > 0) line["speedup_vs_1"] = rate / single;
      line["kv_dtype"] = ops::KvDTypeName(config.engine.kv_dtype);
      if (config.grammar) {
        line["constrained_tg_tok_s"] = constrained_rate;
        line["constrained_tokens_per_sequence"] = Median(constrained_tokens);
        line["constraint_overhead"] = overhead;
      }
      if (config.shared_prefix > 0) {
        line["shared_prefix"] = config.shared_prefix;
        line["prefix_cache"] = config.engine.prefix_cache;
        line["prefix_hit_tokens"] =
            prefix_hits;  // of the last repetition, warm-up request included
      }
      std::printf("%s\n", line.dump().c_str());
    } else {
      std::printf("concurrent %-3d aggregate tg %8.2f tok/s (%.2f per sequence)  ttft p50 %8.1f ms",
                  concurrent, rate, rate / concurrent, ttft);
      if (single > 0 && concurrent != 1) std::printf("  %.2fx the single sequence", rate / single);
      if (config.grammar) {
        std::printf(
            "\n               constrained  %8.2f tok/s (%.0f tokens per sequence): %.3fx the "
            "time per token",
            constrained_rate, Median(constrained_tokens), overhead);
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace bora::app
