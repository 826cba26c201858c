// `bora bench --model DIR`: llama-bench-style prompt processing and generation speed (median and
// spread of repetitions), model bytes, decode bandwidth, and optionally the machine's read
// bandwidth and compute peaks measured in the same run.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "base/cpu_features.h"
#include "base/error.h"
#include "bench_concurrent.h"
#include "commands.h"
#include "dist/sharded_model.h"
#include "formats/gguf.h"
#include "kernels/activation.h"
#include "bench_allreduce.h"
#include "kv_flags.h"
#include "model/transformer.h"
#include "ops/machine_probe.h"
#include "runtime/constraint/json_schema.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct BenchFlags {
  std::string model_dir;
  std::string dtype;  // empty: as stored
  int64_t prompt_tokens = 512;
  int64_t generate_tokens = 128;
  int repetitions = 5;
  int threads = 0;
  bool stream = false;
  bool peak = false;
  bool json = false;
  bool mmap = false;
  bool allreduce = false;       // --allreduce: time the group's all-reduce instead
  std::vector<int> concurrent;  // --concurrent 1,4,8: engine throughput instead of pp/tg
  KvFlags kv;                   // KV cache of the --concurrent engine
  int64_t shared_prefix = 0;
  std::string json_schema_file;  // --concurrent: also run constrained by this schema
};

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  Stats s;
  s.median = values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
  s.min = values.front();
  s.max = values.back();
  return s;
}

double PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;
}

void EmitJson(const nlohmann::ordered_json& line) { std::printf("%s\n", line.dump().c_str()); }

