// LoRA in the forward pass, on the shared reference models (dense and MoE): B = 0 gives the
// golden logits exactly, a merged folder (library and `bora merge-lora`) matches live
// application within f32 tolerance, a PEFT copy of an adapter gives the same logits, and a
// batch mixing two adapters and none gives every item its logits alone.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/model_folder.h"
#include "formats/safetensors.h"
#include "kernels/activation.h"
#include "model/golden.h"
#include "model/lora_adapter.h"
#include "model/lora_merge.h"
#include "model/lora_test_util.h"
#include "model/model_test_util.h"
#include "model/model_writer.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<model::Transformer> Load(const std::string& dir, int64_t context = 128) {
  model::LoadOptions options;
  options.threads = 2;
  options.context = context;
  return model::LoadModel(dir, options);
}

class LoraReferenceTest : public ::testing::TestWithParam<const char*> {
 protected:
  std::string Reference(const std::string& shared) const {
    return shared + "/reference-models/" + GetParam();
  }
};

TEST_P(LoraReferenceTest, ZeroBGivesTheGoldenLogitsExactly) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = Reference(shared);
  const model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
  auto model = Load(ref + "/mistral");
  const model::LoraAdapter zero_b = RandomAdapter(model->params(), 8, 2.0f, 17, 0.0f);
  const int64_t vocab = golden.vocab_size;
  for (const model::GoldenCase& c : golden.cases) {
    // Prefill: every position, bit-identical to the base model and within the golden tolerance.
    const std::vector<float> base = PromptLogits(*model, c.prompt_tokens, nullptr);
    const std::vector<float> with = PromptLogits(*model, c.prompt_tokens, &zero_b);
    EXPECT_EQ(with, base) << c.name;
    EXPECT_LE(MaxAbsDifference(with, c.prefill_logits), model::kGoldenTolerance) << c.name;
    // Decode through the KV cache with the adapter, fed the golden greedy tokens.
    model::ContiguousKvCache cache = model->NewCache();
    std::vector<float> row(static_cast<size_t>(vocab));
    model->Forward(c.prompt_tokens, cache, row, false, &zero_b);
    EXPECT_EQ(kernels::ArgMax(row.data(), vocab), c.greedy_tokens[0]) << c.name;
    double worst = 0;
    for (size_t i = 0; i < c.greedy_tokens.size(); ++i) {
      model->Forward(std::span<const int32_t>(&c.greedy_tokens[i], 1), cache, row, false, &zero_b);
      for (int64_t v = 0; v < vocab; ++v) {
        worst = std::max(worst,
                         static_cast<double>(std::fabs(row[v] - c.decode_logits[i * vocab + v])));
      }
    }
    EXPECT_LE(worst, model::kGoldenTolerance) << c.name;
  }
}

