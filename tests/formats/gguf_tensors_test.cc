// Tests the GGUF reader on llama.cpp's own files in ../shared: every tensor of every file
// dequantized row by row matches llama.cpp's checksums (tensors.json) bit for bit, and a GGUF
// file opens as a model (hyper-parameters, exact f32 and native q8/q4 weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/sha256.h"
#include "formats/gguf.h"
#include "formats/gguf_model.h"
#include "formats/model_folder.h"
#include "formats/model_params.h"
#include "kernels/quant/block_quant.h"
#include "kernels/quant/ggml_blocks.h"
#include "testdata.h"

namespace bora::formats {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A folder of GGUF files and the tensors.json describing them (its "file" entries are
// relative to the JSON's folder).
struct GgufSet {
  const char* gguf_dir;
  const char* tensors_json;
};
constexpr GgufSet kSets[] = {
    {"gguf/tiny-dense", "gguf/tiny-dense/tensors.json"},
    {"gguf/tiny-moe", "gguf/tiny-moe/tensors.json"},
    {"real-models/stories260K/gguf", "real-models/stories260K/tensors.json"},
};

Json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream text;
  text << in.rdbuf();
  return Json::parse(text.str());
}

// The little-endian bytes of `values` (the byte string tensors.json hashed).
std::string LittleEndianBytes(std::span<const float> values) {
  std::string bytes(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(values[i]);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
  }
  return bytes;
}

std::vector<float> FloatsOf(std::span<const uint8_t> bytes) {
  std::vector<float> values(bytes.size() / 4);
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= static_cast<uint32_t>(bytes[4 * i + b]) << (8 * b);
    values[i] = std::bit_cast<float>(bits);
  }
  return values;
}

// Every element of `info`, dequantized row by row as a caller of the reader would.
std::vector<float> Dequantize(const GgufFile& file, const GgufTensorInfo& info) {
  const int64_t cols = info.ne[0];
  const int64_t rows = info.NumElements() / cols;
  const uint64_t row_bytes = kernels::GgmlRowBytes(info.type, cols);
  EXPECT_EQ(row_bytes * static_cast<uint64_t>(rows), info.size) << info.name;
  const std::span<const uint8_t> bytes = file.TensorBytes(info);
  std::vector<float> values(static_cast<size_t>(info.NumElements()));
  for (int64_t r = 0; r < rows; ++r) {
    kernels::DequantizeGgmlRow(info.type, bytes.data() + static_cast<uint64_t>(r) * row_bytes, cols,
                               values.data() + r * cols);
  }
  return values;
}

// Compares dequantized `values` with one tensors.json entry.
void ExpectMatchesReference(const std::vector<float>& values, const Json& ref, const std::string& where) {
  EXPECT_EQ(Sha256Hex(LittleEndianBytes(values)), ref.at("sha256_f32").get<std::string>()) << where;
  const std::vector<double> first8 = ref.at("first8").get<std::vector<double>>();
  const std::vector<double> last8 = ref.at("last8").get<std::vector<double>>();
  ASSERT_GE(values.size(), first8.size()) << where;
  for (size_t i = 0; i < first8.size(); ++i) {
    EXPECT_EQ(static_cast<double>(values[i]), first8[i]) << where << " element " << i;
  }
  for (size_t i = 0; i < last8.size(); ++i) {
    const size_t index = values.size() - last8.size() + i;
    EXPECT_EQ(static_cast<double>(values[index]), last8[i]) << where << " element " << index;
  }
  double sum = 0, sumsq = 0, abs_sum = 0, absmax = 0;
  for (float v : values) {
    sum += v;
    sumsq += static_cast<double>(v) * v;
    abs_sum += std::fabs(v);
    absmax = std::max(absmax, static_cast<double>(std::fabs(v)));
  }
  EXPECT_NEAR(sum, ref.at("sum").get<double>(), 1e-9 * (1 + abs_sum)) << where;
  EXPECT_NEAR(sumsq, ref.at("sumsq").get<double>(), 1e-9 * (1 + sumsq)) << where;
  EXPECT_EQ(absmax, ref.at("absmax").get<double>()) << where;
}

