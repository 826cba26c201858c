// Every key of params.json / config.json is understood, harmless or refused by name: a table of
// every config under ../shared with its expected outcome, crafted unknown keys at each level,
// unknown rope types, and the Mistral 3 fields read exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/model_params.h"
#include "testdata.h"

namespace bora::formats {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

ModelParams Parse(const std::string& text, const std::string& path) {
  return fs::path(path).filename() == "params.json" ? ParseMistralParams(text, path) : ParseHfConfig(text, path);
}

template <typename Error, typename Fn>
std::string MessageOf(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

// Expected outcome of every config under ../shared: "" parses, otherwise the refusal names this.
const std::map<std::string, std::string>& ExpectedOutcomes() {
  static const std::map<std::string, std::string> kTable = {
      {"reference-models/tiny-dense/mistral/params.json", ""},
      {"reference-models/tiny-dense/hf/config.json", ""},
      {"reference-models/tiny-moe/mistral/params.json", ""},
      {"reference-models/tiny-moe/hf/config.json", ""},
      {"reference-models/tiny-ministral3/mistral/params.json", ""},
      {"reference-models/tiny-ministral3/mistral-fp8/params.json", ""},
      {"reference-models/tiny-ministral3/hf/config.json", ""},
      {"reference-models/tiny-ministral3/hf-fp8/config.json", ""},
      {"reference-models/tiny-ministral3/hf-mistral3/config.json", ""},
      {"reference-models/tiny-pixtral/mistral/params.json", ""},  // Pixtral: decoder + vision encoder
      {"reference-models/tiny-mistral4/mistral/params.json", "multi-head latent attention"},
      {"reference-models/tiny-mistral4/hf/config.json", "multi-head latent attention"},
      {"reference-models/tiny-mistral4/fp8/mistral/params.json", "multi-head latent attention"},
      {"real-models/stories260K/params.json", ""},
  };
  return kTable;
}

TEST(ConfigKeysTest, EveryConfigUnderSharedHasItsExpectedOutcome) {
  BORA_REQUIRE_SHARED(shared);
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(shared)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || (name != "params.json" && name != "config.json")) continue;
    const std::string relative = fs::relative(entry.path(), shared).string();
    if (relative.find("node_modules") != std::string::npos || relative.rfind("tokenizers/", 0) == 0) continue;
    auto expected = ExpectedOutcomes().find(relative);
    ASSERT_NE(expected, ExpectedOutcomes().end()) << relative << " is not in the table: add its expected outcome";
    const std::string text = ReadText(entry.path().string());
    if (expected->second.empty()) {
      EXPECT_NO_THROW(Parse(text, relative)) << relative;
    } else {
      const std::string message = MessageOf<Unsupported>([&] { Parse(text, relative); });
      EXPECT_NE(message.find(expected->second), std::string::npos) << relative << ": " << message;
      EXPECT_NE(message.find(relative), std::string::npos) << message;
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(ExpectedOutcomes().size()));
}

// Inserts "bogus_key" into the object at `path` (JSON pointer) and expects a refusal naming it
// with its dotted location.
void ExpectUnknownKeyRefused(const std::string& text, const std::string& file, const std::string& pointer,
                             const std::string& dotted) {
  Json root = Json::parse(text);
  root[Json::json_pointer(pointer + "/bogus_key")] = 1;
  const std::string message = MessageOf<Unsupported>([&] { Parse(root.dump(), file); });
  EXPECT_NE(message.find("\"" + dotted + "bogus_key\""), std::string::npos) << pointer << ": " << message;
  EXPECT_NE(message.find(file), std::string::npos) << message;
}

TEST(ConfigKeysTest, UnknownKeyAtEveryLevelIsRefusedByName) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3/";
  const std::string params = ReadText(ref + "mistral-fp8/params.json");
  for (const auto& [pointer, dotted] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"/yarn", "yarn."}, {"/llama_4_scaling", "llama_4_scaling."}, {"/quantization", "quantization."}}) {
    ExpectUnknownKeyRefused(params, "x/params.json", pointer, dotted);
  }
  ExpectUnknownKeyRefused(ReadText(shared + "/reference-models/tiny-moe/mistral/params.json"), "x/params.json",
                          "/moe", "moe.");
  const std::string hf = ReadText(ref + "hf-fp8/config.json");
  for (const auto& [pointer, dotted] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"/rope_parameters", "rope_parameters."}, {"/quantization_config", "quantization_config."}}) {
    ExpectUnknownKeyRefused(hf, "x/config.json", pointer, dotted);
  }
  const std::string mistral3 = ReadText(ref + "hf-mistral3/config.json");
  for (const auto& [pointer, dotted] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"/text_config", "text_config."}, {"/text_config/rope_parameters", "text_config.rope_parameters."}}) {
    ExpectUnknownKeyRefused(mistral3, "x/config.json", pointer, dotted);
  }
  // Older releases' configs too.
  ExpectUnknownKeyRefused(ReadText(shared + "/reference-models/tiny-dense/hf/config.json"), "x/config.json", "", "");
  ExpectUnknownKeyRefused(ReadText(shared + "/reference-models/tiny-dense/mistral/params.json"), "x/params.json", "",
                          "");
}

