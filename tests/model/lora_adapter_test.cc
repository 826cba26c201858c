// LoRA adapter files: a saved adapter has mistral-finetune's layout and loads back (bf16
// rounding), PEFT folders load with their scaling, and malformed folders (shapes, missing
// keys, ranks, NaN, unknown keys, other bases, unsupported PEFT options) are typed errors
// naming the file and the key.
#include "model/lora_adapter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/float16.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "model/lora_test_util.h"
#include "model/model_test_util.h"
#include "testdata.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

formats::ModelParams MoeParams() {
  formats::ModelParams p = SmallParams();
  p.moe = formats::MoeParams{4, 2};
  return p;
}

// A named F32 tensor for hand-made adapter files.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float fill = 0.01f;
  DType dtype = DType::kF32;
};

void WriteTensors(const std::string& path, const std::vector<Tensor>& tensors) {
  std::vector<formats::TensorSpec> specs;
  for (const Tensor& t : tensors) specs.push_back({t.name, t.dtype, t.shape});
  formats::SafetensorsWriter writer(path, specs);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t bytes = specs[i].ByteSize();
    std::vector<uint8_t> data(bytes);
    if (tensors[i].dtype == DType::kF32) {
      for (size_t j = 0; j < bytes / 4; ++j) std::memcpy(data.data() + 4 * j, &tensors[i].fill, 4);
    }
    writer.Append(data);
  }
  writer.Finish();
}

// Every A/B tensor of a complete rank-`rank` mistral-layout adapter for `p`.
std::vector<Tensor> FullAdapterTensors(const formats::ModelParams& p, int64_t rank) {
  std::vector<Tensor> tensors;
  model::LoraAdapter shape = model::NewLoraAdapter(p, rank, 2.0f);
  shape.ForEachMatrix([&](model::LoraMatrix& m, const std::string& name) {
    tensors.push_back({name + ".lora_A.weight", {m.rank, m.in}});
    tensors.push_back({name + ".lora_B.weight", {m.out, m.rank}});
  });
  return tensors;
}

// Runs `load` and expects exception type E whose message names every string in `mentions`.
template <typename E>
void ExpectLoadError(const std::function<void()>& load, const std::vector<std::string>& mentions) {
  try {
    load();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    for (const std::string& text : mentions) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos)
          << e.what() << "\nmissing: " << text;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(LoraAdapterTest, NewAdapterCoversEveryLinearWithZeros) {
  const formats::ModelParams dense = SmallParams();
  model::LoraAdapter adapter = model::NewLoraAdapter(dense, 4, 2.0f);
  int matrices = 0;
  adapter.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    ++matrices;
    for (float v : m.b) EXPECT_EQ(v, 0.0f);
  });
  EXPECT_EQ(matrices, 7 * dense.n_layers);
  EXPECT_EQ(adapter.layers[0].wq.out, dense.n_heads * dense.head_dim);
  EXPECT_EQ(adapter.layers[0].wo.in, dense.n_heads * dense.head_dim);
  EXPECT_EQ(adapter.layers[1].ffn.w2.in, dense.hidden_dim);
  EXPECT_NO_THROW(model::ValidateLoraAdapter(adapter, dense));

  const formats::ModelParams moe = MoeParams();
  model::LoraAdapter experts = model::NewLoraAdapter(moe, 4, 2.0f);
  matrices = 0;
  experts.ForEachMatrix([&](model::LoraMatrix&, const std::string&) { ++matrices; });
  EXPECT_EQ(matrices, (4 + 3 * 4) * moe.n_layers);
  EXPECT_TRUE(experts.layers[0].ffn.w1.empty());
  EXPECT_NO_THROW(model::ValidateLoraAdapter(experts, moe));
  // A dense adapter on a MoE model and the reverse are refused.
  EXPECT_THROW(model::ValidateLoraAdapter(adapter, moe), InvalidArgument);
  EXPECT_THROW(model::ValidateLoraAdapter(experts, dense), InvalidArgument);
  EXPECT_FALSE(model::LoraMatchesModel(adapter, moe));
  EXPECT_THROW(model::NewLoraAdapter(dense, 0, 2.0f), InvalidArgument);
}

TEST(LoraAdapterTest, ValidationNamesTheMatrixWithTheWrongShape) {
  const formats::ModelParams p = SmallParams();
  model::LoraAdapter adapter = model::NewLoraAdapter(p, 4, 2.0f);
  adapter.layers[1].wk.b.resize(3);
  ExpectLoadError<InvalidArgument>([&] { model::ValidateLoraAdapter(adapter, p); },
                                   {"layers.1.attention.wk"});
  EXPECT_FALSE(model::LoraMatchesModel(adapter, p));
}

