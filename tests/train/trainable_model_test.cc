// Gradient checks of the LoRA trainer's explicit backward against central finite differences of
// the whole model's masked loss (dense and MoE, GQA, two attention blocks, partial masks), and
// the training forward against the inference forward.
#include "train/trainable_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "model/random_model.h"
#include "model/transformer.h"
#include "testdata.h"
#include "train/optimizer.h"

namespace bora::train {
namespace {

formats::ModelParams TinyParams(bool moe, bool mistral3 = false) {
  formats::ModelParams p;
  p.dim = 64, p.n_layers = 2, p.n_heads = 4, p.n_kv_heads = 2, p.head_dim = 16, p.hidden_dim = 96;
  p.vocab_size = 320;
  p.norm_eps = 1e-5;
  p.rope_theta = 1e4;
  p.layer_windows.assign(p.n_layers, 0);
  if (moe) p.moe = formats::MoeParams{4, 2};
  if (mistral3) {
    // YaRN with its attention factor and the llama-4 temperature, with an original context of
    // 4 positions so that every block crosses several temperature steps.
    p.yarn = formats::YarnParams{8.0, 4, 32.0, 1.0, true, 0.1 * std::log(8.0) + 1.0};
    p.llama4_scaling = formats::Llama4Scaling{0.3, 4};
  }
  return p;
}

std::unique_ptr<TrainableModel> TinyModel(const testing::TempDir& dir, bool moe,
                                          int64_t max_positions = 64, bool mistral3 = false) {
  ThreadPool pool(2);
  model::WriteRandomModel(TinyParams(moe, mistral3), 7, dir.path(), pool, /*show_progress=*/false);
  TrainModelOptions options;
  options.threads = 2;
  options.dtype = DType::kF32;
  options.max_positions = max_positions;
  return LoadTrainableModel(dir.path(), options);
}

// Two blocks (positions restart), some targets not trained on: 8 + 5 rows, or with `long_blocks`
// 150 + 20 rows (the first spans several causal attention tiles).
TrainingBatch TinyBatch(int64_t vocab, bool long_blocks = false) {
  std::mt19937 rng(3);
  TrainingBatch batch;
  const int64_t rows = long_blocks ? 170 : 13, second = long_blocks ? 150 : 8;
  for (int64_t t = 0; t < rows; ++t) {
    batch.inputs.push_back(static_cast<int32_t>(rng() % vocab));
    batch.targets.push_back(static_cast<int32_t>(rng() % vocab));
    batch.mask.push_back(t % 4 == 1 ? 0 : 1);
    batch.positions.push_back(static_cast<int32_t>(t < second ? t : t - second));
  }
  batch.block_starts = {0, static_cast<int32_t>(second)};
  return batch;
}

model::LoraAdapter RandomAdapter(const formats::ModelParams& p, uint32_t seed) {
  model::LoraAdapter lora = model::NewLoraAdapter(p, 4, 2.0f);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  lora.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    for (float& v : m.a) v = normal(rng);
    for (float& v : m.b) v = normal(rng);
  });
  return lora;
}

double Loss(TrainableModel& model, const model::LoraAdapter& lora, const TrainingBatch& batch) {
  return model.Run(lora, batch, nullptr, 1.0, 0).loss_sum;
}