TEST(ConfigKeysTest, UnknownRopeTypesAndQuantizationsAreRefusedByName) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3/";
  Json hf = Json::parse(ReadText(ref + "hf/config.json"));
  for (const char* type : {"longrope", "llama3", "linear", "dynamic"}) {
    Json copy = hf;
    copy["rope_parameters"]["rope_type"] = type;
    copy["rope_parameters"]["type"] = type;
    const std::string message = MessageOf<Unsupported>([&] { ParseHfConfig(copy.dump(), "x/config.json"); });
    EXPECT_NE(message.find(std::string("\"") + type + "\""), std::string::npos) << message;
  }
  Json quantized = Json::parse(ReadText(ref + "hf-fp8/config.json"));
  quantized["quantization_config"]["quant_method"] = "gptq";
  EXPECT_NE(MessageOf<Unsupported>([&] { ParseHfConfig(quantized.dump(), "x/config.json"); }).find("gptq"),
            std::string::npos);
  quantized = Json::parse(ReadText(ref + "hf-fp8/config.json"));
  quantized["quantization_config"]["weight_block_size"] = {128, 128};
  EXPECT_NE(MessageOf<Unsupported>([&] { ParseHfConfig(quantized.dump(), "x/config.json"); }).find("block"),
            std::string::npos);
  Json params = Json::parse(ReadText(ref + "mistral-fp8/params.json"));
  params["quantization"]["qformat_weight"] = "int4";
  EXPECT_NE(MessageOf<Unsupported>([&] { ParseMistralParams(params.dump(), "x/params.json"); }).find("int4"),
            std::string::npos);
}

TEST(ConfigKeysTest, Ministral3FieldsAreReadIdenticallyFromEveryLayout) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3/";
  for (const char* layout : {"mistral/params.json", "mistral-fp8/params.json", "hf/config.json",
                             "hf-fp8/config.json", "hf-mistral3/config.json"}) {
    SCOPED_TRACE(layout);
    const ModelParams p = Parse(ReadText(ref + layout), ref + layout);
    EXPECT_EQ(p.dim, 256);
    EXPECT_EQ(p.head_dim, 64);
    EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
    EXPECT_TRUE(p.tie_embeddings);
    ASSERT_TRUE(p.max_positions.has_value());
    EXPECT_EQ(*p.max_positions, 512);
    ASSERT_TRUE(p.yarn.has_value());
    EXPECT_DOUBLE_EQ(p.yarn->factor, 16);
    EXPECT_EQ(p.yarn->original_max_positions, 32);
    EXPECT_DOUBLE_EQ(p.yarn->beta_fast, 32);
    EXPECT_DOUBLE_EQ(p.yarn->beta_slow, 1);
    EXPECT_DOUBLE_EQ(p.yarn->attention_factor, 1.0);
    ASSERT_TRUE(p.llama4_scaling.has_value());
    EXPECT_DOUBLE_EQ(p.llama4_scaling->beta, 0.1);
    EXPECT_EQ(p.llama4_scaling->original_max_positions, 32);
    EXPECT_EQ(p.HasSlidingWindow(), false);
    const bool fp8 = std::string(layout).find("fp8") != std::string::npos;
    EXPECT_EQ(p.quantization == WeightQuantization::kFp8, fp8);
    EXPECT_EQ(p.hf_language_model_prefix, std::string(layout).find("mistral3") != std::string::npos);
  }
}

