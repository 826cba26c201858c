// Hugging Face layouts of vision models, made from native folders by the upstream converters'
// tensor mapping and q/k permutation: Pixtral as LlavaForConditionalGeneration (transformers 4
// and 5 names) must give tiny-pixtral's golden logits; a Mistral3ForConditionalGeneration tower
// (norm + patch merger) must give the native tower's embeddings bit for bit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "testdata.h"
#include "vision/vision_encoder.h"
#include "vision/vision_golden.h"

namespace bora::vision {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Native rows -> the converters' half-split order: HF row h*d + c*d/2 + i = native h*d + 2i + c.
std::vector<uint8_t> PermuteForRope(std::span<const uint8_t> rows, int64_t heads, int64_t head_dim, int64_t cols,
                                    size_t element) {
  std::vector<uint8_t> out(rows.size());
  const size_t row_bytes = static_cast<size_t>(cols) * element;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < head_dim / 2; ++i) {
        const size_t hf = static_cast<size_t>(h * head_dim + c * head_dim / 2 + i);
        const size_t native = static_cast<size_t>(h * head_dim + 2 * i + c);
        std::copy_n(rows.data() + native * row_bytes, row_bytes, out.data() + hf * row_bytes);
      }
  return out;
}

struct Shapes {
  int64_t text_heads = 0, text_kv_heads = 0, text_head_dim = 0, vision_heads = 0, vision_head_dim = 0;
};

// The upstream converters' names (transformers 5 with `model.` prefixes, or 4 for Llava).
std::string HfName(const std::string& native, bool v5) {
  static const std::vector<std::pair<std::regex, std::string>> kMap = {
      {std::regex(R"(^vision_encoder\.transformer\.layers\.(\d+)\.attention\.w([qkvo])\.weight$)"),
       "vision_tower.transformer.layers.$1.attention.$2_proj.weight"},
      {std::regex(R"(^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w1\.weight$)"),
       "vision_tower.transformer.layers.$1.feed_forward.gate_proj.weight"},
      {std::regex(R"(^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w2\.weight$)"),
       "vision_tower.transformer.layers.$1.feed_forward.down_proj.weight"},
      {std::regex(R"(^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w3\.weight$)"),
       "vision_tower.transformer.layers.$1.feed_forward.up_proj.weight"},
      {std::regex(R"(^vision_encoder\.(.*)$)"), "vision_tower.$1"},
      {std::regex(R"(^vision_language_adapter\.w_in\.(.*)$)"), "multi_modal_projector.linear_1.$1"},
      {std::regex(R"(^vision_language_adapter\.w_out\.(.*)$)"), "multi_modal_projector.linear_2.$1"},
      {std::regex(R"(^pre_mm_projector_norm\.weight$)"), "multi_modal_projector.norm.weight"},
      {std::regex(R"(^patch_merger\.(.*)$)"), "multi_modal_projector.patch_merger.$1"},
      {std::regex(R"(^layers\.(\d+)\.attention\.w([qkvo])\.weight$)"), "LM.layers.$1.self_attn.$2_proj.weight"},
      {std::regex(R"(^layers\.(\d+)\.feed_forward\.w1\.weight$)"), "LM.layers.$1.mlp.gate_proj.weight"},
      {std::regex(R"(^layers\.(\d+)\.feed_forward\.w2\.weight$)"), "LM.layers.$1.mlp.down_proj.weight"},
      {std::regex(R"(^layers\.(\d+)\.feed_forward\.w3\.weight$)"), "LM.layers.$1.mlp.up_proj.weight"},
      {std::regex(R"(^layers\.(\d+)\.attention_norm\.weight$)"), "LM.layers.$1.input_layernorm.weight"},
      {std::regex(R"(^layers\.(\d+)\.ffn_norm\.weight$)"), "LM.layers.$1.post_attention_layernorm.weight"},
      {std::regex(R"(^tok_embeddings\.weight$)"), "LM.embed_tokens.weight"},
      {std::regex(R"(^norm\.weight$)"), "LM.norm.weight"},
      {std::regex(R"(^output\.weight$)"), "HEAD"},
  };
  for (const auto& [pattern, replacement] : kMap) {
    if (!std::regex_match(native, pattern)) continue;
    std::string name = std::regex_replace(native, pattern, replacement);
    const std::string lm = v5 ? "model.language_model" : "language_model.model";
    if (name.rfind("LM.", 0) == 0) return lm + name.substr(2);
    if (name == "HEAD") return v5 ? "lm_head.weight" : "language_model.lm_head.weight";
    return v5 ? "model." + name : name;
  }
  ADD_FAILURE() << "unmapped " << native;
  return native;
}