TEST(LoraAdapterTest, FingerprintFollowsTheContent) {
  const formats::ModelParams p = SmallParams();
  model::LoraAdapter a = RandomAdapter(p, 4, 2.0f, 1, 0.1f);
  model::LoraAdapter b = RandomAdapter(p, 4, 2.0f, 1, 0.1f);
  EXPECT_EQ(model::LoraFingerprint(a), model::LoraFingerprint(b));
  EXPECT_NE(model::LoraFingerprint(a), 0u);
  b.layers[1].ffn.w3.b[5] += 1e-3f;
  EXPECT_NE(model::LoraFingerprint(a), model::LoraFingerprint(b));
  b = a;
  b.scaling = 1.0f;
  EXPECT_NE(model::LoraFingerprint(a), model::LoraFingerprint(b));
}

TEST(LoraAdapterTest, SaveWritesMistralFinetuneLayoutAndLoadsBack) {
  for (const formats::ModelParams& p : {SmallParams(), MoeParams()}) {
    TempDir dir;
    model::LoraAdapter adapter = RandomAdapter(p, 8, 1.5f, 11, 0.05f);
    adapter.dropout = 0.1f;
    adapter.instruct_version = "v3";
    WriteFile(dir.File("tokenizer.model.v3"), "not really a tokenizer");
    const std::string out = dir.path() + "/checkpoints/checkpoint_000010/consolidated";
    model::SaveLoraAdapter(adapter, p, out, dir.File("tokenizer.model.v3"));

    // Exactly mistral-finetune's files and key names, BF16.
    std::set<std::string> files;
    for (const auto& entry : fs::directory_iterator(out))
      files.insert(entry.path().filename().string());
    EXPECT_EQ(files,
              (std::set<std::string>{"lora.safetensors", "params.json", "tokenizer.model.v3"}));
    formats::SafetensorsFile file = formats::SafetensorsFile::Open(out + "/lora.safetensors");
    const size_t per_layer = p.moe ? 2 * (4 + 3 * 4) : 2 * 7;
    EXPECT_EQ(file.header().tensors.size(), per_layer * p.n_layers);
    for (const auto& info : file.header().tensors) EXPECT_EQ(info.dtype_name, "BF16") << info.name;
    const formats::TensorInfo* wq_a = file.Find("layers.0.attention.wq.lora_A.weight");
    ASSERT_NE(wq_a, nullptr);
    EXPECT_EQ(wq_a->shape, (std::vector<int64_t>{8, p.dim}));
    const formats::TensorInfo* w2_b =
        file.Find(p.moe ? "layers.1.feed_forward.experts.3.w2.lora_B.weight"
                        : "layers.1.feed_forward.w2.lora_B.weight");
    ASSERT_NE(w2_b, nullptr);
    EXPECT_EQ(w2_b->shape, (std::vector<int64_t>{p.dim, 8}));

    std::ifstream params_in(out + "/params.json");
    const Json params = Json::parse(params_in);
    EXPECT_EQ(params["dim"], p.dim);
    EXPECT_EQ(params["n_layers"], p.n_layers);
    EXPECT_EQ(params["lora"],
              Json({{"enable", true}, {"rank", 8}, {"dropout", 0.1}, {"scaling", 1.5}}));
    EXPECT_EQ(params[model::kLoraInstructVersionKey], "v3");
    EXPECT_EQ(params.contains("moe"), p.moe.has_value());

    // Loading: the folder itself or the checkpoint folder above it.
    for (const std::string& path : {out, dir.path() + "/checkpoints/checkpoint_000010"}) {
      const model::LoraAdapter loaded = model::LoadLoraAdapter(path, p);
      EXPECT_EQ(loaded.rank, 8);
      EXPECT_FLOAT_EQ(loaded.scaling, 1.5f);
      EXPECT_FLOAT_EQ(loaded.dropout, 0.1f);
      EXPECT_EQ(loaded.instruct_version, "v3");
      EXPECT_NE(loaded.fingerprint, 0u);
      double worst = 0;
      size_t count = 0;
      loaded.ForEachMatrix([&](const model::LoraMatrix& m, const std::string& name) {
        ++count;
        const model::LoraMatrix* original = nullptr;
        adapter.ForEachMatrix([&](model::LoraMatrix& o, const std::string& other) {
          if (other == name) original = &o;
        });
        ASSERT_NE(original, nullptr) << name;
        for (size_t i = 0; i < m.a.size(); ++i) {
          EXPECT_EQ(m.a[i], Bf16ToF32(F32ToBf16(original->a[i])));
          worst =
              std::max(worst, std::fabs(static_cast<double>(m.a[i]) - original->a[i]) /
                                  std::max(1e-30, std::fabs(static_cast<double>(original->a[i]))));
        }
        for (size_t i = 0; i < m.b.size(); ++i)
          EXPECT_EQ(m.b[i], Bf16ToF32(F32ToBf16(original->b[i])));
      });
      EXPECT_EQ(count, per_layer / 2 * p.n_layers);
      EXPECT_LE(worst, 1.0 / 256);  // bf16: 8 significant bits
    }
  }
}