TEST_P(LoraReferenceTest, MergedFolderMatchesLiveApplication) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = Reference(shared);
  const model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
  auto base = Load(ref + "/mistral");
  const model::LoraAdapter adapter = RandomAdapter(base->params(), 8, 2.0f, 23, 0.05f, true);
  const std::vector<int32_t>& prompt = golden.cases.back().prompt_tokens;  // 64 tokens
  const std::vector<float> plain = PromptLogits(*base, prompt, nullptr);
  const std::vector<float> live = PromptLogits(*base, prompt, &adapter);
  // The adapter matters: far beyond the tolerance below.
  EXPECT_GT(MaxAbsDifference(live, plain), 0.05);

  // Library: merge into the dense weights in f32, write, load, compare.
  TempDir dir;
  {
    const formats::ModelFolder folder = formats::InspectModelFolder(ref + "/mistral");
    model::ModelWeights weights = model::LoadModelWeights(folder);
    ops::ComputeContext ctx(2);
    model::MergeLora(adapter, folder.params, weights, DType::kF32, ctx);
    model::WriteModelFolder(weights, folder.params, dir.path() + "/merged");
  }
  const std::vector<float> merged = PromptLogits(*Load(dir.path() + "/merged"), prompt, nullptr);
  EXPECT_LE(MaxAbsDifference(merged, live), 1e-4);

  // `bora merge-lora` on the saved adapter (bf16 on disk: the values are bf16 already), from
  // the Hugging Face layout of the same base.
  model::SaveLoraAdapter(adapter, base->params(), dir.path() + "/adapter", "");
  const std::string command = std::string(BORA_BINARY) + " merge-lora --model " + ref +
                              "/hf --lora " + dir.path() + "/adapter --out " + dir.path() +
                              "/cli --dtype f32 -t 2 > " + dir.path() + "/merge.log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_TRUE(fs::exists(dir.path() + "/cli/consolidated.safetensors"));
  std::ifstream params_in(dir.path() + "/cli/params.json");
  const nlohmann::json params = nlohmann::json::parse(params_in);
  EXPECT_FALSE(params.contains("lora"));
  const formats::SafetensorsFile file =
      formats::SafetensorsFile::Open(dir.path() + "/cli/consolidated.safetensors");
  for (const auto& info : file.header().tensors) {
    EXPECT_EQ(info.name.find("lora"), std::string::npos) << info.name;
    if (info.shape.size() == 2) {
      EXPECT_EQ(info.dtype_name, "F32") << info.name;
    }
  }
  const std::vector<float> cli = PromptLogits(*Load(dir.path() + "/cli"), prompt, nullptr);
  EXPECT_LE(MaxAbsDifference(cli, live), 1e-4);

  // bf16 output: the merged weights rounded once more, so only close.
  const std::string bf16 = std::string(BORA_BINARY) + " merge-lora --model " + ref +
                           "/mistral --lora " + dir.path() + "/adapter --out " + dir.path() +
                           "/bf16 -t 2 > /dev/null 2>&1";
  ASSERT_EQ(std::system(bf16.c_str()), 0);
  const formats::SafetensorsFile bf16_file =
      formats::SafetensorsFile::Open(dir.path() + "/bf16/consolidated.safetensors");
  EXPECT_EQ(bf16_file.Find("layers.0.attention.wq.weight")->dtype_name, "BF16");
  const std::vector<float> rounded = PromptLogits(*Load(dir.path() + "/bf16"), prompt, nullptr);
  EXPECT_LT(MaxAbsDifference(rounded, live), MaxAbsDifference(live, plain));
}

TEST_P(LoraReferenceTest, PeftCopyGivesTheSameLogits) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = Reference(shared);
  const model::GoldenSet golden = model::ReadGoldenSet(ref + "/golden");
  auto native = Load(ref + "/mistral");
  auto hf = Load(ref + "/hf");
  const formats::ModelParams& p = native->params();
  const model::LoraAdapter adapter = RandomAdapter(p, 4, 2.0f, 31, 0.05f);
  TempDir dir;
  WritePeftAdapter(adapter, p, dir.path() + "/peft");
  WritePeftAdapter(adapter, p, dir.path() + "/unpermuted", /*permute=*/false);
  const model::LoraAdapter peft = model::LoadLoraAdapter(dir.path() + "/peft", p);
  const model::LoraAdapter wrong = model::LoadLoraAdapter(dir.path() + "/unpermuted", p);
  const std::vector<int32_t>& prompt = golden.cases.back().prompt_tokens;
  const std::vector<float> original = PromptLogits(*native, prompt, &adapter);
  EXPECT_EQ(PromptLogits(*native, prompt, &peft), original);
  // An HF base with the PEFT adapter: the HF layout's own small difference only.
  EXPECT_LE(MaxAbsDifference(PromptLogits(*hf, prompt, &peft), original), 1e-5);
  // Without un-permuting q/k's B rows the logits are visibly off.
  EXPECT_GT(MaxAbsDifference(PromptLogits(*native, prompt, &wrong), original), 1e-3);
}