void ConvertToHf(const std::string& native_dir, const std::string& out, const Shapes& s, bool v5,
                 const nlohmann::json& config) {
  const formats::SafetensorsFile file = formats::SafetensorsFile::Open(native_dir + "/consolidated.safetensors");
  std::vector<formats::TensorSpec> specs;
  std::vector<std::vector<uint8_t>> data;
  static const std::regex kVisionQk(R"(^vision_encoder\.transformer\.layers\.\d+\.attention\.w[qk]\.weight$)");
  static const std::regex kTextQ(R"(^layers\.\d+\.attention\.wq\.weight$)"), kTextK(R"(^layers\.\d+\.attention\.wk\.weight$)");
  for (const formats::TensorInfo& info : file.header().tensors) {
    const formats::TensorView view = file.View(info);
    std::vector<uint8_t> bytes(view.bytes.begin(), view.bytes.end());
    const size_t element = DTypeSize(view.dtype);
    const int64_t cols = info.shape.size() == 2 ? info.shape[1] : 0;
    if (std::regex_match(info.name, kVisionQk)) bytes = PermuteForRope(view.bytes, s.vision_heads, s.vision_head_dim, cols, element);
    if (std::regex_match(info.name, kTextQ)) bytes = PermuteForRope(view.bytes, s.text_heads, s.text_head_dim, cols, element);
    if (std::regex_match(info.name, kTextK)) bytes = PermuteForRope(view.bytes, s.text_kv_heads, s.text_head_dim, cols, element);
    specs.push_back({HfName(info.name, v5), view.dtype, info.shape});
    data.push_back(std::move(bytes));
  }
  fs::create_directories(out);
  formats::SafetensorsWriter writer(out + "/model.safetensors", specs);
  for (const auto& bytes : data) writer.Append(bytes);
  writer.Finish();
  std::ofstream(out + "/config.json") << config.dump(2);
  if (fs::exists(native_dir + "/tekken.json")) fs::copy_file(native_dir + "/tekken.json", out + "/tekken.json");
}