TEST(ConfigKeysTest, YarnAttentionFactorFromApplyScaleAndMscale) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3/";
  Json params = Json::parse(ReadText(ref + "mistral/params.json"));
  params["yarn"]["apply_scale"] = true;
  EXPECT_NEAR(ParseMistralParams(params.dump(), "p.json").yarn->attention_factor, 0.1 * std::log(16.0) + 1, 1e-12);
  // Devstral 2's HF form: mscale_all_dim 0 counts as absent → get_mscale(factor).
  Json hf = Json::parse(ReadText(ref + "hf/config.json"));
  hf["rope_parameters"]["mscale_all_dim"] = 0.0;
  EXPECT_NEAR(ParseHfConfig(hf.dump(), "c.json").yarn->attention_factor, 0.1 * std::log(16.0) + 1, 1e-12);
  hf["rope_parameters"]["mscale"] = 2.0;
  hf["rope_parameters"]["mscale_all_dim"] = 1.0;
  EXPECT_NEAR(ParseHfConfig(hf.dump(), "c.json").yarn->attention_factor,
              (0.2 * std::log(16.0) + 1) / (0.1 * std::log(16.0) + 1), 1e-12);
  // transformers 4 form: top-level rope_theta with rope_scaling.
  Json legacy = Json::parse(ReadText(ref + "hf/config.json"));
  legacy["rope_scaling"] = legacy["rope_parameters"];
  legacy["rope_scaling"].erase("rope_theta");
  legacy.erase("rope_parameters");
  legacy["rope_theta"] = 1e6;
  const ModelParams from_legacy = ParseHfConfig(legacy.dump(), "c.json");
  ASSERT_TRUE(from_legacy.yarn.has_value());
  EXPECT_DOUBLE_EQ(from_legacy.rope_theta, 1e6);
  // A factor that contradicts max_position_embeddings / original is refused.
  Json contradiction = Json::parse(ReadText(ref + "hf/config.json"));
  contradiction["max_position_embeddings"] = 1024;
  EXPECT_THROW(ParseHfConfig(contradiction.dump(), "c.json"), FormatError);
  // Ministral 3 without a rope_theta anywhere: no class default is guessed.
  Json no_theta = Json::parse(ReadText(ref + "hf/config.json"));
  no_theta["rope_parameters"].erase("rope_theta");
  EXPECT_THROW(ParseHfConfig(no_theta.dump(), "c.json"), FormatError);
}

// transformers >= 5 writes MistralForCausalLM's rope_theta inside rope_parameters: it is read
// there, never replaced by the class default 1e4.
TEST(ConfigKeysTest, Transformers5MistralConfigKeepsItsRopeTheta) {
  BORA_REQUIRE_SHARED(shared);
  Json config = Json::parse(ReadText(shared + "/reference-models/tiny-dense/hf/config.json"));
  config.erase("rope_theta");
  config["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  const ModelParams p = ParseHfConfig(config.dump(), "c.json");
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
  EXPECT_FALSE(p.yarn.has_value());
  config["rope_theta"] = 5e5;  // two thetas that disagree
  EXPECT_THROW(ParseHfConfig(config.dump(), "c.json"), FormatError);
  config.erase("rope_theta");
  config["rope_parameters"]["factor"] = 2.0;  // yarn fields on a default rope
  EXPECT_THROW(ParseHfConfig(config.dump(), "c.json"), FormatError);
}

TEST(ConfigKeysTest, MistralParamsJsonRoundTripsTheMistral3Fields) {
  BORA_REQUIRE_SHARED(shared);
  const std::string path = shared + "/reference-models/tiny-ministral3/mistral/params.json";
  ModelParams p = ParseMistralParams(ReadText(path), path);
  p.yarn->attention_factor = 0.1 * std::log(16.0) + 1;  // apply_scale true
  const ModelParams back = ParseMistralParams(MistralParamsJson(p), "written.json");
  ASSERT_TRUE(back.yarn && back.llama4_scaling);
  EXPECT_DOUBLE_EQ(back.yarn->attention_factor, p.yarn->attention_factor);
  EXPECT_DOUBLE_EQ(back.yarn->factor, 16);
  EXPECT_EQ(back.llama4_scaling->original_max_positions, 32);
  EXPECT_TRUE(back.tie_embeddings);
  p.yarn->attention_factor = 1.3;  // not expressible as apply_scale
  EXPECT_THROW(MistralParamsJson(p), Unsupported);
}

}  // namespace
}  // namespace bora::formats
