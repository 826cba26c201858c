// Tests model folder discovery, HF name mapping, q/k un-permutation and checkpoint tensor lookup.
#include "formats/model_folder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "testdata.h"

namespace bora::formats {
namespace {

namespace fs = std::filesystem;

// Tiny dense model: dim 8, 1 layer, 2 query heads and 1 kv head of head_dim 4, hidden 16, vocab 10.
constexpr char kParamsJson[] =
    R"({"dim": 8, "n_layers": 1, "head_dim": 4, "hidden_dim": 16, "n_heads": 2, "n_kv_heads": 1,)"
    R"( "norm_eps": 1e-5, "vocab_size": 10, "rope_theta": 1000000.0})";
constexpr char kConfigJson[] =
    R"({"architectures": ["MistralForCausalLM"], "hidden_size": 8, "num_hidden_layers": 1,)"
    R"( "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "intermediate_size": 16,)"
    R"( "vocab_size": 10, "sliding_window": null, "rope_theta": 1000000.0, "rms_norm_eps": 1e-5})";
constexpr int64_t kHeads = 2;
constexpr int64_t kKvHeads = 1;
constexpr int64_t kHeadDim = 4;

struct FakeTensor {
  std::string native_name;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // F32, native (interleaved-pair RoPE) row order
};

// F32 bytes whose every element is distinct: tensor_id * 1000 + element index.
std::vector<uint8_t> FloatBytes(int tensor_id, const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  std::vector<uint8_t> bytes(static_cast<size_t>(count) * 4);
  for (int64_t i = 0; i < count; ++i) {
    float value = static_cast<float>(tensor_id * 1000 + i);
    std::memcpy(bytes.data() + i * 4, &value, 4);
  }
  return bytes;
}

std::vector<FakeTensor> DenseModel() {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> kShapes = {
      {"tok_embeddings.weight", {10, 8}},
      {"norm.weight", {8}},
      {"output.weight", {10, 8}},
      {"layers.0.attention_norm.weight", {8}},
      {"layers.0.ffn_norm.weight", {8}},
      {"layers.0.attention.wq.weight", {kHeads * kHeadDim, 8}},
      {"layers.0.attention.wk.weight", {kKvHeads * kHeadDim, 8}},
      {"layers.0.attention.wv.weight", {kKvHeads * kHeadDim, 8}},
      {"layers.0.attention.wo.weight", {8, kHeads * kHeadDim}},
      {"layers.0.feed_forward.w1.weight", {16, 8}},
      {"layers.0.feed_forward.w2.weight", {8, 16}},
      {"layers.0.feed_forward.w3.weight", {16, 8}},
  };
  std::vector<FakeTensor> model;
  int id = 1;
  for (const auto& [name, shape] : kShapes) model.push_back({name, shape, FloatBytes(id++, shape)});
  return model;
}

std::vector<std::string> NativeNames(const std::vector<FakeTensor>& model) {
  std::vector<std::string> names;
  for (const FakeTensor& tensor : model) names.push_back(tensor.native_name);
  return names;
}

// The Hugging Face name of a native name (written independently of HfToNativeName).
std::string NativeToHf(const std::string& native) {
  if (native == "tok_embeddings.weight") return "model.embed_tokens.weight";
  if (native == "norm.weight") return "model.norm.weight";
  if (native == "output.weight") return "lm_head.weight";
  const std::pair<const char*, const char*> kLayer[] = {
      {"attention_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attention.wq.weight", "self_attn.q_proj.weight"},
      {"attention.wk.weight", "self_attn.k_proj.weight"},
      {"attention.wv.weight", "self_attn.v_proj.weight"},
      {"attention.wo.weight", "self_attn.o_proj.weight"},
      {"feed_forward.w1.weight", "mlp.gate_proj.weight"},
      {"feed_forward.w2.weight", "mlp.down_proj.weight"},
      {"feed_forward.w3.weight", "mlp.up_proj.weight"},
  };
  const std::string prefix = "layers.0.";
  for (const auto& [from, to] : kLayer) {
    if (native == prefix + from) return "model.layers.0." + std::string(to);
  }
  ADD_FAILURE() << "no HF name for " << native;
  return native;
}

// HF (half-split RoPE) row order: HF row h*d + c*d/2 + i holds native row h*d + 2i + c.
std::vector<uint8_t> PermuteForHf(const std::vector<uint8_t>& native, int64_t heads,
                                  int64_t head_dim, size_t row_bytes) {
  std::vector<uint8_t> hf(native.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      for (int64_t c = 0; c < 2; ++c) {
        std::memcpy(hf.data() + (h * head_dim + c * head_dim / 2 + i) * row_bytes,
                    native.data() + (h * head_dim + 2 * i + c) * row_bytes, row_bytes);
      }
    }
  }
  return hf;
}

