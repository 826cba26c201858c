// What a sharded forward pass needs from its tensor-parallel group: the step broadcast on rank 0,
// adapters cut to this rank's part, and the two collectives (sum of partial products, gather of
// the vocabulary-split logits). dist/ implements it over MPI or in-process threads.
#pragma once

#include <cstdint>
#include <span>

#include "model/lora_adapter.h"
#include "model/shard.h"

namespace bora::model {

struct BatchItem;

class ShardGroup {
 public:
  virtual ~ShardGroup() = default;
  // This rank's plan; plan().layout.rank 0 runs the scheduler, the others follow its steps.
  virtual const ShardPlan& plan() const = 0;
  // Rank 0, once per forward call, after validation and KV reservation, before any compute:
  // sends what the other ranks need to run the same call (tokens, cache positions and block
  // tables, adapters). The items hold whole-model adapters.
  virtual void BeginStep(std::span<const BatchItem> items) = 0;
  // Rank 0: this rank's part of a whole-model adapter seen by the current BeginStep.
  virtual const LoraAdapter* LocalAdapter(const LoraAdapter* whole) = 0;
  // data = sum over the ranks of their data, added in rank order (0 + 1 + ...), so every rank
  // holds the same bits and an in-process emulation reproduces MPI exactly.
  virtual void AllReduceSum(std::span<float> data) = 0;
  // Rank 0 receives in `all` every rank's `local` concatenated in rank order; `all` is unused
  // on the other ranks.
  virtual void GatherToRoot(std::span<const float> local, std::span<float> all) = 0;
};

}  // namespace bora::model