TEST_P(LoraReferenceTest, BatchMixingAdaptersGivesEachItemItsLogitsAlone) {
  BORA_REQUIRE_SHARED(shared);
  auto model = Load(Reference(shared) + "/mistral");
  const formats::ModelParams& p = model->params();
  const model::LoraAdapter first = RandomAdapter(p, 8, 2.0f, 41, 0.05f);
  const model::LoraAdapter second = RandomAdapter(p, 4, 1.0f, 43, 0.08f);
  const model::LoraAdapter* adapters[] = {&first, nullptr, &second, &first};
  const std::vector<std::vector<int32_t>> prompts = {
      RandomTokens(9, p.vocab_size, 1), RandomTokens(5, p.vocab_size, 2),
      RandomTokens(12, p.vocab_size, 3), RandomTokens(1, p.vocab_size, 4)};
  const int steps = 4;
  const int64_t vocab = p.vocab_size;
  // Alone: the prompt's last row, then greedy decode steps.
  std::vector<std::vector<std::vector<float>>> alone(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    model::ContiguousKvCache cache = model->NewCache();
    std::vector<float> row(static_cast<size_t>(vocab));
    model->Forward(prompts[i], cache, row, false, adapters[i]);
    alone[i].push_back(row);
    for (int s = 0; s < steps; ++s) {
      const int32_t next = static_cast<int32_t>(kernels::ArgMax(row.data(), vocab));
      model->Forward(std::span<const int32_t>(&next, 1), cache, row, false, adapters[i]);
      alone[i].push_back(row);
    }
  }
  // Together: item 3 joins one step late, so its prefill shares a batch with decode steps.
  std::vector<model::ContiguousKvCache> caches;
  for (size_t i = 0; i < prompts.size(); ++i) caches.push_back(model->NewCache());
  std::vector<std::vector<std::vector<float>>> together(prompts.size());
  std::vector<int32_t> next(prompts.size());
  for (int step = 0; step <= steps + 1; ++step) {
    std::vector<model::BatchItem> items;
    std::vector<size_t> owners;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const int join = i == 3 ? 1 : 0;
      const int done = static_cast<int>(together[i].size());
      if (step < join || done > steps) continue;
      together[i].emplace_back(static_cast<size_t>(vocab));
      model::BatchItem item;
      item.cache = &caches[i];
      item.logits = together[i].back();
      item.tokens =
          done == 0 ? std::span<const int32_t>(prompts[i]) : std::span<const int32_t>(&next[i], 1);
      item.lora = adapters[i];
      items.push_back(item);
      owners.push_back(i);
    }
    if (items.empty()) break;
    model->ForwardBatch(items);
    for (size_t i : owners) {
      next[i] = static_cast<int32_t>(kernels::ArgMax(together[i].back().data(), vocab));
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(together[i].size(), alone[i].size()) << i;
    for (size_t s = 0; s < alone[i].size(); ++s)
      EXPECT_EQ(together[i][s], alone[i][s]) << "item " << i << " step " << s;
  }
  // The adapters make a difference (the comparison above can fail).
  EXPECT_NE(alone[0][0], alone[1][0]);
  std::vector<float> base_first(static_cast<size_t>(vocab));
  model::ContiguousKvCache cache = model->NewCache();
  model->Forward(prompts[0], cache, base_first, false);
  EXPECT_GT(MaxAbsDifference(base_first, alone[0][0]), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(DenseAndMoe, LoraReferenceTest,
                         ::testing::Values("tiny-dense", "tiny-moe", "tiny-ministral3"), [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(LoraForwardTest, MismatchedAdapterIsATypedError) {
  TempDir dir;
  MakeModel(SmallParams(), 5, dir.path());
  auto model = Load(dir.path());
  formats::ModelParams other = SmallParams();
  other.hidden_dim = 96;
  const model::LoraAdapter adapter = RandomAdapter(other, 2, 2.0f, 1, 0.1f);
  const std::vector<int32_t> tokens = {1, 2, 3};
  model::ContiguousKvCache cache = model->NewCache();
  std::vector<float> logits(static_cast<size_t>(model->params().vocab_size));
  EXPECT_THROW(model->Forward(tokens, cache, logits, false, &adapter), InvalidArgument);
}

}  // namespace
}  // namespace bora::testing
