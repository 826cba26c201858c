// End-to-end fine-tuning on a tiny random model with the SentencePiece v3 tokenizer and the
// seeded synthetic instruct set: held-out loss falls below half its initial value in 100 steps,
// an interrupted run resumed from its checkpoint follows the uninterrupted curve exactly, and
// the saved adapter loads in mistral-finetune's layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "formats/model_folder.h"
#include "model/lora_adapter.h"
#include "model/lora_merge.h"
#include "model/model_writer.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "ops/compute_context.h"
#include "model/random_model.h"
#include "testdata.h"
#include "train/data/synthetic_dataset.h"
#include "train/tuner.h"

namespace bora::train {
namespace {

namespace fs = std::filesystem;

// Stops the run once `stop_after` steps are done (an interruption).
class StopAfter : public TuneObserver {
 public:
  explicit StopAfter(int64_t stop_after) : stop_after_(stop_after) {}
  void OnStep(const StepReport& report) override { done_ = report.step; }
  bool ShouldStop() override { return stop_after_ > 0 && done_ >= stop_after_; }

 private:
  int64_t stop_after_;
  int64_t done_ = 0;
};

std::vector<std::string> StepLines(const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    // tokens_per_s is a timing: drop it before comparing runs.
    const size_t at = line.find(",\"tokens_per_s\"");
    if (at != std::string::npos) line = line.substr(0, at) + "}";
    lines.push_back(line);
  }
  return lines;
}

TEST(TuneTest, LossFallsAndResumeFollowsTheSameCurve) {
  BORA_REQUIRE_SHARED(shared);
  testing::TempDir dir;
  const std::string model_dir = dir.File("model");
  {
    ThreadPool pool(2);
    model::WriteRandomModel(model::PresetParams("tiny"), 1, model_dir, pool, false);
  }
  fs::copy_file(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3",
                model_dir + "/tokenizer.model.v3");
  WriteSyntheticDataset(dir.File("train.jsonl"), SyntheticKind::kInstruct, 400, 1);
  WriteSyntheticDataset(dir.File("eval.jsonl"), SyntheticKind::kInstruct, 50, 2);

  TuneOptions options;
  options.model_dir = model_dir;
  options.data.data = dir.File("train.jsonl");
  options.data.eval = dir.File("eval.jsonl");
  options.data.seq_len = 256;
  options.steps = 100;
  options.lr = 1e-3;
  options.ckpt_every = 50;
  options.eval_every = 50;
  options.threads = 2;
  options.seed = 3;

  options.out_dir = dir.File("full");
  TuneObserver quiet;
  const TuneResult full = RunTune(options, quiet);
  ASSERT_TRUE(full.first_eval_loss && full.last_eval_loss);
  EXPECT_GT(*full.first_eval_loss, 8.0);  // a random model: about ln(32768) = 10.4
  EXPECT_LT(*full.last_eval_loss, 0.5 * *full.first_eval_loss)
      << "eval loss " << *full.first_eval_loss << " -> " << *full.last_eval_loss;

  // The same run interrupted after step 60 (last checkpoint: 50), then resumed.
  options.out_dir = dir.File("resumed");
  StopAfter interrupt(60);
  const TuneResult first = RunTune(options, interrupt);
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.steps_done, 60);
  options.resume = true;
  RunTune(options, quiet);
  EXPECT_EQ(StepLines(dir.File("full/metrics.jsonl")),
            StepLines(dir.File("resumed/metrics.jsonl")));

  // The final adapter: mistral-finetune's layout, loadable, trained (B no longer zero).
  const std::string consolidated = CheckpointDir(dir.File("full"), 100) + "/consolidated";
  EXPECT_TRUE(fs::exists(consolidated + "/lora.safetensors"));
  EXPECT_TRUE(fs::exists(consolidated + "/params.json"));
  EXPECT_TRUE(fs::exists(consolidated + "/mistral_instruct_tokenizer_240323.model.v3") ||
              fs::exists(consolidated + "/tokenizer.model.v3"));
  const model::LoraAdapter adapter =
      model::LoadLoraAdapter(consolidated, model::PresetParams("tiny"));
  EXPECT_EQ(adapter.rank, 16);
  EXPECT_EQ(adapter.instruct_version, "v3");
  double b_norm = 0;
  adapter.ForEachMatrix([&](const model::LoraMatrix& m, const std::string&) {
    for (float v : m.b) b_norm += static_cast<double>(v) * v;
  });
  EXPECT_GT(b_norm, 0.0);
}

formats::ModelParams OneLayerParams() {
  formats::ModelParams params = model::PresetParams("tiny");
  params.n_layers = 1;
  params.layer_windows.assign(1, 0);
  return params;
}

