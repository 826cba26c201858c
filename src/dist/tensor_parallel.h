// One model served by a tensor-parallel group: rank 0 runs everything but its share of the
// compute and sends each forward step to the other ranks, which replay it on their shards with
// mirrors of rank 0's KV caches (vLLM V1's model: the scheduler broadcasts, every rank computes).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "formats/model_folder.h"
#include "model/kv_block_pool.h"
#include "model/kv_cache.h"
#include "model/paged_kv_cache.h"
#include "model/shard_group.h"
#include "model/transformer.h"

namespace bora::dist {

// A hash of what makes two copies of a model the same for tensor parallelism: the config file
// and the name and size of every weight file.
std::string ModelIdentity(const formats::ModelFolder& folder);

class TensorParallelGroup final : public model::ShardGroup {
 public:
  // `model` was loaded with LoadOptions::shard = {comm.rank(), comm.size()}; attaches itself.
  TensorParallelGroup(Communicator& comm, model::Transformer& model);
  ~TensorParallelGroup() override;

  const model::ShardPlan& plan() const override { return model_.shard_plan(); }
  void BeginStep(std::span<const model::BatchItem> items) override;
  const model::LoraAdapter* LocalAdapter(const model::LoraAdapter* whole) override;
  void AllReduceSum(std::span<float> data) override { comm_.AllReduceSum(data, reduce_scratch_); }
  void GatherToRoot(std::span<const float> local, std::span<float> all) override { comm_.Gather(local, all); }

  // Ranks >= 1: replays rank 0's steps until rank 0 calls Shutdown. An error here ends the
  // whole group (Communicator::Abort) naming this rank: the ranks must never diverge.
  void FollowSteps();
  // Rank 0: ends the other ranks' FollowSteps (idempotent; the destructor calls it).
  void Shutdown();

  Communicator& comm() { return comm_; }

 private:
  struct Adapter {
    uint64_t key = 0;
    std::shared_ptr<const model::LoraAdapter> local;
    int64_t last_step = 0;
  };
  void RunFollowerStep(const std::vector<uint8_t>& message);
  uint64_t AdapterKey(const model::LoraAdapter& whole) const;

  Communicator& comm_;
  model::Transformer& model_;
  std::vector<float> reduce_scratch_;
  std::vector<uint8_t> message_;
  int64_t step_ = 0;
  bool shut_down_ = false;
  // Rank 0: the whole adapters of the current step and their parts.
  std::vector<std::pair<const model::LoraAdapter*, const model::LoraAdapter*>> step_adapters_;
  std::vector<Adapter> adapters_;  // every rank: the parts sent so far (same order on all ranks)
  // Ranks >= 1: their own pool (same block ids as rank 0's) and contiguous caches by rank 0's key.
  std::unique_ptr<model::KvBlockPool> pool_;
  std::map<uint64_t, std::unique_ptr<model::ContiguousKvCache>> contiguous_;
  std::vector<float> hidden_scratch_;
  // Ranks >= 1: per-step buffers, reused so that a decode step allocates nothing.
  std::vector<std::vector<int32_t>> step_tokens_, step_tables_;
  std::vector<std::unique_ptr<model::MirrorKvCache>> mirrors_;
  std::vector<model::BatchItem> step_items_;
  std::vector<std::pair<size_t, int64_t>> step_hidden_;  // (item, first row in hidden_scratch_)
};

}  // namespace bora::dist