TEST(HfVision, PixtralAsLlavaGivesTheGoldenLogits) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-pixtral";
  const nlohmann::json config = {
      {"architectures", {"LlavaForConditionalGeneration"}}, {"model_type", "llava"}, {"image_token_index", 10},
      {"projector_hidden_act", "gelu"}, {"vision_feature_layer", -1}, {"vision_feature_select_strategy", "full"},
      {"image_seq_length", 1},
      {"text_config", {{"model_type", "mistral"}, {"hidden_size", 256}, {"num_hidden_layers", 3}, {"head_dim", 32},
                       {"intermediate_size", 768}, {"num_attention_heads", 8}, {"num_key_value_heads", 2},
                       {"rope_theta", 1e9}, {"rms_norm_eps", 1e-5}, {"vocab_size", 2048}, {"sliding_window", nullptr},
                       {"max_position_embeddings", 4096}}},
      {"vision_config", {{"model_type", "pixtral"}, {"hidden_size", 128}, {"intermediate_size", 512},
                         {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"image_size", 128}, {"patch_size", 16},
                         {"hidden_act", "silu"}, {"head_dim", 32}, {"rope_theta", 10000.0}}}};
  const Shapes shapes{8, 2, 32, 4, 32};
  VisionGoldenSet golden = ReadVisionGoldenSet(ref + "/golden");
  for (bool v5 : {false, true}) {
    SCOPED_TRACE(v5 ? "transformers 5 names" : "transformers 4 names");
    TempDir dir;
    ConvertToHf(ref + "/mistral", dir.path() + "/hf", shapes, v5, config);
    model::LoadOptions options;
    options.context = 512;
    options.threads = 2;
    auto model = model::LoadModel(dir.path() + "/hf", options);
    ASSERT_TRUE(model->params().vision.has_value());
    EXPECT_TRUE(model->params().vision->adapter_bias);  // LlavaConfig's default
    auto encoder = LoadVisionFor(*model, std::nullopt, false);
    ASSERT_NE(encoder, nullptr);
    std::map<std::string, std::vector<float>> embeddings;
    for (const auto& [name, image] : golden.images) {
      std::vector<float> rows;
      const ImageCheck check = CheckGoldenImage(model->compute(), *encoder, ref, image, golden.config, rows);
      EXPECT_TRUE(check.passed()) << name << " embeddings " << check.embeddings << " vision_out " << check.vision_out;
      embeddings.emplace(name, std::move(rows));
    }
    for (size_t i = 0; i < golden.text.cases.size(); ++i) {
      model::GoldenCase golden_case = golden.text.cases[i];
      AttachCaseImages(golden_case, golden.case_images[i], embeddings, golden.config.image_token_id);
      const model::GoldenCaseResult result = model::RunGoldenCase(*model, golden_case, 5);
      EXPECT_TRUE(result.passed()) << result.name << " max abs " << result.max_abs_diff;
    }
  }
}

