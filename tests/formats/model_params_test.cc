// Tests parsing of params.json / config.json, hyper-parameter validation (rule L8) and params.json
// output.
#include "formats/model_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"

namespace bora::formats {
namespace {

// shared/reference-models/tiny-dense/mistral/params.json, verbatim.
constexpr char kTinyDenseParams[] = R"({
  "dim": 256,
  "n_layers": 4,
  "head_dim": 32,
  "hidden_dim": 768,
  "n_heads": 8,
  "n_kv_heads": 2,
  "norm_eps": 1e-05,
  "vocab_size": 4096,
  "rope_theta": 1000000.0
}
)";

// shared/reference-models/tiny-dense/hf/config.json, verbatim.
constexpr char kTinyDenseConfig[] = R"({
  "architectures": [
    "MistralForCausalLM"
  ],
  "model_type": "mistral",
  "vocab_size": 4096,
  "hidden_size": 256,
  "intermediate_size": 768,
  "num_hidden_layers": 4,
  "num_attention_heads": 8,
  "num_key_value_heads": 2,
  "head_dim": 32,
  "hidden_act": "silu",
  "max_position_embeddings": 4096,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "attention_dropout": 0.0,
  "initializer_range": 0.02,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "use_cache": true,
  "torch_dtype": "bfloat16"
}
)";

// Required params.json fields of a small model; `extra` is appended inside the object.
std::string Params(const std::string& extra = "", int n_layers = 4) {
  return R"({"dim": 64, "n_layers": )" + std::to_string(n_layers) +
         R"(, "hidden_dim": 128, "n_heads": 4, "n_kv_heads": 2, "norm_eps": 1e-5, "vocab_size": 100)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Required config.json fields of a small model of `architecture`; `extra` appended inside.
std::string Config(const std::string& architecture, const std::string& extra = "") {
  return R"({"architectures": [")" + architecture +
         R"("], "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,)"
         R"( "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Runs `fn`, which must throw E; returns its message.