TEST(GgufTensorsTest, EveryTensorMatchesLlamaCppDequantization) {
  BORA_REQUIRE_SHARED(shared);
  int files_checked = 0;
  int tensors_checked = 0;
  for (const GgufSet& set : kSets) {
    const fs::path json_path = fs::path(shared) / set.tensors_json;
    const Json reference = ReadJson(json_path.string());
    // tensors.json entries by canonical file path.
    std::map<fs::path, const Json*> by_file;
    for (const Json& entry : reference.at("files")) {
      by_file[fs::weakly_canonical(json_path.parent_path() / entry.at("file").get<std::string>())] = &entry;
    }
    std::vector<fs::path> gguf_files;
    for (const auto& dir_entry : fs::directory_iterator(fs::path(shared) / set.gguf_dir)) {
      if (dir_entry.path().extension() == ".gguf") gguf_files.push_back(dir_entry.path());
    }
    std::sort(gguf_files.begin(), gguf_files.end());
    ASSERT_FALSE(gguf_files.empty()) << set.gguf_dir;
    EXPECT_EQ(gguf_files.size(), by_file.size()) << set.tensors_json << " describes a different set of files";

    for (const fs::path& path : gguf_files) {
      SCOPED_TRACE(path.string());
      auto it = by_file.find(fs::weakly_canonical(path));
      ASSERT_NE(it, by_file.end()) << "no tensors.json entry for " << path;
      const Json& file_ref = *it->second;
      const GgufFile file = GgufFile::Open(path.string());
      const GgufHeader& header = file.header();
      const Json& tensors = file_ref.at("tensors");
      EXPECT_EQ(header.tensors.size(), tensors.size());
      for (const Json& ref : tensors) {
        const std::string name = ref.at("name").get<std::string>();
        const GgufTensorInfo* info = header.FindTensor(name);
        ASSERT_NE(info, nullptr) << name;
        EXPECT_EQ(kernels::GgmlTypeInfo(info->type).name, ref.at("type").get<std::string>()) << name;
        EXPECT_EQ(info->ne, ref.at("ne").get<std::vector<int64_t>>()) << name;
        EXPECT_EQ(info->size, ref.at("bytes").get<uint64_t>()) << name;
        ExpectMatchesReference(Dequantize(file, *info), ref, path.filename().string() + " " + name);
        ++tensors_checked;
      }
      ++files_checked;
    }
  }
  EXPECT_EQ(files_checked, 7 + 1 + 6);
  EXPECT_EQ(tensors_checked, 7 * 39 + 23 + 6 * 48);
}