// Compares analytic and numerical gradients on a sample of every adapted matrix's entries.
void CheckGradients(bool moe, bool long_blocks = false, bool mistral3 = false) {
  testing::TempDir dir;
  auto model = TinyModel(dir, moe, long_blocks ? 256 : 64, mistral3);
  const TrainingBatch batch = TinyBatch(model->params().vocab_size, long_blocks);
  model::LoraAdapter lora = RandomAdapter(model->params(), 11);
  model::LoraAdapter grads = model::NewLoraAdapter(model->params(), 4, 2.0f);
  model->Run(lora, batch, &grads, 1.0, 0);

  std::vector<std::pair<float*, float>> samples;  // parameter, analytic gradient
  std::vector<model::LoraMatrix*> grad_matrices;
  grads.ForEachMatrix(
      [&](model::LoraMatrix& m, const std::string&) { grad_matrices.push_back(&m); });
  size_t index = 0;
  std::mt19937 rng(5);
  lora.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    model::LoraMatrix& g = *grad_matrices[index++];
    for (int i = 0; i < 3; ++i) {
      const size_t a = rng() % m.a.size(), b = rng() % m.b.size();
      samples.emplace_back(&m.a[a], g.a[a]);
      samples.emplace_back(&m.b[b], g.b[b]);
    }
  });
  double diff_squares = 0, grad_squares = 0, worst = 0;
  for (auto& [param, analytic] : samples) {
    const float saved = *param;
    const float eps = 1e-2f;
    *param = saved + eps;
    const double up = Loss(*model, lora, batch);
    *param = saved - eps;
    const double down = Loss(*model, lora, batch);
    *param = saved;
    const double numeric = (up - down) / (2.0 * eps);
    diff_squares += (numeric - analytic) * (numeric - analytic);
    grad_squares += numeric * numeric;
    worst = std::max(worst, std::abs(numeric - analytic));
  }
  ASSERT_GT(grad_squares, 0.0);
  const double relative = std::sqrt(diff_squares / grad_squares);
  EXPECT_LT(relative, 1e-2) << "worst absolute difference " << worst << " over " << samples.size()
                            << " parameters";
}

TEST(TrainableModelTest, DenseGradientsMatchFiniteDifferences) { CheckGradients(false); }

TEST(TrainableModelTest, MoeGradientsMatchFiniteDifferences) { CheckGradients(true); }

// YaRN frequencies and magnitude, and the llama-4 query temperature in forward and backward.
TEST(TrainableModelTest, Mistral3GradientsMatchFiniteDifferences) {
  CheckGradients(false, /*long_blocks=*/false, /*mistral3=*/true);
}

// A 150-token block: attention's causal tiles (64 rows) and their transposed products.
TEST(TrainableModelTest, LongBlockGradientsMatchFiniteDifferences) {
  CheckGradients(false, /*long_blocks=*/true);
}

// With B = 0 the adapter changes nothing: the training forward's loss equals the cross-entropy
// of the inference engine's logits, block by block (each block a fresh sequence).
// Cross-entropy of the inference engine's logits for `batch`, block by block (8 + 5 rows).
double InferenceLoss(const std::string& dir, const TrainingBatch& batch, int64_t* count_out) {
  model::LoadOptions options;
  options.threads = 2;
  options.dtype = DType::kF32;
  options.context = 64;
  auto inference = model::LoadModel(dir, options);
  const int64_t vocab = inference->params().vocab_size;
  double loss = 0;
  int64_t count = 0, start = 0;
  for (int64_t end : {int64_t{8}, int64_t{13}}) {
    std::vector<int32_t> tokens(batch.inputs.begin() + start, batch.inputs.begin() + end);
    auto cache = inference->NewCache();
    std::vector<float> logits(tokens.size() * vocab);
    inference->Forward(tokens, cache, logits, true);
    for (int64_t t = start; t < end; ++t) {
      if (!batch.mask[t]) continue;
      const float* row = logits.data() + (t - start) * vocab;
      double max_logit = row[0];
      for (int64_t i = 1; i < vocab; ++i) max_logit = std::max<double>(max_logit, row[i]);
      double sum = 0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - max_logit);
      loss += max_logit + std::log(sum) - row[batch.targets[t]];
      ++count;
    }
    start = end;
  }
  *count_out = count;
  return loss;
}

// The same on tiny-ministral3 of ../shared (tied embeddings, YaRN, llama-4 temperature), within
// 1e-4 of the inference cross-entropy.
TEST(TrainableModelTest, ForwardMatchesInferenceOnTinyMinistral3) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* layout : {"mistral", "hf-fp8"}) {
    const std::string dir = shared + "/reference-models/tiny-ministral3/" + layout;
    TrainModelOptions options;
    options.threads = 2;
    options.dtype = DType::kF32;
    options.max_positions = 64;
    auto trainable = LoadTrainableModel(dir, options);
    const TrainingBatch batch = TinyBatch(trainable->params().vocab_size);
    model::LoraAdapter lora = RandomAdapter(trainable->params(), 2);
    lora.ForEachMatrix(
        [](model::LoraMatrix& m, const std::string&) { std::fill(m.b.begin(), m.b.end(), 0.0f); });
    const CrossEntropyResult trained = trainable->Run(lora, batch, nullptr, 1.0, 0);
    int64_t count = 0;
    const double loss = InferenceLoss(dir, batch, &count);
    EXPECT_EQ(trained.count, count);
    EXPECT_NEAR(trained.loss_sum / count, loss / count, 1e-4) << layout;
  }
}