template <typename E, typename Fn>
std::string MessageOf(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

TEST(ParseMistralParamsTest, TinyDenseParamsJson) {
  ModelParams p = ParseMistralParams(kTinyDenseParams, "params.json");
  EXPECT_EQ(p.dim, 256);
  EXPECT_EQ(p.n_layers, 4);
  EXPECT_EQ(p.head_dim, 32);
  EXPECT_EQ(p.hidden_dim, 768);
  EXPECT_EQ(p.n_heads, 8);
  EXPECT_EQ(p.n_kv_heads, 2);
  EXPECT_DOUBLE_EQ(p.norm_eps, 1e-5);
  EXPECT_EQ(p.vocab_size, 4096);
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
  EXPECT_EQ(p.layer_windows, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_FALSE(p.HasSlidingWindow());
  EXPECT_FALSE(p.moe.has_value());
  EXPECT_FALSE(p.max_positions.has_value());
  EXPECT_FALSE(p.tie_embeddings);
}

TEST(ParseMistralParamsTest, MissingRopeThetaDependsOnSlidingWindow) {
  ModelParams full = ParseMistralParams(Params(), "params.json");
  EXPECT_DOUBLE_EQ(full.rope_theta, 1e6);
  EXPECT_FALSE(full.HasSlidingWindow());

  ModelParams windowed = ParseMistralParams(Params(R"("sliding_window": 4096)"), "params.json");
  EXPECT_DOUBLE_EQ(windowed.rope_theta, 1e4);
  EXPECT_EQ(windowed.layer_windows, (std::vector<int64_t>{4096, 4096, 4096, 4096}));
  EXPECT_TRUE(windowed.HasSlidingWindow());

  // An explicit rope_theta wins either way.
  ModelParams explicit_theta =
      ParseMistralParams(Params(R"("sliding_window": 4096, "rope_theta": 5e5)"), "params.json");
  EXPECT_DOUBLE_EQ(explicit_theta.rope_theta, 5e5);
}

TEST(ParseMistralParamsTest, SlidingWindowForms) {
  ModelParams null_window = ParseMistralParams(Params(R"("sliding_window": null)"), "params.json");
  EXPECT_EQ(null_window.layer_windows, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_DOUBLE_EQ(null_window.rope_theta, 1e6);

  ModelParams float_window =
      ParseMistralParams(Params(R"("sliding_window": 256.0)"), "params.json");
  EXPECT_EQ(float_window.layer_windows, (std::vector<int64_t>{256, 256, 256, 256}));

  // A per-layer list repeats cyclically; null entries are full-attention layers.
  ModelParams cyclic =
      ParseMistralParams(Params(R"("sliding_window": [null, 128])"), "params.json");
  EXPECT_EQ(cyclic.layer_windows, (std::vector<int64_t>{0, 128, 0, 128}));
  EXPECT_TRUE(cyclic.HasSlidingWindow());
  EXPECT_DOUBLE_EQ(cyclic.rope_theta, 1e4);

  ModelParams full_list =
      ParseMistralParams(Params(R"("sliding_window": [1, 2, null, 4])"), "params.json");
  EXPECT_EQ(full_list.layer_windows, (std::vector<int64_t>{1, 2, 0, 4}));

  ModelParams all_null = ParseMistralParams(Params(R"("sliding_window": [null])"), "params.json");
  EXPECT_EQ(all_null.layer_windows, (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_FALSE(all_null.HasSlidingWindow());
  EXPECT_DOUBLE_EQ(all_null.rope_theta, 1e6);

  ModelParams alias = ParseMistralParams(Params(R"("_sliding_window": 64)"), "params.json");
  EXPECT_EQ(alias.layer_windows, (std::vector<int64_t>{64, 64, 64, 64}));
  EXPECT_DOUBLE_EQ(alias.rope_theta, 1e4);

  ModelParams alias_list =
      ParseMistralParams(Params(R"("_sliding_window": [32, null])"), "params.json");
  EXPECT_EQ(alias_list.layer_windows, (std::vector<int64_t>{32, 0, 32, 0}));
}

TEST(ParseMistralParamsTest, RejectsBadSlidingWindows) {
  std::string message = MessageOf<bora::FormatError>(
      [] { ParseMistralParams(Params(R"("sliding_window": [1, 2, 3])"), "my/params.json"); });
  EXPECT_NE(message.find("my/params.json"), std::string::npos) << message;
  EXPECT_NE(message.find("multiple"), std::string::npos) << message;
  EXPECT_THROW(ParseMistralParams(Params(R"("_sliding_window": [1, 2, 3])"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": [])"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": 0)"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": -4)"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": [4, -4])"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": "4096")"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": 4096.5)"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("sliding_window": 16777217)"), "params.json"),
               bora::FormatError);
}

TEST(ParseMistralParamsTest, MoeBlock) {
  ModelParams p = ParseMistralParams(
      Params(R"("moe": {"num_experts": 8, "num_experts_per_tok": 2})"), "params.json");
  ASSERT_TRUE(p.moe.has_value());
  EXPECT_EQ(p.moe->num_experts, 8);
  EXPECT_EQ(p.moe->num_experts_per_tok, 2);

  EXPECT_THROW(ParseMistralParams(Params(R"("moe": {"num_experts": 8})"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("moe": {"num_experts_per_tok": 2})"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("moe": [8, 2])"), "params.json"), bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("moe": {"num_experts": 2, "num_experts_per_tok": 3})"),
                                  "params.json"),
               bora::FormatError);
  // "moe": null means a dense model.
  EXPECT_FALSE(ParseMistralParams(Params(R"("moe": null)"), "params.json").moe.has_value());
}

TEST(ParseMistralParamsTest, HeadDimAndKvHeadDefaults) {
  ModelParams derived = ParseMistralParams(Params(), "params.json");
  EXPECT_EQ(derived.head_dim, 16);  // 64 / 4
  EXPECT_EQ(derived.n_kv_heads, 2);

  // Mistral-Nemo style: head_dim is stated and differs from dim / n_heads; it is kept.
  ModelParams stated = ParseMistralParams(Params(R"("head_dim": 32)"), "params.json");
  EXPECT_EQ(stated.head_dim, 32);
  EXPECT_EQ(stated.dim, 64);

  ModelParams no_kv = ParseMistralParams(
      R"({"dim": 64, "n_layers": 1, "hidden_dim": 128, "n_heads": 4, "norm_eps": 1e-5, "vocab_size": 100})",
      "params.json");
  EXPECT_EQ(no_kv.n_kv_heads, 4);  // multi-head attention
}

TEST(ParseMistralParamsTest, OptionalFields) {
  ModelParams p = ParseMistralParams(Params(R"("max_seq_len": 32768, "model_type": "transformer")"),
                                     "params.json");
  ASSERT_TRUE(p.max_positions.has_value());
  EXPECT_EQ(*p.max_positions, 32768);
  // Writers that emit integral floats are accepted.
  ModelParams floats = ParseMistralParams(
      R"({"dim": 64.0, "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "norm_eps": 1e-5, "vocab_size": 100})",
      "params.json");
  EXPECT_EQ(floats.dim, 64);
}

TEST(ParseMistralParamsTest, UnsupportedModels) {
  std::string mamba = MessageOf<bora::Unsupported>(
      [] { ParseMistralParams(Params(R"("model_type": "mamba")"), "mamba/params.json"); });
  EXPECT_NE(mamba.find("mamba/params.json"), std::string::npos) << mamba;
  EXPECT_NE(mamba.find("mamba\""), std::string::npos) << mamba;
  EXPECT_THROW(ParseMistralParams(Params(R"("model_type": 3)"), "params.json"), bora::Unsupported);
  std::string lora = MessageOf<bora::Unsupported>([] {
    ParseMistralParams(Params(R"("lora": {"rank": 16, "scaling": 2.0})"), "lora/params.json");
  });
  EXPECT_NE(lora.find("lora/params.json"), std::string::npos) << lora;
  EXPECT_NE(lora.find("LoRA"), std::string::npos) << lora;
}

TEST(ParseMistralParamsTest, RejectsMalformedJson) {
  std::string missing = MessageOf<bora::FormatError>([] {
    ParseMistralParams(
        R"({"n_layers": 1, "hidden_dim": 8, "n_heads": 1, "norm_eps": 1e-5, "vocab_size": 4})",
        "x/params.json");
  });
  EXPECT_NE(missing.find("x/params.json"), std::string::npos) << missing;
  EXPECT_NE(missing.find("\"dim\""), std::string::npos) << missing;
  EXPECT_THROW(ParseMistralParams("{", "params.json"), bora::FormatError);
  EXPECT_THROW(ParseMistralParams("", "params.json"), bora::FormatError);
  EXPECT_THROW(ParseMistralParams("[1, 2]", "params.json"), bora::FormatError);
  EXPECT_THROW(
      ParseMistralParams(
          R"({"dim": 64.5, "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "norm_eps": 1e-5, "vocab_size": 100})",
          "params.json"),
      bora::FormatError);
  EXPECT_THROW(
      ParseMistralParams(
          R"({"dim": "64", "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "norm_eps": 1e-5, "vocab_size": 100})",
          "params.json"),
      bora::FormatError);
  EXPECT_THROW(
      ParseMistralParams(
          R"({"dim": 64, "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "norm_eps": "1e-5", "vocab_size": 100})",
          "params.json"),
      bora::FormatError);
  EXPECT_THROW(
      ParseMistralParams(
          R"({"dim": 64, "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "vocab_size": 100})",
          "params.json"),
      bora::FormatError);  // norm_eps is required
  EXPECT_THROW(ParseMistralParams(Params(R"("max_seq_len": 0)"), "params.json"), bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("rope_theta": "1e6")"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("rope_theta": 1.0)"), "params.json"),
               bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params(R"("head_dim": 15)"), "params.json"), bora::FormatError);
  EXPECT_THROW(
      ParseMistralParams(
          R"({"dim": 64, "n_layers": 2, "hidden_dim": 128, "n_heads": 4, "n_kv_heads": 3, "norm_eps": 1e-5,)"
          R"( "vocab_size": 100})",
          "params.json"),
      bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params("", 0), "params.json"), bora::FormatError);
  EXPECT_THROW(ParseMistralParams(Params("", 2000), "params.json"), bora::FormatError);
}

