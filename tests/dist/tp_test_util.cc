// Greedy runs and the in-process tensor-parallel group used by the dist tests.
#include "tp_test_util.h"

#include <memory>
#include <thread>

#include "dist/local_group.h"
#include "dist/tensor_parallel.h"
#include "kernels/activation.h"

namespace bora::testing {

GreedyRun RunGreedy(model::Transformer& model, const std::vector<int32_t>& prompt, int steps) {
  model::ContiguousKvCache cache = model.NewCache();
  const int64_t vocab = model.params().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  GreedyRun run;
  model.Forward(prompt, cache, logits, false);
  for (int i = 0; i < steps; ++i) {
    run.logits.insert(run.logits.end(), logits.begin(), logits.end());
    run.tokens.push_back(static_cast<int32_t>(kernels::ArgMax(logits.data(), vocab)));
    if (i + 1 < steps) model.Forward(std::span<const int32_t>(&run.tokens.back(), 1), cache, logits, false);
  }
  return run;
}

void WithEmulatedGroup(const std::string& dir, int ranks, model::LoadOptions options,
                       const std::function<void(model::Transformer&)>& work,
                       const std::vector<std::string>& follower_dirs) {
  dist::LocalGroup group(ranks);
  std::vector<std::unique_ptr<model::Transformer>> models;
  std::vector<std::unique_ptr<dist::TensorParallelGroup>> members;
  for (int r = 0; r < ranks; ++r) {
    options.shard = model::ShardLayout{r, ranks};
    const std::string& from = r > 0 && static_cast<size_t>(r) <= follower_dirs.size() ? follower_dirs[r - 1] : dir;
    models.push_back(model::LoadModel(from, options));
    members.push_back(std::make_unique<dist::TensorParallelGroup>(group.rank(r), *models.back()));
  }
  std::vector<std::thread> followers;
  for (int r = 1; r < ranks; ++r) followers.emplace_back([&members, r] { members[r]->FollowSteps(); });
  try {
    work(*models[0]);
  } catch (...) {
    members[0]->Shutdown();
    for (std::thread& t : followers) t.join();
    throw;
  }
  members[0]->Shutdown();
  for (std::thread& t : followers) t.join();
}

}  // namespace bora::testing
