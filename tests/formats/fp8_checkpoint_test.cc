// FP8 checkpoints: e4m3/e5m2 decoding, dequantization with per-tensor and per-row scales in both
// layouts, refusal of unknown scale shapes and of FP8 without a declared quantization, and the
// tiny-ministral3 FP8 folders against their BF16-exact weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/float16.h"
#include "formats/model_folder.h"
#include "testdata.h"

namespace bora::formats {
namespace {

using Json = nlohmann::json;

struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A safetensors file written by hand (the writer has no FP8 dtype, on purpose).
void WriteSafetensors(const std::string& path, const std::vector<RawTensor>& tensors) {
  Json header = Json::object();
  uint64_t offset = 0;
  std::string data;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
    data += t.bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::string file(8, '\0');
  const uint64_t length = text.size();
  std::memcpy(file.data(), &length, 8);
  testing::WriteFile(path, file + text + data);
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string Bf16Bytes(int64_t count, float value) {
  std::string bytes;
  const uint16_t bits = F32ToBf16(value);
  for (int64_t i = 0; i < count; ++i) bytes.append(reinterpret_cast<const char*>(&bits), 2);
  return bytes;
}

TEST(Fp8Test, DecodesE4M3AndE5M2) {
  EXPECT_EQ(Fp8ToF32(0x00, false), 0.0f);
  EXPECT_EQ(Fp8ToF32(0x38, false), 1.0f);             // exponent 7, mantissa 0
  EXPECT_EQ(Fp8ToF32(0x7E, false), 448.0f);           // the largest finite e4m3
  EXPECT_EQ(Fp8ToF32(0xFE, false), -448.0f);
  EXPECT_EQ(Fp8ToF32(0x01, false), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_TRUE(std::isnan(Fp8ToF32(0x7F, false)));
  EXPECT_TRUE(std::isnan(Fp8ToF32(0xFF, false)));
  EXPECT_EQ(Fp8ToF32(0x3C, true), 1.0f);              // e5m2: exponent 15
  EXPECT_EQ(Fp8ToF32(0x7B, true), 57344.0f);          // the largest finite e5m2
  EXPECT_TRUE(std::isinf(Fp8ToF32(0x7C, true)));
  EXPECT_EQ(Fp8ToF32(0x01, true), std::ldexp(1.0f, -16));
}

// A one-layer native folder whose wq is FP8 with `scale` (shape `scale_shape`).
struct Fp8Folder {
  testing::TempDir dir;
  static constexpr int64_t kDim = 8, kHidden = 16, kVocab = 10;

  void Write(const std::string& wq_dtype, const std::vector<int64_t>& scale_shape, const std::vector<float>& scale,
             bool declared = true, bool with_scale = true) {
    Json params = {{"dim", kDim}, {"n_layers", 1}, {"head_dim", 4}, {"hidden_dim", kHidden}, {"n_heads", 2},
                   {"n_kv_heads", 1}, {"norm_eps", 1e-5}, {"vocab_size", kVocab}, {"rope_theta", 1e6}};
    if (declared) params["quantization"] = {{"qformat_weight", "fp8_e4m3"}, {"qscheme_act", "TENSOR"}};
    testing::WriteFile(dir.File("params.json"), params.dump());
    std::string wq(kDim * kDim, '\0');
    for (int64_t i = 0; i < kDim * kDim; ++i) wq[i] = static_cast<char>(0x38 + (i % 8));  // 1, 1.125, ..., 1.875
    std::vector<RawTensor> tensors = {
        {"tok_embeddings.weight", "BF16", {kVocab, kDim}, Bf16Bytes(kVocab * kDim, 0.5f)},
        {"output.weight", "BF16", {kVocab, kDim}, Bf16Bytes(kVocab * kDim, 0.25f)},
        {"norm.weight", "BF16", {kDim}, Bf16Bytes(kDim, 1.0f)},
        {"layers.0.attention_norm.weight", "BF16", {kDim}, Bf16Bytes(kDim, 1.0f)},
        {"layers.0.ffn_norm.weight", "BF16", {kDim}, Bf16Bytes(kDim, 1.0f)},
        {"layers.0.attention.wq.weight", wq_dtype, {kDim, kDim}, wq},
        {"layers.0.attention.wq.qscale_act", "F32", {}, F32Bytes({0.5f})},
        {"layers.0.attention.wk.weight", "BF16", {4, kDim}, Bf16Bytes(4 * kDim, 0.1f)},
        {"layers.0.attention.wv.weight", "BF16", {4, kDim}, Bf16Bytes(4 * kDim, 0.1f)},
        {"layers.0.attention.wo.weight", "BF16", {kDim, kDim}, Bf16Bytes(kDim * kDim, 0.1f)},
        {"layers.0.feed_forward.w1.weight", "BF16", {kHidden, kDim}, Bf16Bytes(kHidden * kDim, 0.1f)},
        {"layers.0.feed_forward.w2.weight", "BF16", {kDim, kHidden}, Bf16Bytes(kHidden * kDim, 0.1f)},
        {"layers.0.feed_forward.w3.weight", "BF16", {kHidden, kDim}, Bf16Bytes(kHidden * kDim, 0.1f)},
    };
    if (with_scale) tensors.push_back({"layers.0.attention.wq.qscale_weight", "F32", scale_shape, F32Bytes(scale)});
    WriteSafetensors(dir.File("consolidated.safetensors"), tensors);
  }

  // wq as float32 values after opening with `target`.
  std::vector<float> Wq(DType target) {
    CheckpointTensors tensors = CheckpointTensors::Open(InspectModelFolder(dir.path()), target);
    EXPECT_FALSE(tensors.Contains("layers.0.attention.wq.qscale_weight"));  // consumed
    EXPECT_FALSE(tensors.Contains("layers.0.attention.wq.qscale_act"));
    TensorView view = tensors.Get("layers.0.attention.wq.weight", {kDim, kDim});
    EXPECT_EQ(view.dtype, target);
    std::vector<float> values(kDim * kDim);
    for (int64_t i = 0; i < kDim * kDim; ++i) {
      if (target == DType::kF32) {
        std::memcpy(&values[i], view.bytes.data() + 4 * i, 4);
      } else {
        uint16_t bits;
        std::memcpy(&bits, view.bytes.data() + 2 * i, 2);
        const uint32_t wide = static_cast<uint32_t>(bits) << 16;
        std::memcpy(&values[i], &wide, 4);
      }
    }
    return values;
  }
};

TEST(Fp8Test, PerTensorAndPerRowScalesMultiply) {
  Fp8Folder folder;
  folder.Write("F8_E4M3", {}, {0.375f});
  std::vector<float> wq = folder.Wq(DType::kF32);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(wq[i], (1.0f + (i % 8) / 8.0f) * 0.375f) << i;
  EXPECT_EQ(folder.Wq(DType::kBF16), wq);  // 4 + 2 significant bits: exact in bf16

  std::vector<float> rows = {1, 2, 4, 8, 0.5f, 0.25f, 3, 6};
  folder.Write("F8_E4M3", {8, 1}, rows);
  wq = folder.Wq(DType::kF32);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(wq[i], (1.0f + (i % 8) / 8.0f) * rows[i / 8]) << i;
  folder.Write("F8_E4M3", {8}, rows);
  EXPECT_EQ(folder.Wq(DType::kF32), wq);
  folder.Write("F8_E4M3", {1}, {2.0f});
  EXPECT_EQ(folder.Wq(DType::kF32)[9], 2.25f);
  // A scale with more significant bits than bf16 holds: f32 keeps the exact product.
  folder.Write("F8_E4M3", {}, {0.1f});
  EXPECT_EQ(folder.Wq(DType::kF32)[3], 1.375f * 0.1f);
}

TEST(Fp8Test, RefusesUnknownScaleShapesAndUndeclaredFp8) {
  Fp8Folder folder;
  folder.Write("F8_E4M3", {2, 2}, {1, 1, 1, 1});
  try {
    CheckpointTensors::Open(InspectModelFolder(folder.dir.path()));
    ADD_FAILURE() << "expected Unsupported";
  } catch (const Unsupported& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("qscale_weight"), std::string::npos) << message;
    EXPECT_NE(message.find("[2, 2]"), std::string::npos) << message;
  }
  folder.Write("F8_E4M3", {}, {1.0f}, /*declared=*/false);
  EXPECT_THROW(CheckpointTensors::Open(InspectModelFolder(folder.dir.path())), FormatError);
  folder.Write("F8_E4M3", {}, {1.0f}, true, /*with_scale=*/false);
  EXPECT_THROW(CheckpointTensors::Open(InspectModelFolder(folder.dir.path())), FormatError);
  folder.Write("F8_E4M3", {}, {-1.0f});
  EXPECT_THROW(CheckpointTensors::Open(InspectModelFolder(folder.dir.path())), FormatError);
  folder.Write("F8_E5M2", {}, {1.0f});
  EXPECT_EQ(folder.Wq(DType::kF32)[0], 0.5f);  // 0x38 in e5m2: exponent 14, bias 15
}

// The FP8 folders of tiny-ministral3 hold, after dequantization, the same weights in both
// layouts (HF q/k rows un-permuted after dequantizing), and bf16 holds them exactly.
TEST(Fp8Test, TinyMinistral3LayoutsAgree) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3/";
  CheckpointTensors native = CheckpointTensors::Open(InspectModelFolder(ref + "mistral-fp8"), DType::kF32);
  CheckpointTensors native_bf16 = CheckpointTensors::Open(InspectModelFolder(ref + "mistral-fp8"), DType::kBF16);
  CheckpointTensors hf = CheckpointTensors::Open(InspectModelFolder(ref + "hf-fp8"), DType::kF32);
  for (const char* name : {"layers.0.attention.wq.weight", "layers.3.attention.wk.weight",
                           "layers.2.feed_forward.w2.weight"}) {
    SCOPED_TRACE(name);
    const std::vector<int64_t> shape = std::string(name).find("wq") != std::string::npos   ? std::vector<int64_t>{512, 256}
                                       : std::string(name).find("wk") != std::string::npos ? std::vector<int64_t>{128, 256}
                                                                                           : std::vector<int64_t>{256, 640};
    TensorView a = native.Get(name, shape), b = hf.Get(name, shape), c = native_bf16.Get(name, shape);
    ASSERT_EQ(a.bytes.size(), b.bytes.size());
    EXPECT_EQ(std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()), 0);
    for (size_t i = 0; i < c.bytes.size() / 2; ++i) {
      float f32;
      std::memcpy(&f32, a.bytes.data() + 4 * i, 4);
      uint16_t bits;
      std::memcpy(&bits, c.bytes.data() + 2 * i, 2);
      ASSERT_EQ(bits, F32ToBf16(f32));
      ASSERT_EQ(static_cast<uint32_t>(bits) << 16, [&] { uint32_t u; std::memcpy(&u, &f32, 4); return u; }()) << i;
    }
  }
  EXPECT_TRUE(native.Contains("output.weight"));  // tied: the embedding table
}

}  // namespace
}  // namespace bora::formats