// A one-layer tiny model with the v3 tokenizer and 20 synthetic instruct records in `dir`; the
// options of a short rank-4 run on it, writing to DIR/run.
TuneOptions OneLayerRun(const std::string& shared, const testing::TempDir& dir,
                        const formats::ModelParams& params = OneLayerParams()) {
  const std::string model_dir = dir.File("model");
  {
    ThreadPool pool(2);
    model::WriteRandomModel(params, 1, model_dir, pool, false);
  }
  fs::copy_file(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3",
                model_dir + "/tokenizer.model.v3");
  WriteSyntheticDataset(dir.File("train.jsonl"), SyntheticKind::kInstruct, 20, 1);
  TuneOptions options;
  options.model_dir = model_dir;
  options.data.data = dir.File("train.jsonl");
  options.data.seq_len = 64;
  options.steps = 2;
  options.rank = 4;
  options.threads = 2;
  options.out_dir = dir.File("run");
  return options;
}

TEST(TuneTest, ResumeWithOtherSettingsIsRefused) {
  BORA_REQUIRE_SHARED(shared);
  testing::TempDir dir;
  TuneOptions options = OneLayerRun(shared, dir);
  TuneObserver quiet;
  RunTune(options, quiet);
  options.resume = true;
  options.rank = 8;
  EXPECT_THROW(RunTune(options, quiet), InvalidArgument);
}

TEST(TuneTest, NonFiniteStepsAreSkippedAndThreeInARowStopTheRun) {
  BORA_REQUIRE_SHARED(shared);
  testing::TempDir dir;
  TuneOptions options = OneLayerRun(shared, dir);
  options.steps = 20;
  options.ckpt_every = 1;
  // Once B is non-zero, a LoRA delta scaled by 1e30 overflows float: the loss turns NaN.
  options.scaling = 1e30f;
  TuneObserver quiet;
  try {
    RunTune(options, quiet);
    FAIL() << "a diverging run finished";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("not finite at 3 steps in a row"), std::string::npos)
        << error.what();
  }
  // Every checkpoint written holds a finite adapter (skipped steps change nothing), and the
  // run stopped after the third bad step rather than the first.
  int checkpoints = 0;
  for (int64_t step = 1; step <= options.steps; ++step) {
    const std::string consolidated = CheckpointDir(options.out_dir, step) + "/consolidated";
    if (!fs::exists(consolidated + "/lora.safetensors")) continue;
    ++checkpoints;
    EXPECT_NO_THROW(model::LoadLoraAdapter(consolidated, OneLayerParams())) << step;
  }
  EXPECT_GE(checkpoints, 3);
  EXPECT_LT(checkpoints, options.steps);
}

// A Mistral 3-style model (YaRN with its attention factor, llama-4 temperature, an original
// context of 16 so that the 64-token blocks cross it): a LoRA tuned on it and applied live gives
// the logits of the model it is merged into.
TEST(TuneTest, Mistral3TunedAdapterLiveEqualsMerged) {
  BORA_REQUIRE_SHARED(shared);
  testing::TempDir dir;
  formats::ModelParams params = OneLayerParams();
  params.yarn = formats::YarnParams{4.0, 16, 32.0, 1.0, true, 0.1 * std::log(4.0) + 1.0};
  params.llama4_scaling = formats::Llama4Scaling{0.2, 16};
  TuneOptions options = OneLayerRun(shared, dir, params);
  options.steps = 4;
  options.lr = 1e-2;
  const std::string model_dir = options.model_dir;
  TuneObserver quiet;
  RunTune(options, quiet);
  const formats::ModelFolder folder = formats::InspectModelFolder(model_dir);
  ASSERT_TRUE(folder.params.yarn && folder.params.llama4_scaling);
  const model::LoraAdapter adapter =
      model::LoadLoraAdapter(CheckpointDir(options.out_dir, 4) + "/consolidated", folder.params);

  model::LoadOptions load;
  load.threads = 2;
  load.context = 80;
  load.dtype = DType::kF32;
  std::vector<int32_t> prompt;
  for (int32_t t = 0; t < 70; ++t) prompt.push_back(1 + (t * 7919) % 30000);  // crosses 16, 32, 48, 64
  const int64_t vocab = params.vocab_size;
  auto logits_of = [&](const std::string& dir_path, const model::LoraAdapter* lora) {
    auto engine = model::LoadModel(dir_path, load);
    auto cache = engine->NewCache();
    std::vector<float> logits(prompt.size() * vocab);
    engine->Forward(prompt, cache, logits, true, lora);
    return logits;
  };
  const std::vector<float> plain = logits_of(model_dir, nullptr);
  const std::vector<float> live = logits_of(model_dir, &adapter);
  {
    model::ModelWeights weights = model::LoadModelWeights(folder);
    ops::ComputeContext ctx(2);
    model::MergeLora(adapter, folder.params, weights, DType::kF32, ctx);
    model::WriteModelFolder(weights, folder.params, dir.File("merged"));
  }
  const std::vector<float> merged = logits_of(dir.File("merged"), nullptr);
  double tuned = 0, difference = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    tuned = std::max(tuned, static_cast<double>(std::fabs(live[i] - plain[i])));
    difference = std::max(difference, static_cast<double>(std::fabs(live[i] - merged[i])));
  }
  EXPECT_GT(tuned, 1e-3);  // the tuned adapter changes the model
  EXPECT_LE(difference, 1e-4);
}

}  // namespace
}  // namespace bora::train
