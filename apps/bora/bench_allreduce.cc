// The all-reduce micro-benchmark behind `bora bench --allreduce`.
#include "bench_allreduce.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

namespace bora::app {

void RunAllReduceBench(dist::Communicator& comm, const formats::ModelParams& params, int64_t prompt_tokens,
                       int repetitions, bool json) {
  const bool root = comm.rank() == 0;
  std::vector<float> scratch;
  double decode_allreduce_s = 0;
  for (int64_t tokens : {int64_t{1}, int64_t{16}, prompt_tokens}) {
    const int64_t count = tokens * params.dim;
    std::vector<float> data(static_cast<size_t>(count), 1.0f);
    // Enough calls per repetition to time ~20 ms at loopback speeds; same count on every rank.
    const int calls = static_cast<int>(std::clamp<int64_t>(int64_t{1} << 22 / std::max<int64_t>(count, 1), 4, 2000));
    std::vector<double> per_call;
    for (int rep = -1; rep < repetitions; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i) comm.AllReduceSum(std::span<float>(data), scratch);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (rep >= 0) per_call.push_back(seconds / calls);
    }
    std::sort(per_call.begin(), per_call.end());
    const double median = per_call[per_call.size() / 2];
    if (tokens == 1) decode_allreduce_s = median;
    if (!root) continue;
    const double bytes = static_cast<double>(count) * sizeof(float);
    if (json) {
      std::printf("%s\n", nlohmann::ordered_json({{"event", "allreduce"},
                                                  {"ranks", comm.size()},
                                                  {"tokens", tokens},
                                                  {"floats", count},
                                                  {"bytes", bytes},
                                                  {"seconds", median},
                                                  {"gb_s", bytes / median / 1e9}})
                              .dump()
                              .c_str());
    } else {
      std::printf("allreduce %2d ranks  %5lld tokens x %lld floats (%8.1f KiB): %9.1f us  (%.2f GB/s)\n",
                  comm.size(), static_cast<long long>(tokens), static_cast<long long>(params.dim), bytes / 1024,
                  median * 1e6, bytes / median / 1e9);
    }
  }
  if (!root) return;
  const double per_token = 2.0 * static_cast<double>(params.n_layers) * decode_allreduce_s;
  if (json) {
    std::printf("%s\n", nlohmann::ordered_json({{"event", "result"},
                                                {"ranks", comm.size()},
                                                {"layers", params.n_layers},
                                                {"dim", params.dim},
                                                {"decode_allreduce_s_per_token", per_token}})
                            .dump()
                            .c_str());
  } else {
    std::printf("decode  2 x %lld layers x %.1f us = %.3f ms of all-reduce per token (plus one logits gather)\n",
                static_cast<long long>(params.n_layers), decode_allreduce_s * 1e6, per_token * 1e3);
  }
}

}  // namespace bora::app
