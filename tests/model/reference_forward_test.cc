// The engine (rolling KV buffer, chunked prefill, decode) against an independent naive
// double-precision forward with an explicit mask, on random models covering sliding windows,
// MQA, head_dim != dim/n_heads, odd vocabularies, MoE + SWA and the Hugging Face layout.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/model_params.h"
#include "model/model_test_util.h"
#include "model/reference_forward.h"
#include "testdata.h"

namespace bora::testing {
namespace {

// Far below any logit difference a wrong mask, window or layout produces (> 1e-2 here).
constexpr double kTolerance = 1e-4;

void ExpectAllPathsMatchReference(const std::string& dir, const std::vector<int32_t>& tokens) {
  std::vector<double> reference = ReferenceLogits(dir, tokens);
  for (int64_t step : {static_cast<int64_t>(tokens.size()), int64_t{13}, int64_t{5}, int64_t{1}}) {
    EXPECT_LT(MaxAbsDiff(EngineLogits(dir, tokens, step), reference), kTolerance) << "step " << step;
  }
}

TEST(ReferenceForwardTest, SlidingWindowRollingBufferMatchesExplicitMask) {
  TempDir dir;
  formats::ModelParams params = SmallParams();
  const int64_t window = 8;
  params.layer_windows.assign(params.n_layers, window);
  MakeModel(params, 11, dir.path());
  std::vector<int32_t> tokens = RandomTokens(3 * window + 6, params.vocab_size, 1);  // > 3 W
  ExpectAllPathsMatchReference(dir.path(), tokens);

  // The window must matter on this prompt, or the test above proves nothing.
  TempDir full;
  params.layer_windows.assign(params.n_layers, 0);
  MakeModel(params, 11, full.path());
  EXPECT_GT(MaxAbsDiff(EngineLogits(full.path(), tokens, 1), ReferenceLogits(dir.path(), tokens)), 1e-2);
}

TEST(ReferenceForwardTest, WindowAtLeastPromptLengthEqualsNoWindow) {
  formats::ModelParams params = SmallParams();
  std::vector<int32_t> tokens = RandomTokens(30, params.vocab_size, 2);
  TempDir none, equal, shorter;
  MakeModel(params, 12, none.path());
  params.layer_windows.assign(params.n_layers, 30);
  MakeModel(params, 12, equal.path());
  params.layer_windows.assign(params.n_layers, 29);
  MakeModel(params, 12, shorter.path());
  std::vector<float> no_window = EngineLogits(none.path(), tokens, 7);
  EXPECT_EQ(EngineLogits(equal.path(), tokens, 7), no_window);  // bitwise
  EXPECT_NE(EngineLogits(shorter.path(), tokens, 7), no_window);
}

TEST(ReferenceForwardTest, DecodePastTheWindowWrapsTheRollingBuffer) {
  TempDir dir;
  formats::ModelParams params = SmallParams();
  params.layer_windows.assign(params.n_layers, 6);
  MakeModel(params, 13, dir.path());
  // A 4-token prefill then 26 single-token steps: the buffer of 6 slots wraps four times.
  std::vector<int32_t> tokens = RandomTokens(30, params.vocab_size, 3);
  std::vector<double> reference = ReferenceLogits(dir.path(), tokens);
  std::vector<float> engine = EngineLogits(dir.path(), tokens, 1);
  EXPECT_LT(MaxAbsDiff(engine, reference), kTolerance);
}

TEST(ReferenceForwardTest, MqaWithWideHeadsOddVocabEps1e6Theta1e4) {
  TempDir dir;
  formats::ModelParams params = SmallParams();
  params.n_heads = 4;
  params.n_kv_heads = 1;   // MQA
  params.head_dim = 24;    // n_heads * head_dim = 96 != dim = 64
  params.vocab_size = 1001;
  params.norm_eps = 1e-6;
  params.rope_theta = 1e4;
  MakeModel(params, 14, dir.path());
  ExpectAllPathsMatchReference(dir.path(), RandomTokens(20, params.vocab_size, 4));
}

TEST(ReferenceForwardTest, MoeWithPerLayerSlidingWindows) {
  TempDir dir;
  formats::ModelParams params = SmallParams();
  params.moe = formats::MoeParams{4, 2};
  params.layer_windows = {5, 0};  // written as "sliding_window": [5, null]
  MakeModel(params, 15, dir.path());
  std::ifstream params_file(dir.File("params.json"));
  std::string text((std::istreambuf_iterator<char>(params_file)), std::istreambuf_iterator<char>());
  ASSERT_NE(text.find("null"), std::string::npos) << text;
  ExpectAllPathsMatchReference(dir.path(), RandomTokens(20, params.vocab_size, 5));
}

TEST(ReferenceForwardTest, HuggingFaceLayoutMatchesNativeAndHalfSplitReference) {
  for (bool moe : {false, true}) {
    TempDir native, hf;
    formats::ModelParams params = SmallParams();
    if (moe) params.moe = formats::MoeParams{3, 2};
    params.layer_windows.assign(params.n_layers, 7);
    MakeModel(params, 16, native.path());
    ConvertToHf(native.path(), hf.path());
    std::vector<int32_t> tokens = RandomTokens(18, params.vocab_size, 6);
    // The reference runs rotate_half RoPE directly on the permuted HF weights.
    std::vector<double> reference = ReferenceLogits(hf.path(), tokens);
    std::vector<float> from_hf = EngineLogits(hf.path(), tokens, 4);
    EXPECT_LT(MaxAbsDiff(from_hf, reference), kTolerance) << "moe " << moe;
    EXPECT_EQ(from_hf, EngineLogits(native.path(), tokens, 4)) << "moe " << moe;  // bitwise
  }
}

}  // namespace
}  // namespace bora::testing