TEST(ParseHfConfigTest, TinyDenseConfigJson) {
  ModelParams p = ParseHfConfig(kTinyDenseConfig, "config.json");
  EXPECT_EQ(p.dim, 256);
  EXPECT_EQ(p.n_layers, 4);
  EXPECT_EQ(p.head_dim, 32);
  EXPECT_EQ(p.hidden_dim, 768);
  EXPECT_EQ(p.n_heads, 8);
  EXPECT_EQ(p.n_kv_heads, 2);
  EXPECT_EQ(p.vocab_size, 4096);
  EXPECT_DOUBLE_EQ(p.norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
  EXPECT_EQ(p.layer_windows, (std::vector<int64_t>{0, 0, 0, 0}));  // "sliding_window": null
  ASSERT_TRUE(p.max_positions.has_value());
  EXPECT_EQ(*p.max_positions, 4096);
  EXPECT_FALSE(p.moe.has_value());
  EXPECT_FALSE(p.tie_embeddings);
}

TEST(ParseHfConfigTest, MistralClassDefaults) {
  ModelParams p = ParseHfConfig(Config("MistralForCausalLM"), "config.json");
  EXPECT_EQ(p.dim, 64);
  EXPECT_EQ(p.n_layers, 2);
  EXPECT_EQ(p.n_heads, 4);
  EXPECT_EQ(p.n_kv_heads, 2);
  EXPECT_EQ(p.head_dim, 16);
  EXPECT_EQ(p.hidden_dim, 128);
  EXPECT_EQ(p.vocab_size, 100);
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e4);
  EXPECT_DOUBLE_EQ(p.norm_eps, 1e-6);
  EXPECT_EQ(p.layer_windows, (std::vector<int64_t>{4096, 4096}));  // absent: MistralConfig's 4096
  EXPECT_FALSE(p.moe.has_value());
  EXPECT_FALSE(p.max_positions.has_value());
  EXPECT_FALSE(p.tie_embeddings);

  ModelParams null_window =
      ParseHfConfig(Config("MistralForCausalLM", R"("sliding_window": null)"), "config.json");
  EXPECT_EQ(null_window.layer_windows, (std::vector<int64_t>{0, 0}));
  ModelParams window =
      ParseHfConfig(Config("MistralForCausalLM", R"("sliding_window": 1024)"), "config.json");
  EXPECT_EQ(window.layer_windows, (std::vector<int64_t>{1024, 1024}));
  EXPECT_THROW(ParseHfConfig(Config("MistralForCausalLM", R"("sliding_window": 0)"), "config.json"),
               bora::FormatError);
}

