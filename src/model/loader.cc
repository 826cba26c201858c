// Model loading: inspect the folder, check memory, map the weights, convert them to the
// requested dtype, pick the architecture.

#include <cstdio>

#include "base/error.h"
#include "base/memory_info.h"
#include "model/architectures.h"
#include "model/memory_plan.h"
#include "model/shard.h"

namespace bora::model {

std::unique_ptr<Transformer> LoadModel(const std::string& dir, const LoadOptions& options) {
  formats::ModelFolder folder = formats::InspectModelFolder(dir);
  for (const std::string& note : folder.params.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  const ShardPlan shard = PlanShard(folder.params, options.shard);  // refuses a bad rank count first
  auto ctx = std::make_unique<ops::ComputeContext>(options.threads, options.isa);
  const bool fp8 = folder.params.quantization == formats::WeightQuantization::kFp8;
  // FP8 checkpoints: dequantized while opening, exactly to f32 for --dtype f32, else to bf16
  // (the default: as accurate as the FP8 file, see Fp8DequantTarget), then packed for q8/q4.
  const DType fp8_target = Fp8DequantTarget(options.dtype);
  if (fp8) CheckMemoryFits(PlanMemory(folder, options.context, options.dtype.value_or(fp8_target)), ReadMemoryBudget(), dir);
  const bool gguf = folder.layout == formats::CheckpointLayout::kGguf;
  if (gguf) CheckMemoryFits(PlanGgufMemory(folder, options.context, options.dtype), ReadMemoryBudget(), dir);
  ModelWeights weights = LoadModelWeights(folder, fp8_target, GgufDecodeFor(options.dtype));
  ShardModelWeights(weights, shard);  // tensor parallel: keep this rank's slices only
  // Packed folders load as they are; dense ones convert when a dtype is asked for.
  DType target = options.dtype.value_or(weights.compute_dtype);
  if (fp8 && target == fp8_target) target = weights.compute_dtype;  // already in that format
  if (!shard.layout.whole() && IsPackedDType(target)) {
    // A q8/q4 block spans 32 input columns: a rank's columns of wo / w2 must be whole blocks, or
    // that rank would compute in another precision than one process does.
    const formats::ModelParams& p = folder.params;
    const bool wo_split = (p.n_heads * p.head_dim) % 32 == 0 && shard.q_rows.size() % 32 != 0;
    const bool w2_split = p.hidden_dim % 32 == 0 && shard.hidden.size() % 32 != 0;
    if (wo_split || w2_split) {
      throw InvalidArgument(std::to_string(shard.layout.ranks) + " ranks would split " + (wo_split ? "wo" : "w2") +
                            " inside a 32-column " + WeightDTypeName(target) +
                            " block; use fewer ranks or --dtype bf16 / f32");
    }
  }
  MemoryPlan plan = PlanMemory(folder, options.context, weights.compute_dtype == target ? DType::kF32 : target);
  if (!shard.layout.whole()) {  // each rank holds about 1/N of the matrices and of the KV heads
    plan.weights /= static_cast<uint64_t>(shard.layout.ranks);
    plan.kv_cache /= static_cast<uint64_t>(shard.layout.ranks);
  }
  if (!fp8 && !gguf) CheckMemoryFits(plan, ReadMemoryBudget(), dir);
  if (target == weights.compute_dtype && !options.mmap) {
    MakeWeightsResident(weights, *ctx);
  } else {
    ConvertModelWeights(weights, target, *ctx);
  }
  LoadOptions effective = options;
  effective.context = plan.context;
  if (folder.params.moe) return MakeMixtral(std::move(folder), std::move(weights), effective, std::move(ctx));
  return MakeMistral(std::move(folder), std::move(weights), effective, std::move(ctx));
}

}  // namespace bora::model