// One tensor to write: name in the file, shape and bytes.
struct FileTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

void WriteSafetensors(const std::string& path, const std::vector<FileTensor>& tensors) {
  std::vector<TensorSpec> specs;
  for (const FileTensor& tensor : tensors)
    specs.push_back({tensor.name, DType::kF32, tensor.shape});
  SafetensorsWriter writer(path, specs);
  for (const FileTensor& tensor : tensors) writer.Append(tensor.bytes);
  writer.Finish();
}

std::vector<FileTensor> NativeFileTensors(const std::vector<FakeTensor>& model) {
  std::vector<FileTensor> tensors;
  for (const FakeTensor& t : model) tensors.push_back({t.native_name, t.shape, t.bytes});
  return tensors;
}

std::vector<FileTensor> HfFileTensors(const std::vector<FakeTensor>& model) {
  std::vector<FileTensor> tensors;
  for (const FakeTensor& t : model) {
    std::vector<uint8_t> bytes = t.bytes;
    const size_t row_bytes = static_cast<size_t>(t.shape.size() == 2 ? t.shape[1] : 0) * 4;
    if (t.native_name == "layers.0.attention.wq.weight")
      bytes = PermuteForHf(t.bytes, kHeads, kHeadDim, row_bytes);
    if (t.native_name == "layers.0.attention.wk.weight")
      bytes = PermuteForHf(t.bytes, kKvHeads, kHeadDim, row_bytes);
    tensors.push_back({NativeToHf(t.native_name), t.shape, bytes});
  }
  return tensors;
}

void WriteNativeFolder(const std::string& dir, const std::vector<FakeTensor>& model) {
  bora::testing::WriteFile(dir + "/params.json", kParamsJson);
  WriteSafetensors(dir + "/consolidated.safetensors", NativeFileTensors(model));
}

void WriteHfFolder(const std::string& dir, const std::vector<FakeTensor>& model) {
  bora::testing::WriteFile(dir + "/config.json", kConfigJson);
  WriteSafetensors(dir + "/model.safetensors", HfFileTensors(model));
}