TEST(LoraAdapterTest, LoraFileWithoutParamsUsesDefaultScaling) {
  const formats::ModelParams p = SmallParams();
  TempDir dir;
  WriteTensors(dir.File("lora.safetensors"), FullAdapterTensors(p, 2));
  const model::LoraAdapter adapter = model::LoadLoraAdapter(dir.path(), p);
  EXPECT_EQ(adapter.rank, 2);
  EXPECT_FLOAT_EQ(adapter.scaling, 2.0f);
  EXPECT_TRUE(adapter.instruct_version.empty());
  EXPECT_FLOAT_EQ(adapter.layers[0].wv.a[3], 0.01f);
}

TEST(LoraAdapterTest, AttentionOnlyAdapterLoads) {
  const formats::ModelParams p = SmallParams();
  TempDir dir;
  std::vector<Tensor> tensors;
  for (const Tensor& t : FullAdapterTensors(p, 2)) {
    if (t.name.find("attention") != std::string::npos) tensors.push_back(t);
  }
  WriteTensors(dir.File("lora.safetensors"), tensors);
  const model::LoraAdapter adapter = model::LoadLoraAdapter(dir.path(), p);
  EXPECT_FALSE(adapter.layers[1].wo.empty());
  EXPECT_TRUE(adapter.layers[1].ffn.w1.empty());
}

TEST(LoraAdapterTest, PeftConfigScalingIsAlphaOverRank) {
  const formats::ModelParams p = SmallParams();
  TempDir dir;
  model::LoraAdapter adapter = RandomAdapter(p, 4, 4.0f, 3, 0.1f);
  WritePeftAdapter(adapter, p, dir.path());
  model::LoraAdapter loaded = model::LoadLoraAdapter(dir.path(), p);
  EXPECT_EQ(loaded.rank, 4);
  EXPECT_FLOAT_EQ(loaded.scaling, 4.0f);  // lora_alpha 16 / r 4
  // Un-permuted B rows of q/k equal the native ones exactly; everything else is copied.
  EXPECT_EQ(loaded.layers[1].wq.b, adapter.layers[1].wq.b);
  EXPECT_EQ(loaded.layers[0].wk.b, adapter.layers[0].wk.b);
  EXPECT_EQ(loaded.layers[0].wv.b, adapter.layers[0].wv.b);
  EXPECT_EQ(loaded.layers[1].ffn.w2.a, adapter.layers[1].ffn.w2.a);
  EXPECT_EQ(loaded.fingerprint, model::LoraFingerprint(adapter));

  // rsLoRA: alpha / sqrt(r).
  std::ifstream in(dir.File("adapter_config.json"));
  Json config = Json::parse(in);
  config["use_rslora"] = true;
  std::ofstream(dir.File("adapter_config.json")) << config.dump();
  EXPECT_FLOAT_EQ(model::LoadLoraAdapter(dir.path(), p).scaling, 8.0f);
}

class MalformedAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override { tensors_ = FullAdapterTensors(p_, 2); }
  void Write() { WriteTensors(dir_.File("lora.safetensors"), tensors_); }
  Tensor& Find(const std::string& name) {
    for (Tensor& t : tensors_) {
      if (t.name == name) return t;
    }
    throw std::runtime_error("no " + name);
  }
  void Erase(const std::string& name) {
    std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
  }
  template <typename E>
  void Expect(const std::vector<std::string>& mentions) {
    ExpectLoadError<E>([&] { model::LoadLoraAdapter(dir_.path(), p_); }, mentions);
  }

  formats::ModelParams p_ = SmallParams();
  TempDir dir_;
  std::vector<Tensor> tensors_;
};

