// `bora make-model --preset tiny --out DIR`: a deterministic random-weight model folder.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "base/memory_info.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "formats/tokenizer_file.h"
#include "model/random_model.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct MakeModelFlags {
  std::string preset = "tiny";
  std::string moe;
  int64_t vocab = 0;
  std::string tokenizer;
  uint64_t seed = 0;
  int64_t sliding_window = 0;
  int64_t kv_heads = 0;
  std::string out_dir;
  int threads = 0;
};

int RunMakeModel(const MakeModelFlags& flags) {
  formats::ModelParams params = model::PresetParams(flags.preset);
  if (flags.kv_heads > 0) {  // same query heads per KV head as the preset (e.g. 6 for -np 3 tests)
    params.n_heads = flags.kv_heads * (params.n_heads / params.n_kv_heads);
    params.n_kv_heads = flags.kv_heads;
  }
  if (!flags.moe.empty()) {
    long long experts = 0, active = 0;
    char comma = 0;
    std::istringstream text(flags.moe);
    if (!(text >> experts >> comma >> active) || comma != ',' || !text.eof()) {
      throw InvalidArgument("--moe expects E,K (experts, experts per token), e.g. --moe 8,2");
    }
    params.moe = formats::MoeParams{experts, active};
  }
  if (flags.vocab != 0) params.vocab_size = flags.vocab;
  if (!flags.tokenizer.empty()) {
    std::string name = fs::path(flags.tokenizer).filename().string();
    if (!formats::IsTokenizerFileName(name)) {
      throw InvalidArgument("--tokenizer " + flags.tokenizer +
                            ": expected a Mistral tokenizer file (tekken.json or tokenizer.model.vN)");
    }
    params.vocab_size = formats::TokenizerVocabSize(flags.tokenizer);
  }
  if (flags.sliding_window > 0) params.layer_windows.assign(params.n_layers, flags.sliding_window);
  formats::ValidateModelParams(params, "make-model flags");

  ThreadPool pool(flags.threads > 0 ? flags.threads : DefaultThreadCount());
  model::WriteRandomModel(params, flags.seed, flags.out_dir, pool);
  if (!flags.tokenizer.empty()) {
    fs::path target = fs::path(flags.out_dir) / fs::path(flags.tokenizer).filename();
    std::error_code error;
    fs::copy_file(flags.tokenizer, target, fs::copy_options::overwrite_existing, error);
    if (error) throw IoError(target.string() + ": cannot copy tokenizer: " + error.message());
  }
  std::error_code size_error;
  uint64_t bytes = fs::file_size(fs::path(flags.out_dir) / "consolidated.safetensors", size_error);
  std::printf("wrote %s: preset %s%s, vocab %lld, seed %llu, %s of BF16 weights\n", flags.out_dir.c_str(),
              flags.preset.c_str(), params.moe ? (" + MoE " + flags.moe).c_str() : "",
              static_cast<long long>(params.vocab_size), static_cast<unsigned long long>(flags.seed),
              FormatBytes(bytes).c_str());
  return 0;
}

}  // namespace

Command RegisterMakeModel(CLI::App& app) {
  auto flags = std::make_shared<MakeModelFlags>();
  CLI::App* sub = app.add_subcommand(
      "make-model",
      "Write a deterministic random-weight model folder (Mistral-native layout, BF16).\n"
      "Presets: tiny (dim 256, 4 layers), 1b (dim 2048, 22 layers), mistral-7b (dim 4096, 32 layers).\n"
      "Same flags and seed give the same bytes on every machine and thread count.");
  sub->add_option("--preset", flags->preset, "Geometry")
      ->check(CLI::IsMember({"tiny", "1b", "mistral-7b"}))
      ->capture_default_str();
  sub->add_option("--moe", flags->moe, "Make it a Mixtral-style MoE: E experts, K active per token (e.g. 8,2)");
  auto* vocab = sub->add_option("--vocab", flags->vocab, "Vocabulary size (default 32768)")->check(CLI::Range(1, 1 << 22));
  sub->add_option("--tokenizer", flags->tokenizer,
                  "Tokenizer file to copy into the folder; its vocabulary sets vocab_size")
      ->check(CLI::ExistingFile)
      ->excludes(vocab);
  sub->add_option("--sliding-window", flags->sliding_window, "Sliding attention window W for every layer (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  sub->add_option("--kv-heads", flags->kv_heads,
                  "KV heads K (query heads scale along: the preset's heads per KV head times K)")
      ->check(CLI::Range(int64_t{1}, int64_t{64}));
  sub->add_option("--seed", flags->seed, "Random seed")->capture_default_str();
  sub->add_option("--out", flags->out_dir, "Output folder")->required();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  return {sub, [flags] { return RunMakeModel(*flags); }};
}

}  // namespace bora::app