TEST(HfVision, Mistral3TowerWithNormAndMergerEqualsTheNativeOne) {
  // A native Mistral Small 3.1-style tower (written by vision_encoder_test's recipe, here by hand).
  TempDir dir;
  const int64_t d = 32, heads = 2, inner = 48, text_dim = 40, p = 4;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  std::map<std::string, std::vector<int64_t>> shapes = {
      {"vision_encoder.patch_conv.weight", {d, 3, p, p}}, {"vision_encoder.ln_pre.weight", {d}},
      {"pre_mm_projector_norm.weight", {d}}, {"patch_merger.merging_layer.weight", {d, d * 4}},
      {"vision_language_adapter.w_in.weight", {text_dim, d}}, {"vision_language_adapter.w_out.weight", {text_dim, text_dim}}};
  const std::string layer = "vision_encoder.transformer.layers.0.";
  for (const char* w : {"wq", "wk", "wv", "wo"}) shapes[layer + "attention." + w + ".weight"] = {d, d};
  shapes[layer + "attention_norm.weight"] = {d};
  shapes[layer + "ffn_norm.weight"] = {d};
  shapes[layer + "feed_forward.w1.weight"] = {inner, d};
  shapes[layer + "feed_forward.w3.weight"] = {inner, d};
  shapes[layer + "feed_forward.w2.weight"] = {d, inner};
  // A one-layer text model beside it so both folders load as models.
  const int64_t text_heads = 5, text_head_dim = 8;
  shapes["tok_embeddings.weight"] = {300, text_dim};
  shapes["norm.weight"] = {text_dim};
  shapes["output.weight"] = {300, text_dim};
  for (const char* w : {"wq", "wk", "wv"}) shapes[std::string("layers.0.attention.") + w + ".weight"] = {text_heads * text_head_dim, text_dim};
  shapes["layers.0.attention.wo.weight"] = {text_dim, text_heads * text_head_dim};
  shapes["layers.0.attention_norm.weight"] = {text_dim};
  shapes["layers.0.ffn_norm.weight"] = {text_dim};
  shapes["layers.0.feed_forward.w1.weight"] = {64, text_dim};
  shapes["layers.0.feed_forward.w3.weight"] = {64, text_dim};
  shapes["layers.0.feed_forward.w2.weight"] = {text_dim, 64};
  std::vector<formats::TensorSpec> specs;
  std::vector<std::vector<float>> values;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    const bool norm = name.find("norm") != std::string::npos;
    for (float& x : v) x = norm ? 1.0f + normal(rng) : normal(rng);
    specs.push_back({name, DType::kF32, shape});
    values.push_back(std::move(v));
  }
  const std::string native = dir.path() + "/native";
  fs::create_directories(native);
  {
    formats::SafetensorsWriter writer(native + "/consolidated.safetensors", specs);
    for (const auto& v : values) writer.Append({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
    writer.Finish();
  }
  std::ofstream(native + "/params.json")
      << R"({"dim": 40, "n_layers": 1, "head_dim": 8, "hidden_dim": 64, "n_heads": 5, "n_kv_heads": 5,
      "norm_eps": 1e-5, "vocab_size": 300, "rope_theta": 1e6, "vision_encoder": {"hidden_size": 32, "num_channels": 3,
      "image_size": 32, "patch_size": 4, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2,
      "rope_theta": 10000.0, "image_token_id": 10, "adapter_bias": false, "spatial_merge_size": 2,
      "add_pre_mm_projector_layer_norm": true, "mm_projector_id": "patch_merge"}})";
  const nlohmann::json config = {
      {"architectures", {"Mistral3ForConditionalGeneration"}}, {"model_type", "mistral3"}, {"image_token_index", 10},
      {"spatial_merge_size", 2}, {"multimodal_projector_bias", false},
      {"text_config", {{"model_type", "mistral"}, {"hidden_size", 40}, {"num_hidden_layers", 1}, {"head_dim", 8},
                       {"intermediate_size", 64}, {"num_attention_heads", 5}, {"num_key_value_heads", 5},
                       {"rope_theta", 1e6}, {"rms_norm_eps", 1e-5}, {"vocab_size", 300}}},
      {"vision_config", {{"model_type", "pixtral"}, {"hidden_size", 32}, {"intermediate_size", 48},
                         {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"image_size", 32}, {"patch_size", 4},
                         {"hidden_act", "silu"}, {"rope_parameters", {{"rope_theta", 10000.0}, {"rope_type", "default"}}}}}};
  ConvertToHf(native, dir.path() + "/hf", Shapes{text_heads, text_heads, text_head_dim, heads, d / heads}, true, config);
  model::LoadOptions options;
  options.context = 64;
  options.threads = 2;
  auto native_model = model::LoadModel(native, options);
  auto hf_model = model::LoadModel(dir.path() + "/hf", options);
  auto native_tower = LoadVisionFor(*native_model, std::nullopt, false);
  auto hf_tower = LoadVisionFor(*hf_model, std::nullopt, false);
  ASSERT_NE(hf_tower, nullptr);
  EXPECT_TRUE(hf_tower->params().patch_merger);
  EXPECT_TRUE(hf_tower->params().add_pre_mm_projector_layer_norm);
  image::PreprocessedImage image;
  image.grid = {3, 2, 24, 16};
  image.pixels.resize(3 * 24 * 16);
  for (float& v : image.pixels) v = normal(rng) * 5;
  std::vector<float> a(static_cast<size_t>(6 * text_dim)), b(a.size());
  native_tower->Encode(native_model->compute(), image, a);
  hf_tower->Encode(hf_model->compute(), image, b);
  EXPECT_EQ(a, b);
  // The text model too: the same logits for the same tokens.
  const std::vector<int32_t> tokens = {1, 5, 7, 11};
  std::vector<float> la(300), lb(300);
  auto ca = native_model->NewCache();
  auto cb = hf_model->NewCache();
  native_model->Forward(tokens, ca, la, false);
  hf_model->Forward(tokens, cb, lb, false);
  EXPECT_EQ(la, lb);
}

}  // namespace
}  // namespace bora::vision