TEST_F(MalformedAdapterTest, WrongShape) {
  Find("layers.1.attention.wo.lora_A.weight").shape = {2, 63};
  Write();
  Expect<FormatError>({"lora.safetensors", "layers.1.attention.wo.lora_A.weight", "[2, 63]"});
}

TEST_F(MalformedAdapterTest, WrongBShape) {
  Find("layers.0.feed_forward.w1.lora_B.weight").shape = {64, 2};
  Write();
  Expect<FormatError>({"layers.0.feed_forward.w1.lora_B.weight", "[128, 2]"});
}

TEST_F(MalformedAdapterTest, MissingHalfOfAPair) {
  Erase("layers.1.feed_forward.w3.lora_B.weight");
  Write();
  Expect<FormatError>({"lora.safetensors", "layers.1.feed_forward.w3.lora_B.weight", "missing"});
}

TEST_F(MalformedAdapterTest, LayerMissingAMatrixTheOthersHave) {
  Erase("layers.1.attention.wq.lora_A.weight");
  Erase("layers.1.attention.wq.lora_B.weight");
  Write();
  Expect<FormatError>({"layers.1.attention.wq.lora_A.weight", "missing"});
}

TEST_F(MalformedAdapterTest, RanksDisagree) {
  Find("layers.1.attention.wv.lora_A.weight").shape = {3, 64};
  Find("layers.1.attention.wv.lora_B.weight").shape = {32, 3};
  Write();
  Expect<FormatError>({"layers.1.attention.wv.lora_A.weight", "rank 3"});
}

TEST_F(MalformedAdapterTest, RankDiffersFromParams) {
  Write();
  WriteFile(dir_.File("params.json"), R"({"lora": {"rank": 4, "scaling": 2.0}})");
  Expect<FormatError>({"rank 2", "the config says rank 4"});
}

TEST_F(MalformedAdapterTest, BadRankInParams) {
  Write();
  WriteFile(dir_.File("params.json"), R"({"lora": {"rank": 0}})");
  Expect<FormatError>({"params.json", "lora.rank"});
  WriteFile(dir_.File("params.json"), R"({"lora": {"rank": "sixteen"}})");
  Expect<FormatError>({"params.json", "lora.rank"});
  WriteFile(dir_.File("params.json"), R"({"lora": {"rank": 2, "scaling": "big"}})");
  Expect<FormatError>({"lora.scaling"});
  WriteFile(dir_.File("params.json"), R"({"lora": {"rank": 2}, "instruct_version": 3})");
  Expect<FormatError>({"instruct_version"});
  WriteFile(dir_.File("params.json"), "{not json");
  Expect<FormatError>({"params.json", "not valid JSON"});
}

TEST_F(MalformedAdapterTest, NonFiniteValue) {
  Find("layers.0.feed_forward.w2.lora_B.weight").fill = std::numeric_limits<float>::quiet_NaN();
  Write();
  Expect<FormatError>({"lora.safetensors", "layers.0.feed_forward.w2.lora_B.weight", "non-finite"});
  Find("layers.0.feed_forward.w2.lora_B.weight").fill = 0.5f;
  Find("layers.1.attention.wk.lora_A.weight").fill = std::numeric_limits<float>::infinity();
  Write();
  Expect<FormatError>({"layers.1.attention.wk.lora_A.weight", "non-finite"});
}

TEST_F(MalformedAdapterTest, UnknownKeys) {
  tensors_.push_back({"layers.0.attention.wq.weight", {32, 64}});
  Write();
  Expect<FormatError>({"unexpected tensor", "layers.0.attention.wq.weight"});
  tensors_.back() = {"output.lora_A.weight", {2, 64}};
  Write();
  Expect<FormatError>({"output.lora_A.weight"});
  tensors_.back() = {"layers.2.attention.wq.lora_A.weight", {2, 64}};
  Write();
  Expect<FormatError>({"layers.2.attention.wq.lora_A.weight", "2 layers"});
  tensors_.back() = {"layers.0.feed_forward.experts.0.w1.lora_A.weight", {2, 64}};
  Write();
  Expect<FormatError>({"experts.0.w1", "dense"});
  tensors_.back() = {"layers.0.attention.wq.lora_A.weight", {2, 64}, 0.0f, DType::kU8};
  Erase("layers.0.attention.wq.lora_A.weight");
  tensors_.push_back({"layers.0.attention.wq.lora_A.weight", {2, 64}, 0.0f, DType::kU8});
  Write();
  Expect<FormatError>({"layers.0.attention.wq.lora_A.weight", "dtype U8"});
}

