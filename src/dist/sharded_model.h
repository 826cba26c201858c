// Loading a model as this process's part of the world's tensor-parallel group.
#pragma once

#include <memory>
#include <string>

#include "dist/tensor_parallel.h"
#include "model/transformer.h"

namespace bora::dist {

// The model (rank 0: the one the scheduler uses; ranks >= 1: the shard that follows), and the
// group when the world has several ranks. The group goes first: rank 0's tells the others to
// stop before the model is freed.
struct ShardedModel {
  std::unique_ptr<Communicator> comm;  // this model's own communicator (ranks > 1)
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<TensorParallelGroup> group;
  int ranks() const { return group ? group->comm().size() : 1; }
  // Ranks >= 1 call FollowSteps instead of running the command.
  bool follower() const { return group && group->comm().rank() != 0; }
  ShardedModel() = default;
  ShardedModel(ShardedModel&&) = default;
  ShardedModel& operator=(ShardedModel&&) = default;
  ~ShardedModel() { group.reset(); }
};

// Loads `dir` split over the world's ranks (whole with one rank), with a communicator of its own
// (so several models' engine threads never share one). Collective: every rank calls it with the
// same arguments, models in the same order; when any rank fails (a bad rank count, a missing file, another model)
// every rank throws, the message naming the first failing rank, and no rank is left waiting.
ShardedModel LoadShardedModel(const std::string& dir, model::LoadOptions options);

}  // namespace bora::dist
