// GGUF files written the way llama.cpp's converter writes them, from the reference models'
// Mistral-native weights (bit-identical tensors): the `mistral3` architecture (YaRN,
// yarn_log_multiplier, temperature_scale, tied output) and Mixtral in both expert layouts pass
// Mistral's goldens; `llama.attention.sliding_window` windows the attention as params.json's
// sliding_window does.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>

#include "formats/gguf_writer.h"
#include "formats/model_folder.h"
#include "kernels/quant/ggml_blocks.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;
using kernels::GgmlType;

struct Layout {
  std::string arch = "llama";
  bool stacked_experts = true;  // ffn_*_exps [cols, rows, experts]; else blk.N.ffn_*.E.weight
  std::function<void(formats::GgufWriter&, const std::string& arch)> extra_keys;
};

uint32_t TypeOf(const formats::TensorView& view) {
  switch (view.dtype) {
    case DType::kBF16: return static_cast<uint32_t>(GgmlType::kBF16);
    case DType::kF16: return static_cast<uint32_t>(GgmlType::kF16);
    default: return static_cast<uint32_t>(GgmlType::kF32);
  }
}

// Writes `native_dir` (params.json + consolidated.safetensors) as a GGUF at `path`.
void WriteGguf(const std::string& native_dir, const std::string& path, const Layout& layout) {
  const formats::ModelFolder folder = formats::InspectModelFolder(native_dir);
  const formats::ModelParams& p = folder.params;
  const formats::SafetensorsFile file = formats::SafetensorsFile::Open(native_dir + "/consolidated.safetensors");
  formats::GgufWriter w;
  const std::string a = layout.arch + ".";
  w.AddString("general.architecture", layout.arch);
  w.AddString("general.name", "converted");
  w.AddU32(a + "context_length", static_cast<uint32_t>(p.max_positions.value_or(4096)));
  w.AddU32(a + "embedding_length", static_cast<uint32_t>(p.dim));
  w.AddU32(a + "block_count", static_cast<uint32_t>(p.n_layers));
  w.AddU32(a + "feed_forward_length", static_cast<uint32_t>(p.hidden_dim));
  w.AddU32(a + "attention.head_count", static_cast<uint32_t>(p.n_heads));
  w.AddU32(a + "attention.head_count_kv", static_cast<uint32_t>(p.n_kv_heads));
  w.AddU32(a + "attention.key_length", static_cast<uint32_t>(p.head_dim));
  w.AddU32(a + "attention.value_length", static_cast<uint32_t>(p.head_dim));
  w.AddU32(a + "rope.dimension_count", static_cast<uint32_t>(p.head_dim));
  w.AddF32(a + "rope.freq_base", static_cast<float>(p.rope_theta));
  w.AddF32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(p.norm_eps));
  w.AddU32(a + "vocab_size", static_cast<uint32_t>(p.vocab_size));
  w.AddU32("general.file_type", 32);
  if (p.moe) {
    w.AddU32(a + "expert_count", static_cast<uint32_t>(p.moe->num_experts));
    w.AddU32(a + "expert_used_count", static_cast<uint32_t>(p.moe->num_experts_per_tok));
  }
  if (layout.extra_keys) layout.extra_keys(w, layout.arch);

  static const std::pair<const char*, const char*> kNames[] = {
      {"attention_norm.weight", "attn_norm.weight"}, {"ffn_norm.weight", "ffn_norm.weight"},
      {"attention.wq.weight", "attn_q.weight"},      {"attention.wk.weight", "attn_k.weight"},
      {"attention.wv.weight", "attn_v.weight"},      {"attention.wo.weight", "attn_output.weight"},
      {"feed_forward.w1.weight", "ffn_gate.weight"}, {"feed_forward.w2.weight", "ffn_down.weight"},
      {"feed_forward.w3.weight", "ffn_up.weight"},   {"feed_forward.gate.weight", "ffn_gate_inp.weight"}};
  auto add = [&](const std::string& gguf_name, const formats::TensorView& view) {
    std::vector<int64_t> ne(view.info->shape.rbegin(), view.info->shape.rend());
    w.AddTensor(gguf_name, ne, TypeOf(view), view.bytes);
  };
  static const std::regex kLayer(R"(layers\.(\d+)\.(.+))");
  static const std::regex kExpert(R"(feed_forward\.experts\.(\d+)\.(w[123])\.weight)");
  std::map<std::string, std::vector<uint8_t>> stacked;  // "blk.N.ffn_gate_exps.weight" -> slabs
  std::map<std::string, std::vector<int64_t>> stacked_ne;
  std::map<std::string, uint32_t> stacked_type;
  for (const formats::TensorInfo& info : file.header().tensors) {
    const formats::TensorView view = file.View(info);
    std::smatch match;
    if (info.name == "tok_embeddings.weight") {
      add("token_embd.weight", view);
    } else if (info.name == "norm.weight") {
      add("output_norm.weight", view);
    } else if (info.name == "output.weight") {
      add("output.weight", view);
    } else if (std::regex_match(info.name, match, kLayer)) {
      const std::string blk = "blk." + match[1].str() + ".";
      const std::string rest = match[2].str();
      std::smatch expert;
      if (std::regex_match(rest, expert, kExpert)) {
        const std::string part = expert[2] == "w1" ? "ffn_gate" : expert[2] == "w2" ? "ffn_down" : "ffn_up";
        if (!layout.stacked_experts) {
          add(blk + part + "." + expert[1].str() + ".weight", view);
        } else {
          // Experts are in file order 0..E-1 (names sort numerically below 10 experts).
          const std::string name = blk + part + "_exps.weight";
          auto& bytes = stacked[name];
          bytes.insert(bytes.end(), view.bytes.begin(), view.bytes.end());
          stacked_ne[name] = {view.info->shape[1], view.info->shape[0], p.moe->num_experts};
          stacked_type[name] = TypeOf(view);
        }
        continue;
      }
      bool mapped = false;
      for (const auto& [native, gguf] : kNames) {
        if (rest == native) {
          add(blk + gguf, view);
          mapped = true;
        }
      }
      ASSERT_TRUE(mapped) << info.name;
    } else {
      FAIL() << "unexpected tensor " << info.name;
    }
  }
  for (const auto& [name, bytes] : stacked) w.AddTensor(name, stacked_ne[name], stacked_type[name], bytes);
  w.Write(path);
}

