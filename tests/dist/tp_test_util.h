// Helpers for tensor-parallel tests: greedy runs that record logits, and an in-process N-rank
// group (rank 0 on the calling thread, the other ranks following on threads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace bora::testing {

struct GreedyRun {
  std::vector<int32_t> tokens;  // the greedy continuation
  std::vector<float> logits;    // [steps, vocab]: the logits each token was chosen from
};

// Prefill `prompt` through a contiguous cache, then `steps` greedy tokens one at a time.
GreedyRun RunGreedy(model::Transformer& model, const std::vector<int32_t>& prompt, int steps);

// Loads `dir` as `ranks` shards (rank r from follower_dirs[r-1] when given: another model),
// joins them in an in-process group, runs `work` with rank 0's model and ends the group.
void WithEmulatedGroup(const std::string& dir, int ranks, model::LoadOptions options,
                       const std::function<void(model::Transformer&)>& work,
                       const std::vector<std::string>& follower_dirs = {});

}  // namespace bora::testing