// Hyper-parameters of each GGUF model equal its reference model's params.json.
TEST(GgufTensorsTest, InspectModelFolderReadsHyperParameters) {
  BORA_REQUIRE_SHARED(shared);
  struct Case {
    const char* gguf;
    const char* params_json;
    int64_t context_length;
    bool moe;
  };
  const Case kCases[] = {
      {"gguf/tiny-dense/tiny-dense-Q4_K_M.gguf", "reference-models/tiny-dense/mistral/params.json", 4096, false},
      {"gguf/tiny-dense/tiny-dense-BF16.gguf", "reference-models/tiny-dense/mistral/params.json", 4096, false},
      {"gguf/tiny-moe/tiny-moe-Q4_K_M.gguf", "reference-models/tiny-moe/mistral/params.json", 4096, true},
      {"real-models/stories260K/gguf/stories260K-Q4_0.gguf", "real-models/stories260K/params.json", 512, false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.gguf);
    const std::string path = shared + "/" + c.gguf;
    std::ifstream params_in(shared + "/" + c.params_json);
    std::ostringstream params_text;
    params_text << params_in.rdbuf();
    const ModelParams want = ParseMistralParams(params_text.str(), c.params_json);

    const ModelFolder folder = InspectModelFolder(path);
    EXPECT_EQ(folder.layout, CheckpointLayout::kGguf);
    EXPECT_EQ(folder.path, path);
    EXPECT_EQ(folder.weight_files, std::vector<std::string>{path});
    EXPECT_EQ(folder.weight_bytes, fs::file_size(path));
    const ModelParams& got = folder.params;
    EXPECT_EQ(got.dim, want.dim);
    EXPECT_EQ(got.n_layers, want.n_layers);
    EXPECT_EQ(got.head_dim, want.head_dim);
    EXPECT_EQ(got.hidden_dim, want.hidden_dim);
    EXPECT_EQ(got.n_heads, want.n_heads);
    EXPECT_EQ(got.n_kv_heads, want.n_kv_heads);
    EXPECT_EQ(got.vocab_size, want.vocab_size);
    EXPECT_EQ(got.rope_theta, want.rope_theta);
    EXPECT_EQ(got.norm_eps, static_cast<double>(static_cast<float>(want.norm_eps)));  // stored as f32
    EXPECT_EQ(got.max_positions, c.context_length);
    EXPECT_EQ(got.layer_windows, std::vector<int64_t>(static_cast<size_t>(want.n_layers), 0));
    EXPECT_FALSE(got.tie_embeddings);  // output.weight is its own tensor
    EXPECT_FALSE(got.yarn.has_value());
    EXPECT_FALSE(got.llama4_scaling.has_value());
    ASSERT_EQ(got.moe.has_value(), c.moe);
    ASSERT_EQ(want.moe.has_value(), c.moe);
    if (c.moe) {
      EXPECT_EQ(got.moe->num_experts, 8);
      EXPECT_EQ(got.moe->num_experts, want.moe->num_experts);
      EXPECT_EQ(got.moe->num_experts_per_tok, want.moe->num_experts_per_tok);
    }
    // Decoded sizes, computed here from the tensor list.
    const GgufFile file = GgufFile::Open(path);
    uint64_t exact = 0, native = 0;
    for (const GgufTensorInfo& info : file.header().tensors) {
      const auto type = static_cast<kernels::GgmlType>(info.type);
      const bool is_float = type == kernels::GgmlType::kF32 || type == kernels::GgmlType::kF16 ||
                            type == kernels::GgmlType::kBF16;
      const bool lossless = type == kernels::GgmlType::kQ8_0 || type == kernels::GgmlType::kQ4_0;
      const uint64_t elements = static_cast<uint64_t>(info.NumElements());
      exact += is_float ? info.size : 4 * elements;
      native += is_float || lossless ? info.size : elements / 32 * 34;
    }
    EXPECT_EQ(folder.gguf_exact_bytes, exact);
    EXPECT_EQ(folder.gguf_native_bytes, native);
  }
}

// The numpy shape of a GGUF tensor (ne reversed) and its tensors.json entries by name.
std::vector<int64_t> Reversed(std::vector<int64_t> ne) {
  std::reverse(ne.begin(), ne.end());
  return ne;
}

std::map<std::string, Json> ReferenceTensors(const std::string& tensors_json, const std::string& key) {
  const Json reference = ReadJson(tensors_json);
  std::map<std::string, Json> out;
  for (const Json& t : reference.at("files").at(key).at("tensors")) out[t.at("name").get<std::string>()] = t;
  return out;
}