TEST(ParseHfConfigTest, MistralOptionalFields) {
  ModelParams p =
      ParseHfConfig(Config("MistralForCausalLM",
                           R"("head_dim": null, "rms_norm_eps": 1e-5, "rope_theta": 1e6,)"
                           R"( "tie_word_embeddings": true, "max_position_embeddings": 32768,)"
                           R"( "hidden_act": "silu", "rope_scaling": null)"),
                    "config.json");
  EXPECT_EQ(p.head_dim, 16);  // null: hidden_size / heads
  EXPECT_DOUBLE_EQ(p.norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
  EXPECT_TRUE(p.tie_embeddings);
  ASSERT_TRUE(p.max_positions.has_value());
  EXPECT_EQ(*p.max_positions, 32768);

  ModelParams stated =
      ParseHfConfig(Config("MistralForCausalLM", R"("head_dim": 32)"), "config.json");
  EXPECT_EQ(stated.head_dim, 32);

  // num_key_value_heads absent: transformers' class default of 8.
  ModelParams kv = ParseHfConfig(
      R"({"architectures": ["MistralForCausalLM"], "hidden_size": 128, "num_hidden_layers": 1,)"
      R"( "num_attention_heads": 16, "intermediate_size": 64, "vocab_size": 10})",
      "config.json");
  EXPECT_EQ(kv.n_kv_heads, 8);
  EXPECT_EQ(kv.head_dim, 8);

  // model_type is the fallback when architectures is absent.
  ModelParams by_type = ParseHfConfig(
      R"({"model_type": "mistral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,)"
      R"( "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100})",
      "config.json");
  EXPECT_FALSE(by_type.moe.has_value());
  EXPECT_DOUBLE_EQ(by_type.rope_theta, 1e4);
}

