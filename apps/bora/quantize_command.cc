// `bora quantize --model DIR --dtype q4 --out OUT_DIR`: writes a packed, mmap-able model folder
// (weights + params + tokenizer files) that loads without converting anything.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "tokenizer_files.h"
#include "formats/model_folder.h"
#include "formats/tokenizer_file.h"
#include "model/model_writer.h"
#include "model/memory_plan.h"
#include "model/weights.h"
#include "ops/compute_context.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct QuantizeFlags {
  std::string model_dir;
  std::string dtype = "q4";
  std::string out_dir;
  int threads = 0;
};

int RunQuantize(const QuantizeFlags& flags) {
  const DType target = model::ParseWeightDType(flags.dtype);
  if (target == DType::kF32) throw InvalidArgument("--dtype f32 keeps the checkpoint as it is; nothing to write");
  std::error_code error;
  if (fs::exists(flags.out_dir) && fs::equivalent(flags.out_dir, flags.model_dir, error)) {
    throw InvalidArgument("--out must differ from --model");
  }
  const auto start = std::chrono::steady_clock::now();
  formats::ModelFolder folder = formats::InspectModelFolder(flags.model_dir);
  ops::ComputeContext ctx(flags.threads);
  // Converted size (for FP8 folders: the dequantized copy and the packed one together; GGUF:
  // the exact f32 dequantization and the packed copy).
  const bool gguf = folder.layout == formats::CheckpointLayout::kGguf;
  model::CheckMemoryFits(gguf ? model::PlanGgufMemory(folder, 1, target) : model::PlanMemory(folder, 1, target),
                         ReadMemoryBudget(), flags.model_dir);
  model::ModelWeights weights =
      model::LoadModelWeights(folder, model::Fp8DequantTarget(target), model::GgufDecodeFor(target));
  model::ConvertModelWeights(weights, target, ctx);
  model::WriteModelFolder(weights, folder.params, flags.out_dir, &folder);
  // Tokenizer and generation defaults travel with the weights.
  CopyTokenizerFiles(flags.model_dir, flags.out_dir);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s (%s, %.2f GiB of weights) in %.1f s\n", flags.out_dir.c_str(), flags.dtype.c_str(),
              static_cast<double>(model::MatrixBytesOf(weights)) / (1 << 30), seconds);
  return 0;
}

}  // namespace

Command RegisterQuantize(CLI::App& app) {
  auto flags = std::make_shared<QuantizeFlags>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Convert a model folder's weights to bf16, q8 or q4 and write a packed model folder that every\n"
      "command loads directly (memory-mapped, no conversion at start-up). q8: 8.5 bits per weight\n"
      "(blocks of 32, f16 scales); q4: 4.5 bits per weight with a per-block scale search, output\n"
      "projection kept at q8.");
  sub->add_option("--model", flags->model_dir, "Source model folder (Mistral-native or Hugging Face) or GGUF file")->required();
  sub->add_option("--dtype", flags->dtype, "Target format")->check(CLI::IsMember({"bf16", "q8", "q4"}))->capture_default_str();
  sub->add_option("--out", flags->out_dir, "Folder to write (created if missing)")->required();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  return {sub, [flags] { return RunQuantize(*flags); }};
}

}  // namespace bora::app