void ExpectGoldens(const std::string& gguf, const std::string& golden_dir) {
  model::LoadOptions options;
  options.threads = 2;
  options.context = 512;
  options.dtype = DType::kF32;
  auto engine = model::LoadModel(gguf, options);
  const model::GoldenSet golden = model::ReadGoldenSet(golden_dir);
  for (const model::GoldenCase& golden_case : golden.cases) {
    const model::GoldenCaseResult result = model::RunGoldenCase(*engine, golden_case);
    EXPECT_TRUE(result.passed()) << golden_case.name << ": max abs " << result.max_abs_diff << ", greedy mismatch at "
                                 << result.first_greedy_mismatch;
  }
}

TEST(GgufConvertedTest, Ministral3ArchitecturePassesTheGoldens) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-ministral3";
  TempDir dir;
  Layout layout;
  layout.arch = "mistral3";
  // What llama.cpp's converter writes for Ministral3ForCausalLM: rope_parameters' yarn fields,
  // mscale_all_dim as yarn_log_multiplier, llama_4_scaling_beta as temperature_scale.
  layout.extra_keys = [](formats::GgufWriter& w, const std::string& arch) {
    w.AddString(arch + ".rope.scaling.type", "yarn");
    w.AddF32(arch + ".rope.scaling.factor", 16.0f);
    w.AddU32(arch + ".rope.scaling.original_context_length", 32);
    w.AddF32(arch + ".rope.scaling.yarn_beta_fast", 32.0f);
    w.AddF32(arch + ".rope.scaling.yarn_beta_slow", 1.0f);
    w.AddF32(arch + ".rope.scaling.yarn_log_multiplier", 1.0f);
    w.AddF32(arch + ".attention.temperature_scale", 0.1f);
  };
  WriteGguf(ref + "/mistral", dir.File("ministral3.gguf"), layout);
  const formats::ModelFolder folder = formats::InspectModelFolder(dir.File("ministral3.gguf"));
  EXPECT_TRUE(folder.params.tie_embeddings);
  ASSERT_TRUE(folder.params.yarn && folder.params.llama4_scaling);
  EXPECT_EQ(folder.params.yarn->attention_factor, 1.0);
  EXPECT_EQ(folder.params.llama4_scaling->original_max_positions, 32);
  ExpectGoldens(dir.File("ministral3.gguf"), ref + "/golden");
}

