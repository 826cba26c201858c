// `bora merge-lora --model DIR --lora DIR --out DIR`: folds a LoRA adapter into its base model
// and writes a full model folder (consolidated.safetensors without LoRA keys, params.json
// without the lora block, the tokenizer) that every command loads like any other.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "tokenizer_files.h"
#include "formats/model_folder.h"
#include "formats/tokenizer_file.h"
#include "model/lora_adapter.h"
#include "model/lora_merge.h"
#include "model/model_writer.h"
#include "model/memory_plan.h"
#include "model/weights.h"
#include "ops/compute_context.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct MergeLoraFlags {
  std::string model_dir;
  std::string lora_dir;
  std::string out_dir;
  std::string dtype = "bf16";
  int threads = 0;
};

bool SameFolder(const std::string& a, const std::string& b) {
  std::error_code error;
  return fs::exists(a) && fs::exists(b) && fs::equivalent(a, b, error);
}

int RunMergeLora(const MergeLoraFlags& flags) {
  const DType dtype = model::ParseWeightDType(flags.dtype);
  if (SameFolder(flags.out_dir, flags.model_dir) || SameFolder(flags.out_dir, flags.lora_dir)) {
    throw InvalidArgument("--out must differ from --model and --lora");
  }
  const auto start = std::chrono::steady_clock::now();
  const formats::ModelFolder folder = formats::InspectModelFolder(flags.model_dir);
  const model::LoraAdapter adapter = model::LoadLoraAdapter(flags.lora_dir, folder.params);
  ops::ComputeContext ctx(flags.threads);
  // GGUF bases are dequantized exactly (to f32): the merged sum is formed at full precision.
  model::ModelWeights weights =
      model::LoadModelWeights(folder, model::Fp8DequantTarget(dtype), formats::GgufDecode::kExactF32);
  model::MergeLora(adapter, folder.params, weights, dtype, ctx);
  model::WriteModelFolder(weights, folder.params, flags.out_dir, &folder);
  // The base model's tokenizer travels with the weights; else the copy saved with the adapter.
  if (CopyTokenizerFiles(flags.model_dir, flags.out_dir) == 0) {
    const fs::path lora(flags.lora_dir);
    CopyTokenizerFiles((fs::exists(lora / "consolidated") ? lora / "consolidated" : lora).string(),
                       flags.out_dir);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "wrote %s: %s merged with the rank-%lld adapter %s (scaling %g), %s, %.2f GiB, in %.1f s\n",
      flags.out_dir.c_str(), flags.model_dir.c_str(), static_cast<long long>(adapter.rank),
      flags.lora_dir.c_str(), static_cast<double>(adapter.scaling), flags.dtype.c_str(),
      static_cast<double>(model::MatrixBytesOf(weights)) / (1 << 30), seconds);
  return 0;
}

}  // namespace

Command RegisterMergeLora(CLI::App& app) {
  auto flags = std::make_shared<MergeLoraFlags>();
  CLI::App* sub = app.add_subcommand(
      "merge-lora",
      "Fold a LoRA adapter into its base model (W + scaling * B A on every adapted linear) and\n"
      "write a full model folder: consolidated.safetensors, params.json and the tokenizer.\n"
      "Adapters: mistral-finetune's lora.safetensors + params.json (or its checkpoint folder),\n"
      "or PEFT's adapter_config.json + adapter_model.safetensors.\n"
      "Example: bora merge-lora --model models/mistral-7b --lora run/checkpoints/checkpoint_000100 "
      "--out models/mistral-7b-tuned");
  sub->add_option("--model", flags->model_dir, "Base model folder (Mistral-native or Hugging Face) or GGUF file")
      ->required();
  sub->add_option("--lora", flags->lora_dir, "Adapter folder")->required();
  sub->add_option("--out", flags->out_dir, "Folder to write (created if missing)")->required();
  sub->add_option("--dtype", flags->dtype, "Weight format of the merged model")
      ->check(CLI::IsMember({"bf16", "f32"}))
      ->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  return {sub, [flags] { return RunMergeLora(*flags); }};
}

}  // namespace bora::app
