// Golden logits of Mistral's reference code (../shared/reference-models) for tiny-dense and
// tiny-moe in both layouts, through one-shot, chunked and token-by-token prefill and decode.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/golden.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

struct GoldenParam {
  const char* model;
  const char* layout;
};

class GoldenTest : public ::testing::TestWithParam<GoldenParam> {};

TEST_P(GoldenTest, EveryCaseAndPathWithinTolerance) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/" + GetParam().model;
  model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
  ASSERT_EQ(golden.cases.size(), 3u);
  model::LoadOptions options;
  options.threads = 2;
  auto engine = model::LoadModel(ref + "/" + GetParam().layout, options);
  for (const model::GoldenCase& golden_case : golden.cases) {
    for (int64_t chunk : {5, 3}) {
      model::GoldenCaseResult result = model::RunGoldenCase(*engine, golden_case, chunk);
      ASSERT_EQ(result.paths.size(), 4u);
      for (const auto& path : result.paths) {
        EXPECT_LE(path.max_abs_diff, model::kGoldenTolerance) << golden_case.name << " " << path.path;
      }
      EXPECT_TRUE(result.greedy_match) << golden_case.name << " first mismatch " << result.first_greedy_mismatch;
      EXPECT_TRUE(result.passed());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllModelsAndLayouts, GoldenTest,
                         ::testing::Values(GoldenParam{"tiny-dense", "mistral"}, GoldenParam{"tiny-dense", "hf"},
                                           GoldenParam{"tiny-moe", "mistral"}, GoldenParam{"tiny-moe", "hf"}),
                         [](const auto& info) {
                           std::string name = std::string(info.param.model) + "_" + info.param.layout;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(GoldenCheckTest, DetectsPerturbedLogitsAndTokens) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-dense";
  model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
  model::LoadOptions options;
  options.threads = 1;
  auto engine = model::LoadModel(ref + "/mistral", options);
  model::GoldenCase logits_off = golden.cases[1];
  logits_off.decode_logits[5 * golden.vocab_size + 17] += 2e-4f;
  model::GoldenCaseResult result = model::RunGoldenCase(*engine, logits_off);
  EXPECT_FALSE(result.passed());
  EXPECT_GT(result.max_abs_diff, 1.5e-4);

  model::GoldenCase token_off = golden.cases[1];
  token_off.greedy_tokens[3] = (token_off.greedy_tokens[3] + 1) % static_cast<int32_t>(golden.vocab_size);
  result = model::RunGoldenCase(*engine, token_off);
  EXPECT_FALSE(result.greedy_match);
  EXPECT_EQ(result.first_greedy_mismatch, 3);
}

}  // namespace
}  // namespace bora::testing
