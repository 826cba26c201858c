// Tests runtime::SequenceSampler: greedy, seeded reproducibility, the sampled distribution
// against its exact probabilities, top-k / top-p / min-p cuts, penalties, logit bias, log-probs
// and parameter validation.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "base/cpu_features.h"
#include "base/error.h"

namespace bora::runtime {
namespace {

const kernels::KernelSet& Kernels() { return kernels::KernelsFor(SelectIsaFromEnvironment()); }

SamplingParams Params(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

// Draws `draws` tokens from the same logits with fresh samplers (the penalties stay off).
std::vector<int> Histogram(const SamplingParams& params, const std::vector<float>& logits, int draws, uint64_t seed) {
  SamplerScratch scratch(static_cast<int64_t>(logits.size()));
  SequenceSampler sampler(params, static_cast<int64_t>(logits.size()), {}, seed, 0, Kernels());
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(logits, scratch).id];
  return counts;
}

// Softmax of logits / T in double.
std::vector<double> Probabilities(const std::vector<float>& logits, double temperature) {
  double max = -INFINITY, sum = 0;
  for (float v : logits) max = std::max<double>(max, v);
  std::vector<double> p;
  for (float v : logits) {
    p.push_back(std::exp((v - max) / temperature));
    sum += p.back();
  }
  for (double& v : p) v /= sum;
  return p;
}

// Each count within 5 standard deviations of draws * p (binomial); the seed is fixed, so this
// is deterministic, and a wrong distribution (e.g. a temperature ignored) is far outside.
void ExpectMatches(const std::vector<int>& counts, const std::vector<double>& p, int draws) {
  for (size_t i = 0; i < p.size(); ++i) {
    const double mean = draws * p[i];
    const double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma + 1e-9) << "token " << i << " p=" << p[i];
  }
}

TEST(SamplerTest, GreedyTakesTheLargestLogitAndTheLowerIdOnTies) {
  SamplerScratch scratch(5);
  SequenceSampler sampler(Params(0.0f), 5, {}, 1, 0, Kernels());
  EXPECT_EQ(sampler.Sample(std::vector<float>{0.1f, 3.0f, -2.0f, 3.0f, 1.0f}, scratch).id, 1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{NAN, -1.0f, 5.0f, NAN, 4.0f}, scratch).id, 2);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedOrChoiceDifferentTokens) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i)) * 2.0f;
  auto run = [&](uint64_t seed, uint64_t stream) {
    SamplerScratch scratch(1000);
    SamplingParams params = Params(1.0f);
    params.top_p = 0.9f;
    SequenceSampler sampler(params, 1000, {}, seed, stream, Kernels());
    std::vector<int32_t> tokens;
    for (int i = 0; i < 50; ++i) tokens.push_back(sampler.Sample(logits, scratch).id);
    return tokens;
  };
  EXPECT_EQ(run(42, 0), run(42, 0));
  EXPECT_NE(run(42, 0), run(43, 0));
  EXPECT_NE(run(42, 0), run(42, 1));
}

TEST(SamplerTest, DrawsFollowTheTemperatureScaledSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.0f, 2.5f, -1.0f};
  const int draws = 40000;
  for (float temperature : {1.0f, 0.5f, 1.7f}) {
    SCOPED_TRACE(temperature);
    ExpectMatches(Histogram(Params(temperature), logits, draws, 7), Probabilities(logits, temperature), draws);
  }
}

TEST(SamplerTest, TopKTopPAndMinPKeepTheRightCandidatesRenormalised) {
  // Probabilities at T = 1: about 0.53, 0.20, 0.20 (tie), 0.07 for ids 3, 1, 2, 0 (and 4 tiny).
  const std::vector<float> logits = {0.0f, 1.0f, 1.0f, 2.0f, -6.0f};
  const std::vector<double> p = Probabilities(logits, 1.0);
  const int draws = 30000;
  auto renormalised = [&](std::vector<int> keep) {
    std::vector<double> q(p.size(), 0.0);
    double mass = 0;
    for (int id : keep) mass += p[id];
    for (int id : keep) q[id] = p[id] / mass;
    return q;
  };
  SamplingParams top_k = Params(1.0f);
  top_k.top_k = 2;  // ids 3 and 1 (the tie between 1 and 2 goes to the lower id)
  ExpectMatches(Histogram(top_k, logits, draws, 11), renormalised({3, 1}), draws);
  SamplingParams top_p = Params(1.0f);
  top_p.top_p = 0.7f;  // 0.53 < 0.7 <= 0.53 + 0.20: ids 3 and 1
  ExpectMatches(Histogram(top_p, logits, draws, 12), renormalised({3, 1}), draws);
  SamplingParams min_p = Params(1.0f);
  min_p.min_p = 0.3f;  // keeps p >= 0.3 * 0.53 = 0.16: ids 3, 1, 2
  ExpectMatches(Histogram(min_p, logits, draws, 13), renormalised({3, 1, 2}), draws);
  SamplingParams combined = Params(1.0f);
  combined.top_k = 3;
  combined.top_p = 0.95f;  // of the top-3 mass (0.93 of the total): all three stay
  ExpectMatches(Histogram(combined, logits, draws, 14), renormalised({3, 1, 2}), draws);
  SamplingParams one = Params(1.0f);
  one.top_k = 1;
  EXPECT_EQ(Histogram(one, logits, 200, 15)[3], 200);
}