TEST_F(MalformedAdapterTest, DenseKeysInAMoeModel) {
  p_.moe = formats::MoeParams{4, 2};
  Write();  // dense feed-forward keys
  Expect<FormatError>({"layers.0.feed_forward.w1", "mixture of experts"});
  tensors_ = FullAdapterTensors(p_, 2);
  Erase("layers.1.feed_forward.experts.2.w3.lora_A.weight");
  Erase("layers.1.feed_forward.experts.2.w3.lora_B.weight");
  Write();
  Expect<FormatError>({"layers.1.feed_forward.experts.2.w3.lora_A.weight", "missing"});
}

TEST_F(MalformedAdapterTest, ParamsForAnotherBase) {
  Write();
  formats::ModelParams other = p_;
  other.dim = 128;
  Json params = Json::parse(formats::MistralParamsJson(other));
  params["lora"] = {{"enable", true}, {"rank", 2}, {"dropout", 0.0}, {"scaling", 2.0}};
  WriteFile(dir_.File("params.json"), params.dump());
  Expect<FormatError>({"params.json", "another base model", "dim 128 (base 64)"});
}

TEST_F(MalformedAdapterTest, EmptyOrMissingFolders) {
  Expect<IoError>({dir_.path(), "lora.safetensors", "adapter_config.json"});
  ExpectLoadError<IoError>([&] { model::LoadLoraAdapter(dir_.File("nope"), p_); }, {"nope"});
  WriteTensors(dir_.File("lora.safetensors"), {});
  Expect<FormatError>({"no LoRA tensors"});
  WriteFile(dir_.File("lora.safetensors"), "garbage");
  Expect<FormatError>({"lora.safetensors"});
}

TEST_F(MalformedAdapterTest, PeftProblems) {
  WriteFile(dir_.File("adapter_config.json"), R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4})");
  WriteFile(dir_.File("adapter_model.bin"), "pickle");
  Expect<Unsupported>({"adapter_model.bin", "safetensors"});
  fs::remove(dir_.File("adapter_model.bin"));
  Expect<IoError>({"adapter_model.safetensors"});
  for (const char* config :
       {R"({"r": 2, "use_dora": true})", R"({"r": 2, "bias": "all"})",
        R"({"r": 2, "peft_type": "IA3"})", R"({"r": 2, "modules_to_save": ["lm_head"]})",
        R"({"r": 2, "target_modules": ["q_proj", "lm_head"]})",
        R"({"r": 2, "rank_pattern": {"q_proj": 8}})"}) {
    WriteFile(dir_.File("adapter_config.json"), config);
    Expect<Unsupported>({"adapter_config.json"});
  }
  WriteFile(dir_.File("adapter_config.json"), R"({"lora_alpha": 16})");
  Expect<FormatError>({"adapter_config.json", "\"r\""});
  // Keys of a module target_modules does not list, and listed modules missing from the file.
  WriteFile(dir_.File("adapter_config.json"),
            R"({"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]})");
  WriteTensors(dir_.File("adapter_model.safetensors"),
               {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {2, 64}},
                {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {64, 2}}});
  Expect<FormatError>(
      {"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", "missing"});
  WriteFile(dir_.File("adapter_config.json"),
            R"({"r": 2, "lora_alpha": 4, "target_modules": ["v_proj"]})");
  Expect<FormatError>({"q_proj", "target_modules"});
}

TEST(LoraAdapterTest, SaveRefusesBadAdapters) {
  const formats::ModelParams p = SmallParams();
  TempDir dir;
  model::LoraAdapter adapter = RandomAdapter(p, 2, 2.0f, 5, 0.1f);
  adapter.layers[0].wq.a[0] = std::numeric_limits<float>::quiet_NaN();
  ExpectLoadError<InvalidArgument>([&] { model::SaveLoraAdapter(adapter, p, dir.path(), ""); },
                                   {"layers.0.attention.wq", "non-finite"});
  EXPECT_FALSE(fs::exists(dir.File("lora.safetensors")));
  formats::ModelParams other = p;
  other.n_layers = 3;
  other.layer_windows.assign(3, 0);
  EXPECT_THROW(model::SaveLoraAdapter(RandomAdapter(p, 2, 2.0f, 5, 0.1f), other, dir.path(), ""),
               InvalidArgument);
}

}  // namespace
}  // namespace bora::testing
