// Memory planning and admission: context capping, KV sizing with sliding windows, refusal with
// a clear error before anything is mapped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "base/error.h"
#include "model/kv_cache.h"
#include "model/memory_plan.h"
#include "model/model_test_util.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

TEST(MemoryPlanTest, KvBytesFollowContextAndWindows) {
  formats::ModelParams params = SmallParams();  // 2 layers, 2 kv heads x 16 = 32 floats per row
  EXPECT_EQ(model::ContiguousKvCache::BytesFor(params, 100), 2u * 2 * 4 * 32 * 100);
  params.layer_windows = {10, 0};
  EXPECT_EQ(model::ContiguousKvCache::BytesFor(params, 100), 2u * 4 * 32 * (10 + 100));
  params.layer_windows = {1000, 0};  // a window longer than the context is capped by it
  EXPECT_EQ(model::ContiguousKvCache::BytesFor(params, 100), 2u * 4 * 32 * (100 + 100));
  model::ContiguousKvCache cache(params, 100);
  EXPECT_EQ(cache.capacity(0), 100);
  EXPECT_EQ(cache.capacity(1), 100);
}

TEST(MemoryPlanTest, ContextIsCappedByTheModelMaximum) {
  TempDir dir;
  formats::ModelParams params = SmallParams();
  params.max_positions = 128;
  MakeModel(params, 31, dir.path());
  formats::ModelFolder folder = formats::InspectModelFolder(dir.path());
  EXPECT_EQ(model::PlanMemory(folder, 4096).context, 128);
  EXPECT_EQ(model::PlanMemory(folder, 64).context, 64);
  EXPECT_THROW(model::PlanMemory(folder, 0), InvalidArgument);
  model::MemoryPlan plan = model::PlanMemory(folder, 64);
  EXPECT_GE(plan.weights, folder.weight_bytes);
  EXPECT_EQ(plan.kv_cache, model::ContiguousKvCache::BytesFor(params, 64));
}

TEST(MemoryPlanTest, RefusesWhatDoesNotFitWithAnExplanation) {
  model::MemoryPlan plan;
  plan.context = 4096;
  plan.weights = 10ull << 30;
  plan.kv_cache = 1ull << 30;
  MemoryBudget budget;
  budget.usable_bytes = 8ull << 30;
  try {
    model::CheckMemoryFits(plan, budget, "some-model");
    FAIL() << "expected ResourceExhausted";
  } catch (const ResourceExhausted& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("some-model"), std::string::npos) << message;
    EXPECT_NE(message.find("--ctx"), std::string::npos) << message;
  }
  budget.usable_bytes = 12ull << 30;
  EXPECT_NO_THROW(model::CheckMemoryFits(plan, budget, "some-model"));
}

TEST(MemoryPlanTest, LoadRefusesAHugeContextBeforeAllocating) {
  TempDir dir;
  MakeModel(SmallParams(), 32, dir.path());
  model::LoadOptions options;
  options.context = int64_t{1} << 40;  // 2 layers x 256 B x 2^40 positions: petabytes of KV
  EXPECT_THROW(model::LoadModel(dir.path(), options), ResourceExhausted);
}

TEST(MemoryPlanTest, LoadHonoursBoraMemoryLimit) {
  TempDir dir;
  MakeModel(SmallParams(), 33, dir.path());
  model::LoadOptions options;
  options.context = 64;
  ::setenv("BORA_MEMORY_LIMIT", "300M", 1);  // minus the 256 MiB reserve: 44 MiB usable
  EXPECT_NO_THROW(model::LoadModel(dir.path(), options));
  options.context = 200000;                  // 200k positions x 512 B of KV = 98 MiB
  EXPECT_THROW(model::LoadModel(dir.path(), options), ResourceExhausted);
  ::unsetenv("BORA_MEMORY_LIMIT");
}

}  // namespace
}  // namespace bora::testing