TEST(ParseHfConfigTest, MixtralDefaults) {
  ModelParams p = ParseHfConfig(
      Config("MixtralForCausalLM", R"("num_local_experts": 4, "num_experts_per_tok": 1)"),
      "config.json");
  EXPECT_DOUBLE_EQ(p.rope_theta, 1e6);
  EXPECT_EQ(p.layer_windows, (std::vector<int64_t>{0, 0}));  // MixtralConfig: no window
  EXPECT_FALSE(p.HasSlidingWindow());
  ASSERT_TRUE(p.moe.has_value());
  EXPECT_EQ(p.moe->num_experts, 4);
  EXPECT_EQ(p.moe->num_experts_per_tok, 1);

  ModelParams defaults = ParseHfConfig(Config("MixtralForCausalLM"), "config.json");
  ASSERT_TRUE(defaults.moe.has_value());
  EXPECT_EQ(defaults.moe->num_experts, 8);
  EXPECT_EQ(defaults.moe->num_experts_per_tok, 2);

  ModelParams windowed =
      ParseHfConfig(Config("MixtralForCausalLM", R"("sliding_window": 4096)"), "config.json");
  EXPECT_EQ(windowed.layer_windows, (std::vector<int64_t>{4096, 4096}));
  EXPECT_DOUBLE_EQ(windowed.rope_theta, 1e6);  // no window-dependent default for HF configs

  ModelParams by_type = ParseHfConfig(
      R"({"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,)"
      R"( "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100})",
      "config.json");
  EXPECT_TRUE(by_type.moe.has_value());

  EXPECT_THROW(ParseHfConfig(Config("MixtralForCausalLM",
                                    R"("num_local_experts": 2, "num_experts_per_tok": 3)"),
                             "config.json"),
               bora::FormatError);
}

TEST(ParseHfConfigTest, UnsupportedConfigs) {
  std::string llama = MessageOf<bora::Unsupported>(
      [] { ParseHfConfig(Config("LlamaForCausalLM"), "llama/config.json"); });
  EXPECT_NE(llama.find("llama/config.json"), std::string::npos) << llama;
  EXPECT_NE(llama.find("LlamaForCausalLM"), std::string::npos) << llama;
  EXPECT_THROW(ParseHfConfig(R"({"hidden_size": 64})", "config.json"), bora::Unsupported);
  EXPECT_THROW(ParseHfConfig(R"({"model_type": "llama", "hidden_size": 64})", "config.json"),
               bora::Unsupported);
  EXPECT_THROW(ParseHfConfig(Config("MistralForCausalLM",
                                    R"("rope_scaling": {"type": "linear", "factor": 2.0})"),
                             "config.json"),
               bora::Unsupported);
  EXPECT_THROW(
      ParseHfConfig(Config("MistralForCausalLM", R"("hidden_act": "gelu")"), "config.json"),
      bora::Unsupported);
}

TEST(ParseHfConfigTest, RejectsMalformedConfigs) {
  EXPECT_THROW(ParseHfConfig("not json", "config.json"), bora::FormatError);
  EXPECT_THROW(ParseHfConfig("[]", "config.json"), bora::FormatError);
  EXPECT_THROW(ParseHfConfig(R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64})",
                             "config.json"),
               bora::FormatError);
  EXPECT_THROW(ParseHfConfig(Config("MistralForCausalLM", R"("rms_norm_eps": 0)"), "config.json"),
               bora::FormatError);
  EXPECT_THROW(
      ParseHfConfig(Config("MistralForCausalLM", R"("max_position_embeddings": 0)"), "config.json"),
      bora::FormatError);
  EXPECT_THROW(
      ParseHfConfig(
          R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,)"
          R"( "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 128,)"
          R"( "vocab_size": 100})",
          "config.json"),
      bora::FormatError);
}

// A valid small model, mutated by each rejection test below.
ModelParams ValidParams() {
  ModelParams p;
  p.dim = 64;
  p.n_layers = 2;
  p.head_dim = 16;
  p.hidden_dim = 128;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.vocab_size = 100;
  p.norm_eps = 1e-5;
  p.rope_theta = 1e6;
  p.layer_windows = {0, 0};
  return p;
}