// Opens `gguf` with exact f32 decoding and checks every tensor (expert slabs concatenated in
// expert order) against tensors.json.
void ExpectExactTensorsMatchReference(const std::string& gguf, const std::string& tensors_json, const std::string& key) {
  const ModelFolder folder = InspectModelFolder(gguf);
  const CheckpointTensors tensors = CheckpointTensors::Open(folder, DType::kBF16, GgufDecode::kExactF32);
  EXPECT_TRUE(tensors.notes().empty());
  const GgufFile file = GgufFile::Open(gguf);
  for (const auto& [name, ref] : ReferenceTensors(tensors_json, key)) {
    SCOPED_TRACE(name);
    const GgufTensorInfo* info = file.header().FindTensor(name);
    ASSERT_NE(info, nullptr);
    const GgufNativeName native = GgufToNativeName(name, gguf);
    std::vector<float> values;
    if (native.expert_slabs) {
      ASSERT_EQ(info->ne.size(), 3u);
      for (int64_t e = 0; e < info->ne[2]; ++e) {
        std::string expert = native.native;
        expert.replace(expert.find("{e}"), 3, std::to_string(e));
        const TensorView view = tensors.Get(expert, {info->ne[1], info->ne[0]});
        EXPECT_EQ(view.dtype, DType::kF32) << expert;
        const std::vector<float> slab = FloatsOf(view.bytes);
        values.insert(values.end(), slab.begin(), slab.end());
      }
    } else {
      const TensorView view = tensors.Get(native.native, Reversed(info->ne));
      EXPECT_EQ(view.dtype, DType::kF32) << native.native;
      values = FloatsOf(view.bytes);
    }
    ExpectMatchesReference(values, ref, name);
    // And the reader's own row-by-row dequantization gives the same floats.
    EXPECT_TRUE(values == Dequantize(file, *info));
  }
}

TEST(GgufTensorsTest, ExactF32CheckpointEqualsDequantizedTensors) {
  BORA_REQUIRE_SHARED(shared);
  const std::string gguf = shared + "/gguf/tiny-dense/tiny-dense-Q4_K_M.gguf";
  const ModelFolder folder = InspectModelFolder(gguf);
  const CheckpointTensors tensors = CheckpointTensors::Open(folder, DType::kBF16, GgufDecode::kExactF32);
  const TensorView wq = tensors.Get("layers.0.attention.wq.weight", {256, 256});
  EXPECT_EQ(wq.dtype, DType::kF32);
  const GgufFile file = GgufFile::Open(gguf);
  const GgufTensorInfo* attn_q = file.header().FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(attn_q, nullptr);
  EXPECT_EQ(attn_q->type, static_cast<uint32_t>(kernels::GgmlType::kQ4_K));
  EXPECT_TRUE(FloatsOf(wq.bytes) == Dequantize(file, *attn_q));
  EXPECT_THROW(tensors.Get("layers.0.attention.wq.weight", {256, 128}), FormatError);
  EXPECT_FALSE(tensors.Contains("layers.0.attention.wq.weight.q8"));

  ExpectExactTensorsMatchReference(gguf, shared + "/gguf/tiny-dense/tensors.json", "Q4_K_M");
  ExpectExactTensorsMatchReference(shared + "/gguf/tiny-moe/tiny-moe-Q4_K_M.gguf",
                                   shared + "/gguf/tiny-moe/tensors.json", "Q4_K_M");
  ExpectExactTensorsMatchReference(shared + "/real-models/stories260K/gguf/stories260K-Q4_0.gguf",
                                   shared + "/real-models/stories260K/tensors.json", "Q4_0");
}