TEST(GgufConvertedTest, MixtralInBothExpertLayoutsPassesTheGoldens) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-moe";
  TempDir dir;
  for (bool stacked : {true, false}) {
    SCOPED_TRACE(stacked ? "ffn_*_exps" : "per-expert tensors");
    Layout layout;
    layout.stacked_experts = stacked;
    const std::string path = dir.File(stacked ? "stacked.gguf" : "per_expert.gguf");
    WriteGguf(ref + "/mistral", path, layout);
    ExpectGoldens(path, ref + "/golden");
  }
}

TEST(GgufConvertedTest, SlidingWindowKeyWindowsTheAttention) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-dense/mistral";
  TempDir dir;
  // The same model as a folder whose params.json has a sliding window of 5.
  fs::create_directories(dir.File("swa"));
  fs::copy_file(ref + "/consolidated.safetensors", dir.File("swa/consolidated.safetensors"));
  formats::ModelParams params = formats::InspectModelFolder(ref).params;
  params.layer_windows.assign(static_cast<size_t>(params.n_layers), 5);
  WriteFile(dir.File("swa/params.json"), formats::MistralParamsJson(params));
  Layout layout;
  layout.extra_keys = [](formats::GgufWriter& w, const std::string& arch) {
    w.AddU32(arch + ".attention.sliding_window", 5);
  };
  WriteGguf(ref, dir.File("swa.gguf"), layout);
  EXPECT_EQ(formats::InspectModelFolder(dir.File("swa.gguf")).params.layer_windows,
            std::vector<int64_t>(static_cast<size_t>(params.n_layers), 5));

  model::LoadOptions options;
  options.threads = 2;
  options.context = 64;
  options.dtype = DType::kF32;
  auto from_gguf = model::LoadModel(dir.File("swa.gguf"), options);
  auto from_folder = model::LoadModel(dir.File("swa"), options);
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 24; ++i) prompt.push_back(1 + (i * 37) % 4000);
  const size_t vocab = static_cast<size_t>(params.vocab_size);
  std::vector<float> a(prompt.size() * vocab), b(prompt.size() * vocab), full(prompt.size() * vocab);
  model::ContiguousKvCache cache_a = from_gguf->NewCache(), cache_b = from_folder->NewCache();
  from_gguf->Forward(prompt, cache_a, a, true);
  from_folder->Forward(prompt, cache_b, b, true);
  EXPECT_EQ(a, b);
  // And the window matters: without it the late rows differ.
  auto unwindowed = model::LoadModel(ref, options);
  model::ContiguousKvCache cache_c = unwindowed->NewCache();
  unwindowed->Forward(prompt, cache_c, full, true);
  EXPECT_NE(std::vector<float>(a.end() - vocab, a.end()), std::vector<float>(full.end() - vocab, full.end()));
}

}  // namespace
}  // namespace bora::testing