TEST(TrainableModelTest, ForwardMatchesInference) {
  for (bool moe : {false, true}) {
    testing::TempDir dir;
    auto trainable = TinyModel(dir, moe);
    const TrainingBatch batch = TinyBatch(trainable->params().vocab_size);
    model::LoraAdapter lora = RandomAdapter(trainable->params(), 2);
    lora.ForEachMatrix(
        [](model::LoraMatrix& m, const std::string&) { std::fill(m.b.begin(), m.b.end(), 0.0f); });
    const CrossEntropyResult trained = trainable->Run(lora, batch, nullptr, 1.0, 0);

    int64_t count = 0;
    const double loss = InferenceLoss(dir.path(), batch, &count);
    EXPECT_EQ(trained.count, count);
    EXPECT_NEAR(trained.loss_sum, loss, 1e-4 * std::abs(loss)) << (moe ? "moe" : "dense");
  }
}

// Mixed precision on a bf16 base (bf16 activations in the frozen products, where the CPU has
// AVX512-BF16): loss and gradients stay within bf16 rounding of the f32 computation, and the
// eval accuracy counts argmax hits.
TEST(TrainableModelTest, MixedPrecisionStaysCloseToF32) {
  testing::TempDir dir;
  ThreadPool pool(2);
  model::WriteRandomModel(TinyParams(true), 7, dir.path(), pool, /*show_progress=*/false);
  TrainModelOptions options;
  options.threads = 2;
  options.dtype = DType::kBF16;
  options.max_positions = 64;
  auto exact = LoadTrainableModel(dir.path(), options);
  options.mixed_precision = true;
  auto mixed = LoadTrainableModel(dir.path(), options);
  EXPECT_FALSE(exact->bf16_compute());
  EXPECT_EQ(mixed->bf16_compute(), mixed->compute().kernels().gemm_strip_bf16 != nullptr);
  const TrainingBatch batch = TinyBatch(exact->params().vocab_size);
  const model::LoraAdapter lora = RandomAdapter(exact->params(), 5);
  model::LoraAdapter g_exact = lora, g_mixed = lora;
  ZeroLoraAdapter(g_exact);
  ZeroLoraAdapter(g_mixed);
  const CrossEntropyResult r_exact = exact->Run(lora, batch, &g_exact, 1.0, 1);
  const CrossEntropyResult r_mixed = mixed->Run(lora, batch, &g_mixed, 1.0, 1);
  EXPECT_EQ(r_exact.count, r_mixed.count);
  EXPECT_GE(r_exact.correct, 0);
  EXPECT_LE(r_exact.correct, r_exact.count);
  EXPECT_NEAR(r_mixed.loss_sum, r_exact.loss_sum, 1e-2 * std::abs(r_exact.loss_sum));
  double dot = 0, norm_exact = 0, norm_mixed = 0;
  std::vector<const model::LoraMatrix*> mixed_matrices;
  g_mixed.ForEachMatrix(
      [&](model::LoraMatrix& m, const std::string&) { mixed_matrices.push_back(&m); });
  size_t index = 0;
  g_exact.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    const model::LoraMatrix& other = *mixed_matrices[index++];
    for (size_t i = 0; i < m.a.size(); ++i) {
      dot += double{m.a[i]} * other.a[i];
      norm_exact += double{m.a[i]} * m.a[i];
      norm_mixed += double{other.a[i]} * other.a[i];
    }
    for (size_t i = 0; i < m.b.size(); ++i) {
      dot += double{m.b[i]} * other.b[i];
      norm_exact += double{m.b[i]} * m.b[i];
      norm_mixed += double{other.b[i]} * other.b[i];
    }
  });
  ASSERT_GT(norm_exact, 0);
  EXPECT_GT(dot / std::sqrt(norm_exact * norm_mixed), 0.999);
  EXPECT_NEAR(std::sqrt(norm_mixed / norm_exact), 1.0, 0.02);
}

}  // namespace
}  // namespace bora::train