TEST(ValidateModelParamsTest, AcceptsValidParams) {
  EXPECT_NO_THROW(ValidateModelParams(ValidParams(), "ok.json"));
  ModelParams moe = ValidParams();
  moe.moe = MoeParams{8, 8};
  moe.max_positions = int64_t{1} << 24;
  moe.layer_windows = {4096, 0};
  EXPECT_NO_THROW(ValidateModelParams(moe, "ok.json"));
}

TEST(ValidateModelParamsTest, Rejections) {
  struct Mutation {
    const char* what;
    void (*apply)(ModelParams&);
  };
  const Mutation kMutations[] = {
      {"n_heads not a multiple of n_kv_heads",
       [](ModelParams& p) { p.n_heads = 6, p.n_kv_heads = 4; }},
      {"n_kv_heads above n_heads", [](ModelParams& p) { p.n_kv_heads = 8; }},
      {"zero n_kv_heads", [](ModelParams& p) { p.n_kv_heads = 0; }},
      {"zero n_heads", [](ModelParams& p) { p.n_heads = 0; }},
      {"zero dim", [](ModelParams& p) { p.dim = 0; }},
      {"negative dim", [](ModelParams& p) { p.dim = -64; }},
      {"huge dim", [](ModelParams& p) { p.dim = int64_t{1} << 40; }},
      {"zero layers", [](ModelParams& p) { p.n_layers = 0, p.layer_windows = {}; }},
      {"negative layers", [](ModelParams& p) { p.n_layers = -1; }},
      {"zero head_dim", [](ModelParams& p) { p.head_dim = 0; }},
      {"odd head_dim", [](ModelParams& p) { p.head_dim = 15; }},
      {"zero hidden_dim", [](ModelParams& p) { p.hidden_dim = 0; }},
      {"zero vocab", [](ModelParams& p) { p.vocab_size = 0; }},
      {"negative vocab", [](ModelParams& p) { p.vocab_size = -5; }},
      {"zero eps", [](ModelParams& p) { p.norm_eps = 0; }},
      {"negative eps", [](ModelParams& p) { p.norm_eps = -1e-5; }},
      {"NaN eps", [](ModelParams& p) { p.norm_eps = std::numeric_limits<double>::quiet_NaN(); }},
      {"infinite eps",
       [](ModelParams& p) { p.norm_eps = std::numeric_limits<double>::infinity(); }},
      {"NaN rope_theta",
       [](ModelParams& p) { p.rope_theta = std::numeric_limits<double>::quiet_NaN(); }},
      {"infinite rope_theta",
       [](ModelParams& p) { p.rope_theta = std::numeric_limits<double>::infinity(); }},
      {"negative rope_theta", [](ModelParams& p) { p.rope_theta = -1e4; }},
      {"window list shorter than n_layers", [](ModelParams& p) { p.layer_windows = {0}; }},
      {"window list longer than n_layers",
       [](ModelParams& p) {
         p.layer_windows = {0, 0, 0};
       }},
      {"negative window",
       [](ModelParams& p) {
         p.layer_windows = {0, -1};
       }},
      {"window above 2^24",
       [](ModelParams& p) {
         p.layer_windows = {0, (int64_t{1} << 24) + 1};
       }},
      {"zero max_positions", [](ModelParams& p) { p.max_positions = 0; }},
      {"max_positions above 2^24",
       [](ModelParams& p) { p.max_positions = (int64_t{1} << 24) + 1; }},
      {"top-k above experts",
       [](ModelParams& p) {
         p.moe = MoeParams{4, 5};
       }},
      {"zero top-k",
       [](ModelParams& p) {
         p.moe = MoeParams{4, 0};
       }},
      {"zero experts",
       [](ModelParams& p) {
         p.moe = MoeParams{0, 0};
       }},
      {"too many experts",
       [](ModelParams& p) {
         p.moe = MoeParams{4096, 2};
       }},
  };
  for (const Mutation& mutation : kMutations) {
    ModelParams p = ValidParams();
    mutation.apply(p);
    std::string message =
        MessageOf<bora::FormatError>([&] { ValidateModelParams(p, "checked/params.json"); });
    EXPECT_EQ(message.rfind("checked/params.json: ", 0), 0u) << mutation.what << ": " << message;
  }
}

