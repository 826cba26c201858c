// Model loading: inspect the folder, check memory, map the weights, convert them to the
// requested dtype, pick the architecture.

#include "base/memory_info.h"
#include "model/architectures.h"
#include "model/memory_plan.h"

namespace bora::model {

std::unique_ptr<Transformer> LoadModel(const std::string& dir, const LoadOptions& options) {
  formats::ModelFolder folder = formats::InspectModelFolder(dir);
  auto ctx = std::make_unique<ops::ComputeContext>(options.threads, options.isa);
  ModelWeights weights = LoadModelWeights(folder);
  // Packed folders load as they are; dense ones convert when a dtype is asked for.
  const DType target = options.dtype.value_or(weights.compute_dtype);
  MemoryPlan plan = PlanMemory(folder, options.context, weights.compute_dtype == target ? DType::kF32 : target);
  CheckMemoryFits(plan, ReadMemoryBudget(), dir);
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