// Splits the HF tensors over two shards and writes model.safetensors.index.json.
void WriteShardedHfFolder(const std::string& dir, const std::vector<FakeTensor>& model) {
  bora::testing::WriteFile(dir + "/config.json", kConfigJson);
  std::vector<FileTensor> all = HfFileTensors(model);
  const size_t half = all.size() / 2;
  std::vector<FileTensor> first(all.begin(), all.begin() + half);
  std::vector<FileTensor> second(all.begin() + half, all.end());
  WriteSafetensors(dir + "/model-00001-of-00002.safetensors", first);
  WriteSafetensors(dir + "/model-00002-of-00002.safetensors", second);
  std::string index = R"({"metadata": {"total_size": 0}, "weight_map": {)";
  for (size_t i = 0; i < all.size(); ++i) {
    index += (i ? ", \"" : "\"") + all[i].name + "\": \"model-0000" + (i < half ? "1" : "2") +
             "-of-00002.safetensors\"";
  }
  bora::testing::WriteFile(dir + "/model.safetensors.index.json", index + "}}");
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

std::vector<uint8_t> ViewBytes(const TensorView& view) {
  return std::vector<uint8_t>(view.bytes.begin(), view.bytes.end());
}

// Every tensor of `model` comes back from `tensors` with its native bytes.
void ExpectModelTensors(const CheckpointTensors& tensors, const std::vector<FakeTensor>& model) {
  for (const FakeTensor& t : model) {
    SCOPED_TRACE(t.native_name);
    ASSERT_TRUE(tensors.Contains(t.native_name));
    TensorView view = tensors.Get(t.native_name, t.shape);
    EXPECT_EQ(view.dtype, DType::kF32);
    EXPECT_EQ(view.info->shape, t.shape);
    EXPECT_EQ(ViewBytes(view), t.bytes);
  }
}

TEST(InspectModelFolderTest, NativeFolder) {
  bora::testing::TempDir dir;
  WriteNativeFolder(dir.path(), DenseModel());
  ModelFolder folder = InspectModelFolder(dir.path());
  EXPECT_EQ(folder.path, dir.path());
  EXPECT_EQ(folder.layout, CheckpointLayout::kMistral);
  EXPECT_EQ(fs::path(folder.config_file), fs::path(dir.File("params.json")));
  ASSERT_EQ(folder.weight_files.size(), 1u);
  EXPECT_EQ(fs::path(folder.weight_files[0]), fs::path(dir.File("consolidated.safetensors")));
  EXPECT_EQ(folder.weight_bytes, fs::file_size(dir.File("consolidated.safetensors")));
  EXPECT_EQ(folder.params.dim, 8);
  EXPECT_EQ(folder.params.n_layers, 1);
  EXPECT_EQ(folder.params.n_heads, 2);
  EXPECT_EQ(folder.params.n_kv_heads, 1);
  EXPECT_EQ(folder.params.head_dim, 4);
  EXPECT_EQ(folder.params.hidden_dim, 16);
  EXPECT_EQ(folder.params.vocab_size, 10);
}

TEST(InspectModelFolderTest, NativeShardsAreListedInOrder) {
  bora::testing::TempDir dir;
  std::vector<FileTensor> tensors = NativeFileTensors(DenseModel());
  bora::testing::WriteFile(dir.File("params.json"), kParamsJson);
  WriteSafetensors(dir.File("consolidated-00002-of-00002.safetensors"),
                   std::vector<FileTensor>(tensors.begin() + 6, tensors.end()));
  WriteSafetensors(dir.File("consolidated-00001-of-00002.safetensors"),
                   std::vector<FileTensor>(tensors.begin(), tensors.begin() + 6));
  bora::testing::WriteFile(dir.File("README.md"), "not a weight file");
  ModelFolder folder = InspectModelFolder(dir.path());
  ASSERT_EQ(folder.weight_files.size(), 2u);
  EXPECT_EQ(fs::path(folder.weight_files[0]).filename(), "consolidated-00001-of-00002.safetensors");
  EXPECT_EQ(fs::path(folder.weight_files[1]).filename(), "consolidated-00002-of-00002.safetensors");
  EXPECT_EQ(folder.weight_bytes,
            fs::file_size(dir.File("consolidated-00001-of-00002.safetensors")) +
                fs::file_size(dir.File("consolidated-00002-of-00002.safetensors")));
  ExpectModelTensors(CheckpointTensors::Open(folder), DenseModel());
}

TEST(InspectModelFolderTest, HuggingFaceFolder) {
  bora::testing::TempDir dir;
  WriteHfFolder(dir.path(), DenseModel());
  ModelFolder folder = InspectModelFolder(dir.path());
  EXPECT_EQ(folder.layout, CheckpointLayout::kHuggingFace);
  EXPECT_EQ(fs::path(folder.config_file), fs::path(dir.File("config.json")));
  ASSERT_EQ(folder.weight_files.size(), 1u);
  EXPECT_EQ(fs::path(folder.weight_files[0]), fs::path(dir.File("model.safetensors")));
  EXPECT_EQ(folder.weight_bytes, fs::file_size(dir.File("model.safetensors")));
  EXPECT_EQ(folder.params.dim, 8);
  EXPECT_EQ(folder.params.head_dim, 4);
  EXPECT_EQ(folder.params.layer_windows, (std::vector<int64_t>{0}));
}

TEST(InspectModelFolderTest, ShardedHuggingFaceFolder) {
  bora::testing::TempDir dir;
  WriteShardedHfFolder(dir.path(), DenseModel());
  ModelFolder folder = InspectModelFolder(dir.path());
  EXPECT_EQ(folder.layout, CheckpointLayout::kHuggingFace);
  ASSERT_EQ(folder.weight_files.size(), 2u);
  EXPECT_EQ(fs::path(folder.weight_files[0]),
            fs::path(dir.File("model-00001-of-00002.safetensors")));
  EXPECT_EQ(fs::path(folder.weight_files[1]),
            fs::path(dir.File("model-00002-of-00002.safetensors")));
  EXPECT_EQ(folder.weight_bytes, fs::file_size(dir.File("model-00001-of-00002.safetensors")) +
                                     fs::file_size(dir.File("model-00002-of-00002.safetensors")));
  CheckpointTensors tensors = CheckpointTensors::Open(folder);
  ExpectModelTensors(tensors, DenseModel());
  EXPECT_NO_THROW(tensors.RejectUnused(NativeNames(DenseModel())));
}

TEST(InspectModelFolderTest, BothLayoutsPreferNativeWeights) {
  bora::testing::TempDir both;
  WriteNativeFolder(both.path(), DenseModel());
  WriteHfFolder(both.path(), DenseModel());
  EXPECT_EQ(InspectModelFolder(both.path()).layout, CheckpointLayout::kMistral);

  // params.json and config.json but only HF weights: the HF layout.
  bora::testing::TempDir hf_weights;
  WriteHfFolder(hf_weights.path(), DenseModel());
  bora::testing::WriteFile(hf_weights.File("params.json"), kParamsJson);
  EXPECT_EQ(InspectModelFolder(hf_weights.path()).layout, CheckpointLayout::kHuggingFace);

  // Stray native files that cannot be loaded (a pickle, an interrupted write) do not hide them.
  bora::testing::WriteFile(hf_weights.File("consolidated.00.pth"), "pickle");
  bora::testing::WriteFile(hf_weights.File("consolidated.safetensors.partial"), "partial");
  EXPECT_EQ(InspectModelFolder(hf_weights.path()).layout, CheckpointLayout::kHuggingFace);
}

// Writes a sharded HF folder whose index names `file` for every tensor.
void WriteIndexNaming(const bora::testing::TempDir& dir, const std::string& weight_map) {
  WriteHfFolder(dir.path(), DenseModel());
  bora::testing::WriteFile(dir.File("model.safetensors.index.json"),
                           R"({"weight_map": )" + weight_map + "}");
}

TEST(InspectModelFolderTest, IndexMustNamePlainFilesInTheFolder) {
  const char* kBadNames[] = {"../x.safetensors",        "a/b", "..", ".", "", "/etc/passwd",
                             "sub\\\\model.safetensors"};
  for (const char* bad : kBadNames) {
    SCOPED_TRACE(bad);
    bora::testing::TempDir dir;
    WriteIndexNaming(dir, std::string(R"({"model.norm.weight": ")") + bad + "\"}");
    std::string message = MessageOf<bora::FormatError>([&] { InspectModelFolder(dir.path()); });
    EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
  }
}

TEST(InspectModelFolderTest, IndexProblems) {
  {
    bora::testing::TempDir dir;
    WriteIndexNaming(
        dir,
        R"({"model.norm.weight": "model.safetensors", "lm_head.weight": "model-2.safetensors"})");
    std::string message = MessageOf<bora::IoError>([&] { InspectModelFolder(dir.path()); });
    EXPECT_NE(message.find("model-2.safetensors"), std::string::npos) << message;
  }
  {
    bora::testing::TempDir dir;
    WriteIndexNaming(dir, "{}");
    EXPECT_THROW(InspectModelFolder(dir.path()), bora::FormatError);  // empty weight_map
  }
  {
    bora::testing::TempDir dir;
    WriteIndexNaming(dir, R"({"model.norm.weight": 1})");
    EXPECT_THROW(InspectModelFolder(dir.path()), bora::FormatError);
  }
  {
    bora::testing::TempDir dir;
    WriteIndexNaming(dir, R"(["model.safetensors"])");
    EXPECT_THROW(InspectModelFolder(dir.path()), bora::FormatError);
  }
  {
    bora::testing::TempDir dir;
    WriteHfFolder(dir.path(), DenseModel());
    bora::testing::WriteFile(dir.File("model.safetensors.index.json"), R"({"weight_map": )");
    EXPECT_THROW(InspectModelFolder(dir.path()), bora::FormatError);  // truncated JSON
  }
}

TEST(InspectModelFolderTest, MissingFilesAndFolders) {
  bora::testing::TempDir empty;
  std::string neither = MessageOf<bora::IoError>([&] { InspectModelFolder(empty.path()); });
  EXPECT_NE(neither.find(empty.path()), std::string::npos) << neither;

  bora::testing::TempDir dir;
  bora::testing::WriteFile(dir.File("file.txt"), "x");
  EXPECT_THROW(InspectModelFolder(dir.File("file.txt")), bora::IoError);
  EXPECT_THROW(InspectModelFolder(dir.File("does-not-exist")), bora::IoError);

  bora::testing::TempDir params_only;
  bora::testing::WriteFile(params_only.File("params.json"), kParamsJson);
  EXPECT_THROW(InspectModelFolder(params_only.path()), bora::IoError);

  bora::testing::TempDir config_only;
  bora::testing::WriteFile(config_only.File("config.json"), kConfigJson);
  EXPECT_THROW(InspectModelFolder(config_only.path()), bora::IoError);
}

TEST(InspectModelFolderTest, PickleOnlyCheckpointIsUnsupported) {
  bora::testing::TempDir dir;
  bora::testing::WriteFile(dir.File("params.json"), kParamsJson);
  bora::testing::WriteFile(dir.File("consolidated.00.pth"), "not really a pickle");
  std::string message = MessageOf<bora::Unsupported>([&] { InspectModelFolder(dir.path()); });
  EXPECT_NE(message.find("consolidated"), std::string::npos) << message;
}

TEST(InspectModelFolderTest, ConfigErrorsNameTheConfigFile) {
  bora::testing::TempDir dir;
  WriteNativeFolder(dir.path(), DenseModel());
  bora::testing::WriteFile(dir.File("params.json"), R"({"dim": 8})");
  std::string message = MessageOf<bora::FormatError>([&] { InspectModelFolder(dir.path()); });
  EXPECT_NE(message.find("params.json"), std::string::npos) << message;
}

TEST(HfToNativeNameTest, MapsEveryKnownName) {
  const std::pair<const char*, const char*> kNames[] = {
      {"model.embed_tokens.weight", "tok_embeddings.weight"},
      {"model.norm.weight", "norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "layers.0.attention_norm.weight"},
      {"model.layers.1.post_attention_layernorm.weight", "layers.1.ffn_norm.weight"},
      {"model.layers.2.self_attn.q_proj.weight", "layers.2.attention.wq.weight"},
      {"model.layers.3.self_attn.k_proj.weight", "layers.3.attention.wk.weight"},
      {"model.layers.4.self_attn.v_proj.weight", "layers.4.attention.wv.weight"},
      {"model.layers.5.self_attn.o_proj.weight", "layers.5.attention.wo.weight"},
      {"model.layers.6.mlp.gate_proj.weight", "layers.6.feed_forward.w1.weight"},
      {"model.layers.7.mlp.down_proj.weight", "layers.7.feed_forward.w2.weight"},
      {"model.layers.8.mlp.up_proj.weight", "layers.8.feed_forward.w3.weight"},
      {"model.layers.31.block_sparse_moe.gate.weight", "layers.31.feed_forward.gate.weight"},
      {"model.layers.0.block_sparse_moe.experts.0.w1.weight",
       "layers.0.feed_forward.experts.0.w1.weight"},
      {"model.layers.1.block_sparse_moe.experts.7.w2.weight",
       "layers.1.feed_forward.experts.7.w2.weight"},
      {"model.layers.12.block_sparse_moe.experts.15.w3.weight",
       "layers.12.feed_forward.experts.15.w3.weight"},
      {"model.layers.0.self_attn.rotary_emb.inv_freq", ""},
      {"model.rotary_emb.inv_freq", ""},
      // Vision towers (Pixtral / Mistral 3, transformers 4 and 5 names) map to native names.
      {"vision_tower.transformer.layers.0.attention.q_proj.weight", "vision_encoder.transformer.layers.0.attention.wq.weight"},
      {"model.vision_tower.transformer.layers.3.feed_forward.gate_proj.weight",
       "vision_encoder.transformer.layers.3.feed_forward.w1.weight"},
      {"model.vision_tower.patch_conv.weight", "vision_encoder.patch_conv.weight"},
      {"vision_tower.ln_pre.weight", "vision_encoder.ln_pre.weight"},
      {"multi_modal_projector.linear_1.weight", "vision_language_adapter.w_in.weight"},
      {"model.multi_modal_projector.linear_2.bias", "vision_language_adapter.w_out.bias"},
      {"model.multi_modal_projector.norm.weight", "pre_mm_projector_norm.weight"},
      {"model.multi_modal_projector.patch_merger.merging_layer.weight", "patch_merger.merging_layer.weight"},
  };
  for (const auto& [hf, native] : kNames) {
    EXPECT_EQ(HfToNativeName(hf, "model.safetensors"), native) << hf;
  }
}

TEST(HfToNativeNameTest, RejectsUnknownNames) {
  const char* kUnknown[] = {
      "model.layers.0.self_attn.q_proj.bias",
      "model.layers.0.mlp.gate_proj",
      "model.layers.x.input_layernorm.weight",
      "model.layers.0.block_sparse_moe.experts.0.w4.weight",
      "model.layers.0.block_sparse_moe.experts.a.w1.weight",
      "layers.0.attention.wq.weight",  // a native name in an HF file
      "transformer.h.0.attn.weight",
      "model.embed_tokens.weight.extra",
      "",
  };
  for (const char* name : kUnknown) {
    std::string message =
        MessageOf<bora::FormatError>([&] { HfToNativeName(name, "shard-7.safetensors"); });
    EXPECT_NE(message.find("shard-7.safetensors"), std::string::npos) << name << ": " << message;
    EXPECT_NE(message.find(std::string("\"") + name + "\""), std::string::npos)
        << name << ": " << message;
  }
}

TEST(UnpermuteHfRopeTest, TwoHeadsOfFourOneColumn) {
  // HF rows hold their own index as a 4-byte value.
  std::vector<uint8_t> hf(8 * 4);
  for (uint32_t row = 0; row < 8; ++row) std::memcpy(hf.data() + row * 4, &row, 4);
  std::vector<uint8_t> native =
      UnpermuteHfRope(hf, /*n_heads=*/2, /*head_dim=*/4, /*cols=*/1, /*element_size=*/4);
  ASSERT_EQ(native.size(), hf.size());
  std::vector<uint32_t> rows(8);
  std::memcpy(rows.data(), native.data(), native.size());
  // native row h*d + 2i + c <- HF row h*d + c*d/2 + i
  EXPECT_EQ(rows, (std::vector<uint32_t>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(UnpermuteHfRopeTest, OneHeadOfSixTwoColumnsOfTwoBytes) {
  const int64_t head_dim = 6;
  const int64_t cols = 2;
  std::vector<uint8_t> hf(head_dim * cols * 2);
  for (size_t i = 0; i < hf.size(); ++i) hf[i] = static_cast<uint8_t>(i);  // row r = bytes 4r..4r+3
  std::vector<uint8_t> native = UnpermuteHfRope(hf, 1, head_dim, cols, 2);
  const int64_t kExpectedSource[] = {0, 3, 1, 4, 2, 5};
  for (int64_t row = 0; row < head_dim; ++row) {
    for (int64_t b = 0; b < 4; ++b) {
      EXPECT_EQ(native[row * 4 + b], hf[kExpectedSource[row] * 4 + b]) << "row " << row;
    }
  }
}

TEST(UnpermuteHfRopeTest, InvertsTheHfPermutation) {
  std::vector<uint8_t> native = FloatBytes(3, {3 * 8, 5});
  std::vector<uint8_t> hf = PermuteForHf(native, 3, 8, 5 * 4);
  EXPECT_NE(hf, native);
  EXPECT_EQ(UnpermuteHfRope(hf, 3, 8, 5, 4), native);
}

TEST(CheckpointTensorsTest, NativeTensorsAndShapeChecks) {
  bora::testing::TempDir dir;
  WriteNativeFolder(dir.path(), DenseModel());
  ModelFolder folder = InspectModelFolder(dir.path());
  CheckpointTensors tensors = CheckpointTensors::Open(folder);
  ExpectModelTensors(tensors, DenseModel());
  EXPECT_FALSE(tensors.Contains("layers.0.feed_forward.gate.weight"));

  std::string wrong_shape = MessageOf<bora::FormatError>([&] {
    tensors.Get("layers.0.attention.wq.weight", {8, 4});
  });
  EXPECT_NE(wrong_shape.find("\"layers.0.attention.wq.weight\""), std::string::npos) << wrong_shape;
  EXPECT_NE(wrong_shape.find("consolidated.safetensors"), std::string::npos) << wrong_shape;
  EXPECT_NE(wrong_shape.find("[8, 8]"), std::string::npos) << wrong_shape;
  EXPECT_NE(wrong_shape.find("[8, 4]"), std::string::npos) << wrong_shape;
  EXPECT_THROW(tensors.Get("norm.weight", {1, 8}), bora::FormatError);  // same elements, other rank
  EXPECT_THROW(tensors.Get("norm.weight", {}), bora::FormatError);

  std::string missing = MessageOf<bora::FormatError>([&] {
    tensors.Get("layers.0.feed_forward.gate.weight", {2, 8});
  });
  EXPECT_NE(missing.find("\"layers.0.feed_forward.gate.weight\""), std::string::npos) << missing;
}

TEST(CheckpointTensorsTest, RejectUnusedNamesTheExtraTensor) {
  bora::testing::TempDir dir;
  std::vector<FakeTensor> model = DenseModel();
  model.push_back({"layers.0.feed_forward.experts.0.w1.weight", {16, 8}, FloatBytes(99, {16, 8})});
  WriteNativeFolder(dir.path(), model);
  CheckpointTensors tensors = CheckpointTensors::Open(InspectModelFolder(dir.path()));
  EXPECT_NO_THROW(tensors.RejectUnused(NativeNames(model)));
  std::string message =
      MessageOf<bora::FormatError>([&] { tensors.RejectUnused(NativeNames(DenseModel())); });
  EXPECT_NE(message.find("\"layers.0.feed_forward.experts.0.w1.weight\""), std::string::npos)
      << message;
  EXPECT_THROW(tensors.RejectUnused({}), bora::FormatError);
}

TEST(CheckpointTensorsTest, LayerBeyondNLayersIsRejectedAtOpen) {
  {
    bora::testing::TempDir dir;
    std::vector<FakeTensor> model = DenseModel();
    model.push_back({"layers.1.attention_norm.weight", {8}, FloatBytes(50, {8})});
    WriteNativeFolder(dir.path(), model);
    ModelFolder folder = InspectModelFolder(dir.path());
    std::string message = MessageOf<bora::FormatError>([&] { CheckpointTensors::Open(folder); });
    EXPECT_NE(message.find("layers.1.attention_norm.weight"), std::string::npos) << message;
  }
  {
    bora::testing::TempDir dir;
    std::vector<FakeTensor> model = DenseModel();
    model.push_back(
        {"layers.99999999999999999999.ffn_norm.weight", {8}, FloatBytes(51, {8})});  // > int64
    WriteNativeFolder(dir.path(), model);
    EXPECT_THROW(CheckpointTensors::Open(InspectModelFolder(dir.path())), bora::FormatError);
  }
  {
    bora::testing::TempDir dir;
    WriteHfFolder(dir.path(), DenseModel());
    std::vector<FileTensor> tensors = HfFileTensors(DenseModel());
    tensors.push_back({"model.layers.1.input_layernorm.weight", {8}, FloatBytes(52, {8})});
    WriteSafetensors(dir.File("model.safetensors"), tensors);
    ModelFolder folder = InspectModelFolder(dir.path());
    std::string message = MessageOf<bora::FormatError>([&] { CheckpointTensors::Open(folder); });
    EXPECT_NE(message.find("model.layers.1.input_layernorm.weight"), std::string::npos) << message;
  }
}

TEST(CheckpointTensorsTest, HfQueryAndKeyViewsComeBackUnpermuted) {
  bora::testing::TempDir dir;
  const std::vector<FakeTensor> model = DenseModel();
  WriteHfFolder(dir.path(), model);
  ModelFolder folder = InspectModelFolder(dir.path());
  CheckpointTensors tensors = CheckpointTensors::Open(folder);
  ExpectModelTensors(tensors, model);  // q/k equal the native bytes, the rest are untouched

  // The file itself holds the permuted rows, so the check above is not vacuous.
  SafetensorsFile file = SafetensorsFile::Open(dir.File("model.safetensors"));
  for (const char* hf_name :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"}) {
    TensorView raw = file.View(hf_name);
    TensorView unpermuted = tensors.Get(HfToNativeName(hf_name, "x"), raw.info->shape);
    EXPECT_NE(ViewBytes(raw), ViewBytes(unpermuted)) << hf_name;
    EXPECT_EQ(ViewBytes(unpermuted), UnpermuteHfRope(raw.bytes, raw.info->shape[0] / kHeadDim,
                                                     kHeadDim, raw.info->shape[1], 4));
  }
  // v is not rotated and stays as stored.
  TensorView raw_v = file.View("model.layers.0.self_attn.v_proj.weight");
  EXPECT_EQ(ViewBytes(tensors.Get("layers.0.attention.wv.weight", {4, 8})), ViewBytes(raw_v));
}

TEST(CheckpointTensorsTest, HfIgnoresRotaryCachesAndRejectsUnknownNames) {
  {
    bora::testing::TempDir dir;
    bora::testing::WriteFile(dir.File("config.json"), kConfigJson);
    std::vector<FileTensor> tensors = HfFileTensors(DenseModel());
    tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", {2}, FloatBytes(60, {2})});
    WriteSafetensors(dir.File("model.safetensors"), tensors);
    CheckpointTensors opened = CheckpointTensors::Open(InspectModelFolder(dir.path()));
    EXPECT_NO_THROW(opened.RejectUnused(NativeNames(DenseModel())));
  }
  {
    bora::testing::TempDir dir;
    bora::testing::WriteFile(dir.File("config.json"), kConfigJson);
    std::vector<FileTensor> tensors = HfFileTensors(DenseModel());
    tensors.push_back({"model.layers.0.self_attn.q_proj.bias", {8}, FloatBytes(61, {8})});
    WriteSafetensors(dir.File("model.safetensors"), tensors);
    ModelFolder folder = InspectModelFolder(dir.path());
    std::string message = MessageOf<bora::FormatError>([&] { CheckpointTensors::Open(folder); });
    EXPECT_NE(message.find("q_proj.bias"), std::string::npos) << message;
  }
}

TEST(CheckpointTensorsTest, HfTiedEmbeddingsServeAsOutput) {
  bora::testing::TempDir dir;
  std::string config = kConfigJson;
  config.insert(config.size() - 1, R"(, "tie_word_embeddings": true)");
  bora::testing::WriteFile(dir.File("config.json"), config);
  std::vector<FakeTensor> model = DenseModel();
  std::vector<FakeTensor> without_output;
  for (const FakeTensor& t : model) {
    if (t.native_name != "output.weight") without_output.push_back(t);
  }
  WriteSafetensors(dir.File("model.safetensors"), HfFileTensors(without_output));
  ModelFolder folder = InspectModelFolder(dir.path());
  ASSERT_TRUE(folder.params.tie_embeddings);
  CheckpointTensors tensors = CheckpointTensors::Open(folder);
  ASSERT_TRUE(tensors.Contains("output.weight"));
  EXPECT_EQ(ViewBytes(tensors.Get("output.weight", {10, 8})), model[0].bytes);  // tok_embeddings
}

TEST(CheckpointTensorsTest, TensorInTwoShardsIsRejected) {
  bora::testing::TempDir dir;
  std::vector<FileTensor> tensors = NativeFileTensors(DenseModel());
  bora::testing::WriteFile(dir.File("params.json"), kParamsJson);
  WriteSafetensors(dir.File("consolidated-00001-of-00002.safetensors"), tensors);
  WriteSafetensors(dir.File("consolidated-00002-of-00002.safetensors"), {tensors[1]});
  ModelFolder folder = InspectModelFolder(dir.path());
  std::string message = MessageOf<bora::FormatError>([&] { CheckpointTensors::Open(folder); });
  EXPECT_NE(message.find("\"norm.weight\""), std::string::npos) << message;
}

TEST(CheckpointTensorsTest, CorruptWeightFileIsAFormatError) {
  bora::testing::TempDir dir;
  bora::testing::WriteFile(dir.File("params.json"), kParamsJson);
  bora::testing::WriteFile(dir.File("consolidated.safetensors"),
                           std::string("\x02\0\0\0\0\0\0\0{}", 10) + "x");
  ModelFolder folder = InspectModelFolder(dir.path());  // cheap: does not parse the weights
  EXPECT_THROW(CheckpointTensors::Open(folder), bora::FormatError);
}

// The reference models ship both layouts of the same weights: after name mapping and q/k
// un-permutation every HF tensor must equal its native counterpart byte for byte.
TEST(CheckpointTensorsTest, SharedReferenceModelsAgreeAcrossLayouts) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* model : {"tiny-dense", "tiny-moe"}) {
    SCOPED_TRACE(model);
    const std::string root = shared + "/reference-models/" + model;
    ModelFolder native_folder = InspectModelFolder(root + "/mistral");
    ModelFolder hf_folder = InspectModelFolder(root + "/hf");
    ASSERT_EQ(native_folder.layout, CheckpointLayout::kMistral);
    ASSERT_EQ(hf_folder.layout, CheckpointLayout::kHuggingFace);
    EXPECT_EQ(native_folder.params.n_layers, hf_folder.params.n_layers);
    EXPECT_EQ(native_folder.params.head_dim, hf_folder.params.head_dim);
    EXPECT_EQ(native_folder.params.moe.has_value(), hf_folder.params.moe.has_value());
    CheckpointTensors native = CheckpointTensors::Open(native_folder);
    CheckpointTensors hf = CheckpointTensors::Open(hf_folder);
    SafetensorsFile file = SafetensorsFile::Open(native_folder.weight_files.at(0));
    std::vector<std::string> names;
    for (const TensorInfo& info : file.header().tensors) {
      SCOPED_TRACE(info.name);
      names.push_back(info.name);
      TensorView a = native.Get(info.name, info.shape);
      TensorView b = hf.Get(info.name, info.shape);
      EXPECT_EQ(a.dtype, b.dtype);
      ASSERT_EQ(a.bytes.size(), b.bytes.size());
      EXPECT_TRUE(std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin()));
    }
    EXPECT_NO_THROW(native.RejectUnused(names));
    EXPECT_NO_THROW(hf.RejectUnused(names));
  }
}

}  // namespace
}  // namespace bora::formats