void ExpectSameParams(const ModelParams& a, const ModelParams& b) {
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.hidden_dim, b.hidden_dim);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.norm_eps, b.norm_eps);  // exact: the JSON text must round-trip doubles
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.layer_windows, b.layer_windows);
  EXPECT_EQ(a.max_positions, b.max_positions);
  ASSERT_EQ(a.moe.has_value(), b.moe.has_value());
  if (a.moe) {
    EXPECT_EQ(a.moe->num_experts, b.moe->num_experts);
    EXPECT_EQ(a.moe->num_experts_per_tok, b.moe->num_experts_per_tok);
  }
}

TEST(MistralParamsJsonTest, RoundTripsThroughParseMistralParams) {
  ModelParams dense = ValidParams();
  dense.norm_eps = 1e-6;
  dense.rope_theta = 1e4;  // explicit, so no window-dependent default kicks in
  ExpectSameParams(ParseMistralParams(MistralParamsJson(dense), "out.json"), dense);
  EXPECT_EQ(MistralParamsJson(dense).find("sliding_window"), std::string::npos);

  ModelParams uniform = ValidParams();
  uniform.layer_windows = {4096, 4096};
  uniform.max_positions = 32768;
  uniform.norm_eps = 1.0 / 3.0;
  std::string uniform_json = MistralParamsJson(uniform);
  EXPECT_NE(uniform_json.find("\"sliding_window\": 4096"), std::string::npos) << uniform_json;
  ExpectSameParams(ParseMistralParams(uniform_json, "out.json"), uniform);

  ModelParams per_layer = ValidParams();
  per_layer.n_layers = 4;
  per_layer.layer_windows = {0, 128, 256, 0};
  std::string per_layer_json = MistralParamsJson(per_layer);
  EXPECT_NE(per_layer_json.find("null"), std::string::npos) << per_layer_json;
  ExpectSameParams(ParseMistralParams(per_layer_json, "out.json"), per_layer);

  ModelParams moe = ValidParams();
  moe.moe = MoeParams{8, 2};
  moe.head_dim = 32;  // differs from dim / n_heads, so it must be written out
  moe.n_kv_heads = 1;
  ExpectSameParams(ParseMistralParams(MistralParamsJson(moe), "out.json"), moe);

  // The tiny-dense params survive a parse/print/parse cycle.
  ModelParams tiny = ParseMistralParams(kTinyDenseParams, "params.json");
  ExpectSameParams(ParseMistralParams(MistralParamsJson(tiny), "out.json"), tiny);
}

TEST(ParseHfConfigTest, TransformersDefaultsForEpsAndKvHeads) {
  // rms_norm_eps: MistralConfig defaults to 1e-6, MixtralConfig to 1e-5.
  EXPECT_EQ(ParseHfConfig(Config("MistralForCausalLM"), "config.json").norm_eps, 1e-6);
  EXPECT_EQ(ParseHfConfig(Config("MixtralForCausalLM"), "config.json").norm_eps, 1e-5);
  // num_key_value_heads: absent → 8 (class default); null → num_attention_heads.
  std::string sixteen_heads = R"({"architectures": ["MistralForCausalLM"], "hidden_size": 64,)"
                              R"( "num_hidden_layers": 2, "num_attention_heads": 16, "intermediate_size": 128,)"
                              R"( "vocab_size": 100, "head_dim": 4)";
  EXPECT_EQ(ParseHfConfig(sixteen_heads + "}", "config.json").n_kv_heads, 8);
  EXPECT_EQ(ParseHfConfig(sixteen_heads + R"(, "num_key_value_heads": null})", "config.json").n_kv_heads, 16);
}

TEST(ParseMistralParamsTest, MissingHeadDimNeedsDivisibleDim) {
  std::string params = R"({"dim": 66, "n_layers": 1, "hidden_dim": 128, "n_heads": 4, "norm_eps": 1e-5,)"
                       R"( "vocab_size": 100})";
  std::string message = MessageOf<bora::FormatError>([&] { ParseMistralParams(params, "params.json"); });
  EXPECT_NE(message.find("head_dim"), std::string::npos) << message;
}

}  // namespace
}  // namespace bora::formats