TEST(GgufTensorsTest, NativeDecodingRepacksOrConverts) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/gguf/tiny-dense/";
  auto packed_shape = [](kernels::QuantFormat format, int64_t rows, int64_t cols) {
    const kernels::PackedShape shape{format, rows, cols};
    return std::vector<int64_t>{shape.panels(), shape.blocks(), kernels::QuantBlockBytes(format)};
  };
  auto scale_shape = [](kernels::QuantFormat format, int64_t rows, int64_t cols) {
    const kernels::PackedShape shape{format, rows, cols};
    return std::vector<int64_t>{shape.panels(), shape.blocks(), kernels::kPanelRows};
  };

  {
    SCOPED_TRACE("Q4_0: repacked to q4, its Q6_K output converted to q8");
    const CheckpointTensors t = CheckpointTensors::Open(InspectModelFolder(dir + "tiny-dense-Q4_0.gguf"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q4"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q4_scales"));
    EXPECT_FALSE(t.Contains("layers.0.attention.wq.weight"));
    EXPECT_FALSE(t.Contains("layers.0.attention.wq.weight.q8"));
    EXPECT_EQ(t.Get("layers.3.feed_forward.w2.weight.q4", packed_shape(kernels::QuantFormat::kQ4, 256, 768)).dtype,
              DType::kU8);
    EXPECT_EQ(t.Get("layers.3.feed_forward.w2.weight.q4_scales", scale_shape(kernels::QuantFormat::kQ4, 256, 768)).dtype,
              DType::kF16);
    EXPECT_TRUE(t.Contains("output.weight.q8"));
    EXPECT_TRUE(t.Contains("tok_embeddings.weight.q4"));
    EXPECT_EQ(t.Get("norm.weight", {256}).dtype, DType::kF32);
    EXPECT_EQ(t.Get("layers.2.attention_norm.weight", {256}).dtype, DType::kF32);
    ASSERT_EQ(t.notes().size(), 1u);
    EXPECT_NE(t.notes()[0].find("Q6_K"), std::string::npos) << t.notes()[0];
  }
  {
    SCOPED_TRACE("Q8_0: repacked to q8");
    const CheckpointTensors t = CheckpointTensors::Open(InspectModelFolder(dir + "tiny-dense-Q8_0.gguf"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q8"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q8_scales"));
    EXPECT_FALSE(t.Contains("layers.0.attention.wq.weight"));
    EXPECT_EQ(t.Get("layers.1.attention.wk.weight.q8", packed_shape(kernels::QuantFormat::kQ8, 64, 256)).dtype,
              DType::kU8);
    EXPECT_TRUE(t.Contains("output.weight.q8"));
  }
  {
    SCOPED_TRACE("Q4_K_M: K-quants converted to q8, with a note");
    const CheckpointTensors t = CheckpointTensors::Open(InspectModelFolder(dir + "tiny-dense-Q4_K_M.gguf"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q8"));
    EXPECT_TRUE(t.Contains("layers.0.attention.wq.weight.q8_scales"));
    EXPECT_TRUE(t.Contains("layers.2.attention.wv.weight.q8"));  // Q6_K in layers 2 and 3
    EXPECT_FALSE(t.Contains("layers.0.attention.wq.weight.q4"));
    EXPECT_EQ(t.Get("norm.weight", {256}).dtype, DType::kF32);
    ASSERT_EQ(t.notes().size(), 1u);
    EXPECT_NE(t.notes()[0].find("Q4_K, Q6_K"), std::string::npos) << t.notes()[0];
  }
  {
    SCOPED_TRACE("MoE: expert slabs and a dense router");
    const CheckpointTensors t = CheckpointTensors::Open(InspectModelFolder(shared + "/gguf/tiny-moe/tiny-moe-Q4_K_M.gguf"));
    for (int e = 0; e < 8; ++e) {
      const std::string prefix = "layers.1.feed_forward.experts." + std::to_string(e) + ".";
      EXPECT_TRUE(t.Contains(prefix + "w1.weight.q8")) << prefix;
      EXPECT_TRUE(t.Contains(prefix + "w2.weight.q8")) << prefix;
      EXPECT_TRUE(t.Contains(prefix + "w3.weight.q8")) << prefix;
    }
    EXPECT_FALSE(t.Contains("layers.1.feed_forward.experts.8.w1.weight.q8"));
    EXPECT_EQ(t.Get("layers.0.feed_forward.gate.weight", {8, 256}).dtype, DType::kF32);
    EXPECT_TRUE(t.Contains("layers.0.attention.wk.weight.q8"));  // Q8_0 in this file
  }
}

}  // namespace
}  // namespace bora::formats
