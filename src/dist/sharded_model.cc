// Collective model loading for tensor parallelism.
#include "dist/sharded_model.h"

#include "dist/world.h"

namespace bora::dist {

ShardedModel LoadShardedModel(const std::string& dir, model::LoadOptions options) {
  World& world = World::Get();
  ShardedModel out;
  if (world.size() == 1) {
    out.model = model::LoadModel(dir, options);
    return out;
  }
  options.shard = model::ShardLayout{world.rank(), world.size()};
  bool ok = true;
  std::string error, identity;
  try {
    out.model = model::LoadModel(dir, options);
    identity = ModelIdentity(out.model->folder());
  } catch (const std::exception& e) {
    ok = false;
    error = e.what();
  }
  AgreeToStart(world.comm(), ok, error, identity);
  out.comm = world.NewComm();
  out.group = std::make_unique<TensorParallelGroup>(*out.comm, *out.model);
  return out;
}

}  // namespace bora::dist
