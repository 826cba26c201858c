// Run under mpirun (ctest label mpi): N real ranks reproduce the in-process N-shard emulation bit
// for bit, so the single-machine tests pin the math real groups compute. Without mpirun: skipped.
#include <gtest/gtest.h>

#include <cstring>

#include "dist/sharded_model.h"
#include "dist/world.h"
#include "model/model_test_util.h"
#include "testdata.h"
#include "tp_test_util.h"

namespace bora::testing {
namespace {

void ExpectRanksMatchEmulation(const std::string& dir) {
  dist::World& world = dist::World::Get();
  model::LoadOptions options;
  options.threads = 1;
  options.context = 256;
  const std::vector<int32_t> prompt = {1, 17, 33, 5, 99, 250};
  dist::ShardedModel sharded = dist::LoadShardedModel(dir, options);
  if (sharded.follower()) {
    sharded.group->FollowSteps();
    return;
  }
  const GreedyRun real = RunGreedy(*sharded.model, prompt, 32);
  sharded.group.reset();  // the other ranks leave FollowSteps
  GreedyRun emulated;
  WithEmulatedGroup(dir, world.size(), options, [&](model::Transformer& m) { emulated = RunGreedy(m, prompt, 32); });
  EXPECT_EQ(real.tokens, emulated.tokens) << dir;
  ASSERT_EQ(real.logits.size(), emulated.logits.size());
  EXPECT_EQ(std::memcmp(real.logits.data(), emulated.logits.data(), real.logits.size() * sizeof(float)), 0)
      << dir << ": " << world.size() << " MPI ranks differ from the in-process emulation";
}

TEST(MpiTensorParallel, ReferenceModelsBitForBit) {
  if (dist::World::Get().size() == 1) GTEST_SKIP() << "run under mpirun -np N";
  if (2 % dist::World::Get().size() != 0) GTEST_SKIP() << "the reference models have 2 KV heads";
  BORA_REQUIRE_SHARED(shared);
  ExpectRanksMatchEmulation(shared + "/reference-models/tiny-moe/mistral");
  ExpectRanksMatchEmulation(shared + "/reference-models/tiny-ministral3/mistral");
}

TEST(MpiTensorParallel, SixKvHeadsBitForBit) {
  if (dist::World::Get().size() == 1) GTEST_SKIP() << "run under mpirun -np N";
  formats::ModelParams p = SmallParams();
  p.n_heads = 12;
  p.n_kv_heads = 6;
  p.head_dim = 16;
  p.hidden_dim = 192;
  TempDir dir;  // each rank writes the same seeded model into its own folder
  MakeModel(p, 7, dir.path());
  ExpectRanksMatchEmulation(dir.path());
}

}  // namespace
}  // namespace bora::testing

int main(int argc, char** argv) {
  bora::dist::World::Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  bora::dist::World::Finish();
  return status;
}
