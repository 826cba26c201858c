// GGUF files end to end against llama.cpp and Mistral's reference: every file of
// ../shared/gguf exactly dequantized (--dtype f32) reproduces llama.cpp's logits of its F32
// dequantization and greedy tokens; bora's own decoding stays within the README's distance of
// llama.cpp's quantized compute; the BF16 file passes the reference goldens; stories260K's GGUFs
// continue a story like llama2.c.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "kernels/activation.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "model/model_test_util.h"
#include "testdata.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return Json::parse(in);
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  EXPECT_TRUE(in) << path;
  std::vector<float> values(static_cast<size_t>(in.tellg()) / 4);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
  return values;
}

std::unique_ptr<model::Transformer> Load(const std::string& path, std::optional<DType> dtype) {
  model::LoadOptions options;
  options.threads = 2;
  options.context = 256;
  options.dtype = dtype;
  return model::LoadModel(path, options);
}

// Max abs and RMS relative distance of all prompt positions to a stored [rows, vocab] file.
struct Distance {
  double max_abs = 0, sum_sq_diff = 0, sum_sq_ref = 0;
};
void Accumulate(model::Transformer& engine, const std::vector<int32_t>& prompt, const std::vector<float>& ref,
                Distance& d) {
  const int64_t vocab = engine.params().vocab_size;
  const size_t rows = ref.size() / static_cast<size_t>(vocab);
  ASSERT_LE(rows, prompt.size());
  model::ContiguousKvCache cache = engine.NewCache();
  std::vector<float> logits(prompt.size() * static_cast<size_t>(vocab));
  engine.Forward(prompt, cache, logits, true);
  for (size_t i = 0; i < rows * static_cast<size_t>(vocab); ++i) {
    const double diff = static_cast<double>(logits[i]) - ref[i];
    d.max_abs = std::max(d.max_abs, std::fabs(diff));
    d.sum_sq_diff += diff * diff;
    d.sum_sq_ref += static_cast<double>(ref[i]) * ref[i];
  }
}

class GgufFolderTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufFolderTest, ExactDequantizationMatchesLlamaCppF32) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/gguf/" + GetParam();
  const Json golden = ReadJson(dir + "/golden.json");
  for (const auto& [type, file] : golden.at("files").items()) {
    SCOPED_TRACE(type);
    auto engine = Load(dir + "/" + file.at("gguf").get<std::string>(), DType::kF32);
    for (size_t c = 0; c < file.at("cases").size(); ++c) {
      const Json& file_case = file["cases"][c];
      if (!file_case.contains("dequant_f32_prefill_logits")) continue;
      const std::vector<int32_t> prompt = golden["cases"][c].at("prompt_tokens").get<std::vector<int32_t>>();
      Distance d;
      Accumulate(*engine, prompt, ReadFloats(dir + "/" + file_case["dequant_f32_prefill_logits"]["file"].get<std::string>()), d);
      EXPECT_LE(d.max_abs, 1e-4) << file_case["name"];
      const std::vector<int32_t> greedy = file_case.at("greedy_tokens_dequant_f32").get<std::vector<int32_t>>();
      EXPECT_EQ(GreedyTokens(*engine, prompt, greedy.size()), greedy) << file_case["name"];
    }
  }
}

TEST_P(GgufFolderTest, OwnDecodingIsCloseToLlamaCppCompute) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/gguf/" + GetParam();
  const Json golden = ReadJson(dir + "/golden.json");
  for (const auto& [type, file] : golden.at("files").items()) {
    SCOPED_TRACE(type);
    auto engine = Load(dir + "/" + file.at("gguf").get<std::string>(), std::nullopt);
    // Q8_0 / Q4_0 keep their own blocks; other quantized types are held as q8.
    if (type == "Q4_0") {
      EXPECT_EQ(engine->compute_dtype(), DType::kQ4);
    } else if (type != "BF16") {
      EXPECT_EQ(engine->compute_dtype(), DType::kQ8);
    }
    Distance d;
    for (size_t c = 0; c < file.at("cases").size(); ++c) {
      const std::vector<int32_t> prompt = golden["cases"][c].at("prompt_tokens").get<std::vector<int32_t>>();
      Accumulate(*engine, prompt, ReadFloats(dir + "/" + file["cases"][c]["prefill_logits"]["file"].get<std::string>()), d);
    }
    const double rms_rel = std::sqrt(d.sum_sq_diff / d.sum_sq_ref);
    if (engine->params().moe) {
      EXPECT_LT(rms_rel, 0.5);  // MoE: expert choices flip under quantized compute (README)
    } else {
      EXPECT_LE(d.max_abs, 0.5);
      EXPECT_LE(rms_rel, 0.05);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GgufFolderTest, ::testing::Values("tiny-dense", "tiny-moe"));

TEST(GgufModelTest, Bf16FilePassesTheReferenceGoldens) {
  BORA_REQUIRE_SHARED(shared);
  auto engine = Load(shared + "/gguf/tiny-dense/tiny-dense-BF16.gguf", DType::kF32);
  const model::GoldenSet golden = model::ReadGoldenSet(shared + "/reference-models/tiny-dense/golden");
  for (const model::GoldenCase& golden_case : golden.cases) {
    const model::GoldenCaseResult result = model::RunGoldenCase(*engine, golden_case);
    EXPECT_TRUE(result.passed()) << golden_case.name << " max abs " << result.max_abs_diff;
  }
}

TEST(GgufModelTest, Stories260KContinuesLikeLlama2c) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/real-models/stories260K";
  const Json runs = ReadJson(dir + "/reference_outputs.json").at("runs");
  const std::vector<int32_t> input = runs.at("once").at("input_ids").get<std::vector<int32_t>>();
  const std::vector<int32_t> printed = runs.at("once").at("printed_token_ids").get<std::vector<int32_t>>();
  const std::vector<int32_t> expected(printed.begin() + static_cast<int64_t>(input.size()) - 1, printed.end());
  // The F32 file is the checkpoint itself: all of run.c's tokens. F16 (llama.cpp: 96/96 too).
  for (const char* type : {"F32", "F16"}) {
    auto engine = Load(dir + "/gguf/stories260K-" + std::string(type) + ".gguf", std::nullopt);
    EXPECT_EQ(GreedyTokens(*engine, input, expected.size()), expected) << type;
  }
  // Q8_0 runs on its own blocks: llama.cpp's 96 tokens also matched run.c.
  auto q8 = Load(dir + "/gguf/stories260K-Q8_0.gguf", std::nullopt);
  EXPECT_EQ(q8->compute_dtype(), DType::kQ8);
  EXPECT_EQ(GreedyTokens(*q8, input, expected.size()), expected);
}

TEST(GgufModelTest, VocabularyOnlyFileIsRefusedAsAModel) {
  BORA_REQUIRE_SHARED(shared);
  try {
    Load(shared + "/gguf/tokenizers/mistral-v3-spm-vocab.gguf", std::nullopt);
    FAIL() << "a vocabulary-only GGUF loaded as a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no weights"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bora::testing