int RunBench(const BenchFlags& flags) {
  if (!flags.json_schema_file.empty() && flags.concurrent.empty()) {
    throw InvalidArgument("--json-schema goes with --concurrent (e.g. --concurrent 1)");
  }
  std::string dir = flags.model_dir;
  if (fs::is_regular_file(dir) && !formats::LooksLikeGguf(dir))
    dir = fs::path(dir).parent_path().string();  // a weights file: its folder
  model::LoadOptions options;
  options.context = flags.prompt_tokens + flags.generate_tokens;
  options.threads = flags.threads;
  options.mmap = flags.mmap;
  if (!flags.dtype.empty()) options.dtype = model::ParseWeightDType(flags.dtype);
  auto load_start = std::chrono::steady_clock::now();
  // Under mpirun: this rank's part of the model; ranks >= 1 replay rank 0's steps until it is done.
  dist::ShardedModel sharded = dist::LoadShardedModel(dir, options);
  if (flags.allreduce) {  // collective on every rank, before the followers start following
    if (!sharded.group) throw InvalidArgument("--allreduce times a group of ranks: run it under mpirun -np N");
    RunAllReduceBench(sharded.group->comm(), sharded.model->params(), flags.prompt_tokens, flags.repetitions,
                      flags.json);
    return 0;
  }
  if (sharded.follower()) {
    sharded.group->FollowSteps();
    return 0;
  }
  std::unique_ptr<model::Transformer>& model = sharded.model;
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  if (model->context_length() < options.context) {
    throw InvalidArgument("the model's maximum context " + std::to_string(model->context_length()) +
                          " is shorter than -p + -n");
  }
  if (!flags.concurrent.empty()) {
    ConcurrentBenchConfig config;
    config.concurrency = flags.concurrent;
    config.prompt_tokens = flags.prompt_tokens;
    config.generate_tokens = flags.generate_tokens;
    config.repetitions = flags.repetitions;
    config.json = flags.json;
    ApplyKvFlags(flags.kv, config.engine);
    config.shared_prefix = flags.shared_prefix;
    std::optional<tokenizer::LoadedTokenizer> loaded;
    if (!flags.json_schema_file.empty()) {
      const std::string file = tokenizer::FindTokenizerFile(dir);
      if (file.empty())
        throw InvalidArgument(dir + " has no tokenizer file: --json-schema needs one");
      loaded = tokenizer::LoadTokenizer(file);
      std::ifstream in(flags.json_schema_file, std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      config.grammar = runtime::constraint::CompileJsonSchemaText(text);
      config.tokenizer = loaded->tokenizer.get();
    }
    if (!flags.json) {
      std::printf("model   %s (%s, loaded in %.2f s), %d threads, -p %lld -n %lld, median of %d\n",
                  dir.c_str(), model::WeightDTypeName(model->compute_dtype()).c_str(), load_seconds,
                  model->num_threads(), static_cast<long long>(flags.prompt_tokens),
                  static_cast<long long>(flags.generate_tokens), flags.repetitions);
    }
    return RunConcurrentBench(*model, config);
  }
  const formats::ModelParams& p = model->params();
  const CpuFeatures cpu = DetectCpuFeatures();
  const std::string cpu_line = DescribeCpu(cpu, model->isa());
  const std::string dtype_name = model::WeightDTypeName(model->compute_dtype());
  const uint64_t model_bytes = model->weight_bytes();
  // Decode streams every matrix but the embedding table (one row per token) once per token,
  // plus the KV cache rows it attends to (f32 keys and values).
  const double weight_bytes_per_token = static_cast<double>(model->streamed_weight_bytes());
  const double kv_row_bytes =
      2.0 * 4.0 * static_cast<double>(p.n_kv_heads * p.head_dim * p.n_layers);
  const double mean_context =
      static_cast<double>(flags.prompt_tokens) + 0.5 * static_cast<double>(flags.generate_tokens);
  const double bytes_per_token = weight_bytes_per_token + kv_row_bytes * mean_context;
  if (flags.json) {
    EmitJson({{"event", "loaded"},
              {"model", dir},
              {"dtype", dtype_name},
              {"isa", std::string(IsaName(model->isa()))},
              {"cpu", cpu_line},
              {"threads", model->num_threads()},
              {"ranks", sharded.ranks()},
              {"load_seconds", load_seconds},
              {"model_bytes", model_bytes}});
  } else {
    std::printf("model   %s (%s, %.2f GiB of weights, loaded in %.2f s)\n", dir.c_str(),
                dtype_name.c_str(), static_cast<double>(model_bytes) / (1 << 30), load_seconds);
    std::printf("cpu     %s, %d threads\n", cpu_line.c_str(), model->num_threads());
  }

  const int64_t vocab = p.vocab_size;
  std::mt19937 random(1234);  // fixed prompt: same work every run
  std::vector<int32_t> prompt(flags.prompt_tokens);
  for (int32_t& id : prompt) id = static_cast<int32_t>(random() % vocab);
  model::ContiguousKvCache cache = model->NewCache();
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<double> prefill_rates, decode_rates;
  // Tensor parallel: rank 0's collectives during the timed decode steps (waits for the other
  // ranks included), to split each token into compute and communication.
  dist::CommStats decode_comm;
  double decode_seconds = 0;
  // One untimed warm-up pass faults in the weights and grows the scratch buffers.
  for (int rep = -1; rep < flags.repetitions; ++rep) {
    cache.Reset();
    auto start = std::chrono::steady_clock::now();
    model->Forward(prompt, cache, logits, false);
    auto prefilled = std::chrono::steady_clock::now();
    if (sharded.group) sharded.group->comm().ResetStats();
    for (int64_t i = 0; i < flags.generate_tokens; ++i) {
      int32_t next = static_cast<int32_t>(kernels::ArgMax(logits.data(), vocab));
      model->Forward(std::span<const int32_t>(&next, 1), cache, logits, false);
    }
    auto done = std::chrono::steady_clock::now();
    if (rep < 0) continue;
    if (sharded.group) {
      const dist::CommStats& stats = sharded.group->comm().stats();
      decode_comm.messages += stats.messages;
      decode_comm.bytes += stats.bytes;
      decode_comm.seconds += stats.seconds;
      decode_seconds += std::chrono::duration<double>(done - prefilled).count();
    }
    prefill_rates.push_back(flags.prompt_tokens /
                            std::chrono::duration<double>(prefilled - start).count());
    decode_rates.push_back(flags.generate_tokens /
                           std::chrono::duration<double>(done - prefilled).count());
    if (flags.json) {
      EmitJson({{"event", "repetition"},
                {"index", rep},
                {"pp_tok_s", prefill_rates.back()},
                {"tg_tok_s", decode_rates.back()}});
    }
  }
  // Peak RSS before the probes: the bandwidth probe's 2 GiB buffer is not the model's memory.
  const double peak_rss = PeakRssBytes();
  double stream_gb_s = 0;
  if (flags.stream) {
    stream_gb_s = ops::MeasureReadBandwidth(model->compute());
    if (flags.json) {
      EmitJson({{"event", "stream"},
                {"stream_gb_s", stream_gb_s},
                {"bytes", size_t{2} << 30},
                {"passes", 10}});
    } else {
      std::printf("stream  read bandwidth %.1f GB/s (2 GiB, best of 10, %d threads)\n", stream_gb_s,
                  model->num_threads());
    }
  }
  std::vector<ops::PeakMeasurement> peaks;
  if (flags.peak) {
    peaks = ops::MeasureComputePeaks(model->compute());
    for (const auto& peak : peaks) {
      if (flags.json) {
        EmitJson({{"event", "peak"}, {"name", peak.name}, {"gops", peak.ops_per_second / 1e9}});
      } else {
        std::printf("peak    %-20s %8.1f GOP/s\n", peak.name.c_str(), peak.ops_per_second / 1e9);
      }
    }
  }

  const Stats pp = Summarize(prefill_rates), tg = Summarize(decode_rates);
  const double tg_bandwidth = tg.median * bytes_per_token / 1e9;
  // Prefill arithmetic: 2 operations per weight per token (matrices only; attention excluded).
  const double pp_ops = 2.0 * pp.median * static_cast<double>(model->streamed_weight_count());
  if (flags.json) {
    nlohmann::ordered_json result = {{"event", "result"},
                                     {"model", dir},
                                     {"dtype", dtype_name},
                                     {"isa", std::string(IsaName(model->isa()))},
                                     {"threads", model->num_threads()},
                                     {"ranks", sharded.ranks()},
                                     {"n_prompt", flags.prompt_tokens},
                                     {"n_gen", flags.generate_tokens},
                                     {"repetitions", flags.repetitions},
                                     {"pp_tok_s", pp.median},
                                     {"pp_tok_s_min", pp.min},
                                     {"pp_tok_s_max", pp.max},
                                     {"tg_tok_s", tg.median},
                                     {"tg_tok_s_min", tg.min},
                                     {"tg_tok_s_max", tg.max},
                                     {"model_bytes", model_bytes},
                                     {"tg_bytes_per_token", bytes_per_token},
                                     {"tg_bandwidth_gb_s", tg_bandwidth},
                                     {"pp_gops", pp_ops / 1e9},
                                     {"load_seconds", load_seconds},
                                     {"peak_rss_bytes", peak_rss}};
    if (sharded.group) {
      const double tokens = static_cast<double>(flags.generate_tokens) * flags.repetitions;
      result["tg_comm_s_per_token"] = decode_comm.seconds / tokens;
      result["tg_compute_s_per_token"] = (decode_seconds - decode_comm.seconds) / tokens;
      result["tg_messages_per_token"] = static_cast<double>(decode_comm.messages) / tokens;
      result["tg_comm_bytes_per_token"] = static_cast<double>(decode_comm.bytes) / tokens;
    }
    if (flags.stream) {
      result["stream_gb_s"] = stream_gb_s;
      result["tg_bandwidth_fraction"] = tg_bandwidth / stream_gb_s;
    }
    for (const auto& peak : peaks) {
      if (peak.name == "avx512 int8 vnni")
        result["pp_fraction_of_vnni_peak"] = pp_ops / peak.ops_per_second;
    }
    EmitJson(result);
  } else {
    std::printf("pp%-5lld %10.2f tok/s  (median of %d, min %.2f, max %.2f; %.1f GOP/s)\n",
                static_cast<long long>(flags.prompt_tokens), pp.median, flags.repetitions, pp.min,
                pp.max, pp_ops / 1e9);
    std::printf("tg%-5lld %10.2f tok/s  (median of %d, min %.2f, max %.2f)\n",
                static_cast<long long>(flags.generate_tokens), tg.median, flags.repetitions, tg.min,
                tg.max);
    if (sharded.group) {
      const double tokens = static_cast<double>(flags.generate_tokens) * flags.repetitions;
      std::printf("ranks   %d: per decode token %.3f ms compute + %.3f ms communication (%.0f messages, %.1f KB sent by rank 0)\n",
                  sharded.ranks(), 1e3 * (decode_seconds - decode_comm.seconds) / tokens,
                  1e3 * decode_comm.seconds / tokens, static_cast<double>(decode_comm.messages) / tokens,
                  static_cast<double>(decode_comm.bytes) / tokens / 1e3);
    }
    std::printf("decode  %.1f MB/token -> %.1f GB/s", bytes_per_token / 1e6, tg_bandwidth);
    if (flags.stream)
      std::printf(" = %.0f %% of the read bandwidth", 100.0 * tg_bandwidth / stream_gb_s);
    std::printf("\n");
    for (const auto& peak : peaks) {
      if (peak.name == "avx512 int8 vnni") {
        std::printf("prefill %.0f %% of the %s peak\n", 100.0 * pp_ops / peak.ops_per_second,
                    peak.name.c_str());
      }
    }
    std::printf("memory  peak RSS %.2f GiB\n", peak_rss / (1 << 30));
  }
  return 0;
}

}  // namespace

