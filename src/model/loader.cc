// Model loading: inspect the folder, check memory, map the weights, pick the architecture.

#include "base/memory_info.h"
#include "model/architectures.h"
#include "model/memory_plan.h"

namespace bora::model {

std::unique_ptr<Transformer> LoadModel(const std::string& dir, const LoadOptions& options) {
  formats::ModelFolder folder = formats::InspectModelFolder(dir);
  MemoryPlan plan = PlanMemory(folder, options.context);
  CheckMemoryFits(plan, ReadMemoryBudget(), dir);
  ModelWeights weights = LoadModelWeights(folder);
  LoadOptions effective = options;
  effective.context = plan.context;
  if (folder.params.moe) return MakeMixtral(std::move(folder), std::move(weights), effective);
  return MakeMistral(std::move(folder), std::move(weights), effective);
}

}  // namespace bora::model
