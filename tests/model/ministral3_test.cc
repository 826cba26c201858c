// tiny-ministral3 (YaRN, llama-4 temperature, tied embeddings, FP8, transformers-5 layouts)
// against Mistral's reference: the rotary table and query scales of golden.json, and every
// golden case on all five layouts through one-shot, chunked, token-by-token prefill and decode.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/model_folder.h"
#include "model/golden.h"
#include "model/rope_table.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

nlohmann::json Mistral3Block(const std::string& ref) {
  std::ifstream in(ref + "/golden/golden.json");
  return nlohmann::json::parse(in).at("mistral3");
}

TEST(Ministral3Test, RopeTableAndQueryScalesMatchTheReference) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3";
  const nlohmann::json block = Mistral3Block(ref);
  const formats::ModelParams params = formats::InspectModelFolder(ref + "/mistral").params;
  const std::vector<float> ours = model::RopeInverseFrequencies(params);
  const std::vector<float> golden = block.at("rope_inv_freq_f32").get<std::vector<float>>();
  ASSERT_EQ(ours.size(), golden.size());
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_FLOAT_EQ(ours[i], golden[i]) << "pair " << i;
  for (const auto& [position, scale] : block.at("llama_4_query_scale_from_position").items()) {
    const int64_t p = std::stoll(position);
    EXPECT_FLOAT_EQ(model::QueryScale(params, p), scale.get<float>()) << p;
    EXPECT_FLOAT_EQ(model::QueryScale(params, p + 31), scale.get<float>()) << p + 31;
  }
  // The same table from the HF config (rope_parameters) as from params.json.
  EXPECT_EQ(model::RopeInverseFrequencies(formats::InspectModelFolder(ref + "/hf-mistral3").params), ours);
}

struct LayoutParam {
  const char* layout;
  const char* golden;
};

class Ministral3GoldenTest : public ::testing::TestWithParam<LayoutParam> {};

TEST_P(Ministral3GoldenTest, EveryCaseAndPathWithinTolerance) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3";
  model::GoldenSet golden = model::ReadGoldenSet(ref + "/" + GetParam().golden);
  ASSERT_EQ(golden.cases.size(), 3u);
  model::LoadOptions options;
  options.threads = 2;
  options.dtype = DType::kF32;  // FP8: dequantized exactly
  auto engine = model::LoadModel(ref + "/" + GetParam().layout, options);
  EXPECT_EQ(engine->context_length(), 512);  // capped by max_position_embeddings
  for (const model::GoldenCase& golden_case : golden.cases) {
    model::GoldenCaseResult result = model::RunGoldenCase(*engine, golden_case, 5);
    ASSERT_EQ(result.paths.size(), 4u);
    for (const auto& path : result.paths) {
      EXPECT_LE(path.max_abs_diff, model::kGoldenTolerance) << golden_case.name << " " << path.path;
    }
    EXPECT_TRUE(result.greedy_match) << golden_case.name << " first mismatch " << result.first_greedy_mismatch;
  }
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, Ministral3GoldenTest,
                         ::testing::Values(LayoutParam{"mistral", "golden"}, LayoutParam{"hf", "golden"},
                                           LayoutParam{"hf-mistral3", "golden"},
                                           LayoutParam{"mistral-fp8", "golden-fp8"},
                                           LayoutParam{"hf-fp8", "golden-fp8"}),
                         [](const auto& info) {
                           std::string name = info.param.layout;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// The default FP8 load (bf16 dequantization) gives the same logits: the scales have 4
// significant bits, so bf16 holds value x scale exactly.
TEST(Ministral3Test, Fp8DefaultDtypeIsExactHere) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3";
  model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden-fp8");
  model::LoadOptions options;
  options.threads = 2;
  auto engine = model::LoadModel(ref + "/mistral-fp8", options);
  model::GoldenCaseResult result = model::RunGoldenCase(*engine, golden.cases[1], 5);
  EXPECT_TRUE(result.passed()) << result.max_abs_diff;
}

}  // namespace
}  // namespace bora::testing