TEST(SamplerTest, TruncationOverALargeVocabularyNeedsMoreThanTheFirstRankedPrefix) {
  // 131072 tokens, the 300 largest equally likely and the rest impossible-ish: top_p = 0.99
  // must keep (about) all 300, beyond the first ranked prefix of 64.
  std::vector<float> logits(131072, -30.0f);
  for (int i = 0; i < 300; ++i) logits[i * 400] = 5.0f;
  SamplingParams params = Params(1.0f);
  params.top_p = 0.99f;
  const std::vector<int> counts = Histogram(params, logits, 2000, 3);  // each of 300 missed with p ~ 0.1 %
  int distinct = 0;
  for (int i = 0; i < 300; ++i) distinct += counts[i * 400] > 0;
  EXPECT_GE(distinct, 295);
  int outside = 0;
  for (size_t i = 0; i < counts.size(); ++i) outside += (i % 400 != 0 || i >= 120000) ? counts[i] : 0;
  EXPECT_EQ(outside, 0);
}

TEST(SamplerTest, PenaltiesFollowOpenAiAndCtrlDefinitions) {
  SamplerScratch scratch(3);
  const std::vector<float> logits = {2.0f, 1.8f, 1.0f};
  {
    SamplingParams params = Params(0.0f);
    params.presence_penalty = 0.5f;  // after token 0 once: 1.5 < 1.8
    SequenceSampler sampler(params, 3, {}, 1, 0, Kernels());
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 0);
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 1);
  }
  {
    SamplingParams params = Params(0.0f);
    params.frequency_penalty = 0.15f;  // 2.0 - 0.15 n: below 1.8 after two occurrences
    SequenceSampler sampler(params, 3, {}, 1, 0, Kernels());
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 0);
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 0);
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 1);
  }
  {
    // Repetition penalty 1.5 over the prompt's token 0: 2.0 / 1.5 = 1.33 < 1.8; negative logits
    // are multiplied: -1 * 1.5 = -1.5 < -1.2.
    SamplingParams params = Params(0.0f);
    params.repetition_penalty = 1.5f;
    const std::vector<int32_t> prompt = {0, 2};
    SequenceSampler sampler(params, 3, prompt, 1, 0, Kernels());
    EXPECT_EQ(sampler.Sample(logits, scratch).id, 1);
    EXPECT_EQ(sampler.Sample(std::vector<float>{-5.0f, -1.3f, -1.0f}, scratch).id, 2);  // 1 now seen: -1.95
    SequenceSampler negative(params, 3, prompt, 1, 0, Kernels());
    EXPECT_EQ(negative.Sample(std::vector<float>{-5.0f, -1.2f, -1.0f}, scratch).id, 1);  // 2: -1.5
  }
}

TEST(SamplerTest, LogitBiasCanBanOrForceATokenAtAnyTemperature) {
  const std::vector<float> logits = {3.0f, 1.0f, 0.0f};
  SamplingParams ban = Params(1.0f);
  ban.logit_bias = {{0, -100.0f}};
  EXPECT_EQ(Histogram(ban, logits, 2000, 5)[0], 0);
  SamplingParams force = Params(0.0f);
  force.logit_bias = {{2, 100.0f}};
  EXPECT_EQ(Histogram(force, logits, 10, 5)[2], 10);
}

TEST(SamplerTest, LogprobsAreTheRawLogSoftmaxWithRankedAlternatives) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  SamplingParams params = Params(0.0f);
  params.logprobs = true;
  params.top_logprobs = 3;
  params.logit_bias = {{4, 50.0f}};  // changes the choice, not the reported distribution
  SamplerScratch scratch(5);
  SequenceSampler sampler(params, 5, {}, 1, 0, Kernels());
  const SampledToken token = sampler.Sample(logits, scratch);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v));
  EXPECT_EQ(token.id, 4);
  EXPECT_NEAR(token.logprob, 1.0 - std::log(sum), 1e-6);
  ASSERT_EQ(token.top_count, 3);
  EXPECT_EQ(token.top[0].id, 1);
  EXPECT_EQ(token.top[1].id, 3);
  EXPECT_EQ(token.top[2].id, 4);
  EXPECT_NEAR(token.top[0].logprob, 2.0 - std::log(sum), 1e-6);
}

TEST(SamplerTest, ValidationRejectsOutOfRangeParameters) {
  auto rejects = [](auto mutate) {
    SamplingParams params;
    mutate(params);
    EXPECT_THROW(params.Validate(100), InvalidArgument);
  };
  rejects([](SamplingParams& p) { p.temperature = -0.1f; });
  rejects([](SamplingParams& p) { p.temperature = 2.5f; });
  rejects([](SamplingParams& p) { p.temperature = NAN; });
  rejects([](SamplingParams& p) { p.top_p = 0.0f; });
  rejects([](SamplingParams& p) { p.top_p = 1.5f; });
  rejects([](SamplingParams& p) { p.top_k = -1; });
  rejects([](SamplingParams& p) { p.min_p = 1.5f; });
  rejects([](SamplingParams& p) { p.presence_penalty = 3.0f; });
  rejects([](SamplingParams& p) { p.frequency_penalty = -2.5f; });
  rejects([](SamplingParams& p) { p.repetition_penalty = 0.0f; });
  rejects([](SamplingParams& p) { p.logit_bias = {{100, 1.0f}}; });
  rejects([](SamplingParams& p) { p.logit_bias = {{1, 101.0f}}; });
  rejects([](SamplingParams& p) { p.top_logprobs = 21; });
  SamplingParams fine;
  EXPECT_NO_THROW(fine.Validate(100));
  SamplerScratch scratch(4);
  SequenceSampler sampler(fine, 5, {}, 1, 0, Kernels());
  EXPECT_THROW(sampler.Sample(std::vector<float>(5, 0.0f), scratch), InvalidArgument);  // scratch too small
}

}  // namespace
}  // namespace bora::runtime
