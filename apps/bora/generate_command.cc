// `bora generate --model DIR --tokens 1,2,3`: greedy continuation of a token-id prompt.
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "commands.h"
#include "kernels/activation.h"
#include "model/transformer.h"

namespace bora::app {
namespace {

struct GenerateFlags {
  std::string model_dir;
  std::string tokens;
  int64_t max_tokens = 32;
  int64_t context = 4096;
  int64_t chunk = 512;
  int threads = 0;
  bool json = false;
  std::string dtype;
};

int RunGenerate(const GenerateFlags& flags) {
  std::vector<int32_t> prompt = ParseTokenList(flags.tokens);
  model::LoadOptions options;
  options.context = flags.context;
  options.threads = flags.threads;
  if (!flags.dtype.empty()) options.dtype = model::ParseWeightDType(flags.dtype);
  std::unique_ptr<model::Transformer> model = model::LoadModel(flags.model_dir, options);
  const int64_t needed = static_cast<int64_t>(prompt.size()) + flags.max_tokens;
  if (needed > model->context_length()) {
    throw InvalidArgument("prompt (" + std::to_string(prompt.size()) + " tokens) + --max-tokens (" +
                          std::to_string(flags.max_tokens) + ") exceeds the context of " +
                          std::to_string(model->context_length()) + " tokens; raise --ctx or lower --max-tokens");
  }
  const int64_t vocab = model->params().vocab_size;
  model::KvCache cache = model->NewCache();
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::span<const int32_t> remaining(prompt);
  while (!remaining.empty()) {  // chunked prefill bounds the scratch memory
    size_t count = std::min<size_t>(remaining.size(), static_cast<size_t>(flags.chunk));
    model->Forward(remaining.first(count), cache, logits, false);
    remaining = remaining.subspan(count);
  }
  std::vector<int32_t> generated;
  for (int64_t i = 0; i < flags.max_tokens; ++i) {
    int32_t next = static_cast<int32_t>(kernels::ArgMax(logits.data(), vocab));
    generated.push_back(next);
    if (i + 1 < flags.max_tokens) model->Forward(std::span<const int32_t>(&next, 1), cache, logits, false);
  }
  if (flags.json) {
    std::printf("%s\n", nlohmann::json{{"tokens", generated}}.dump().c_str());
  } else {
    for (size_t i = 0; i < generated.size(); ++i) std::printf(i ? " %d" : "%d", generated[i]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace

Command RegisterGenerate(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Generate a greedy continuation of a prompt given as token ids and print the new ids.\n"
      "Example: bora generate --model demo-model --tokens 1,330,1584 --max-tokens 16");
  sub->add_option("--model", flags->model_dir, "Model folder (params.json or config.json + safetensors)")->required();
  sub->add_option("--tokens", flags->tokens, "Prompt token ids, comma-separated")->required();
  sub->add_option("-n,--max-tokens", flags->max_tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--ctx", flags->context, "Context length in tokens (capped by the model)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--prefill-chunk", flags->chunk, "Prompt tokens per forward call")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  sub->add_option("--dtype", flags->dtype, "Convert the weights at load: f32 (exact), bf16, q8 or q4 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  sub->add_flag("--json", flags->json, "Print {\"tokens\": [...]} instead of space-separated ids");
  return {sub, [flags] { return RunGenerate(*flags); }};
}

}  // namespace bora::app