Command RegisterBench(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* sub = app.add_subcommand(
      "bench",
      "Measure prompt processing (pp) and generation (tg) speed on a model folder, llama-bench "
      "style:\n"
      "median and spread over repetitions, model size, decode bytes per token and bandwidth.\n"
      "BORA_ISA=scalar|avx2|avx512|amx forces the kernels' instruction set.");
  sub->add_option("--model", flags->model_dir, "Model folder (or a weights file inside one) or GGUF file")
      ->required();
  sub->add_option("--dtype", flags->dtype,
                  "Convert the weights at load: f32, bf16, q8 or q4 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  sub->add_option("-p,--prompt-tokens", flags->prompt_tokens,
                  "Prompt length of the prefill measurement")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-n,--gen-tokens", flags->generate_tokens, "Tokens decoded one at a time")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-r,--repetitions", flags->repetitions, "Timed repetitions")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  sub->add_flag("--stream", flags->stream,
                "Also measure the read bandwidth (2 GiB read-only reduction, best of 10)");
  sub->add_flag("--peak", flags->peak,
                "Also measure the compute peak of every usable instruction set");
  sub->add_flag(
      "--mmap", flags->mmap,
      "Compute straight from the mapped file instead of a resident huge-page copy (faster start, "
      "slower decode)");
  sub->add_option("--concurrent", flags->concurrent,
                  "Concurrency levels, e.g. 1,4,8: sequences through the serving engine at once; "
                  "reports the "
                  "aggregate decode rate while all decode and the median time to first token")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  AddKvFlags(sub, &flags->kv);
  sub->add_option("--shared-prefix", flags->shared_prefix,
                  "With --concurrent: every prompt starts with the same N tokens, run once before "
                  "(prefix cache)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  sub->add_option("--json-schema", flags->json_schema_file,
                  "With --concurrent: also run every level constrained by this JSON Schema (the "
                  "model folder's tokenizer) and report the time per token against unconstrained")
      ->check(CLI::ExistingFile);
  sub->add_flag("--allreduce", flags->allreduce,
                "Under mpirun: time the all-reduce at this model's message sizes (dim floats x 1, 16, -p tokens)");
  sub->add_flag("--json", flags->json, "One JSON object per line; the last one holds the results");
  return {sub, [flags] { return RunBench(*flags); }};
}

}  // namespace bora::app
