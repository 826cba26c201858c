// The first check on trained weights: bora's greedy output on stories260K (llama2.c's real
// model, float32) equals the token ids llama2.c's run.c printed, from BOS alone and from the
// prompt "Once upon a time".
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/activation.h"
#include "model/transformer.h"
#include "model/model_test_util.h"
#include "testdata.h"

namespace bora::testing {
namespace {

// Greedy continuation of `prompt` for `count` tokens, fed one token at a time like run.c.
TEST(RealModelTest, Stories260KGreedyEqualsLlama2c) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/real-models/stories260K";
  std::ifstream in(dir + "/reference_outputs.json");
  const nlohmann::json runs = nlohmann::json::parse(in).at("runs");
  model::LoadOptions options;
  options.threads = 2;
  options.dtype = DType::kF32;
  auto engine = model::LoadModel(dir, options);
  for (const char* run : {"bos", "once"}) {
    const std::vector<int32_t> input = runs.at(run).at("input_ids").get<std::vector<int32_t>>();
    const std::vector<int32_t> printed = runs.at(run).at("printed_token_ids").get<std::vector<int32_t>>();
    // run.c prints the prompt tokens after BOS, then what it generated.
    const std::vector<int32_t> expected(printed.begin() + static_cast<int64_t>(input.size()) - 1, printed.end());
    ASSERT_GT(expected.size(), 90u);
    EXPECT_EQ(GreedyTokens(*engine, input, expected.size()), expected) << run;
  }
}

}  // namespace
}  // namespace bora::testing
