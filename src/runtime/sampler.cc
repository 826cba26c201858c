// Token selection for one sequence.
#include "runtime/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "base/error.h"

namespace bora::runtime {
namespace {

// Candidates are ranked by value, larger first, ties by the lower id: a total order, so the
// ranking (and the token drawn) never depends on the sort algorithm or the batch.
struct MoreLikely {
  const float* values;
  bool operator()(int32_t a, int32_t b) const {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  }
};

// The same order over raw logits, where a NaN ranks below everything.
struct MoreLikelyRaw {
  const float* values;
  static float Key(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }
  bool operator()(int32_t a, int32_t b) const {
    const float va = Key(values[a]), vb = Key(values[b]);
    return va > vb || (va == vb && a < b);
  }
};

// First size of the ranked prefix tried for top-p/min-p; doubled until the cut is inside it.
constexpr int64_t kFirstRankedPrefix = 64;

// Likelihood buckets of weights in (0, 1]: bucket b = weights in [2^-b, 2^(1-b)), the last one
// also everything smaller.
constexpr int kBuckets = 64;
inline int Bucket(float weight) {
  uint32_t bits;
  std::memcpy(&bits, &weight, sizeof(bits));
  const int exponent = static_cast<int>((bits >> 23) & 0xff);  // 127 for [1, 2)
  return std::clamp(127 - exponent, 0, kBuckets - 1);
}

void CheckRange(const char* name, double value, double low, double high) {
  if (!(value >= low && value <= high)) {
    throw InvalidArgument(std::string(name) + " must be between " + std::to_string(low).substr(0, 4) + " and " +
                          std::to_string(high).substr(0, 4) + ", got " + std::to_string(value));
  }
}

}  // namespace

void SamplingParams::Validate(int64_t vocab_size) const {
  CheckRange("temperature", temperature, 0.0, 2.0);
  if (!(top_p > 0.0f && top_p <= 1.0f)) throw InvalidArgument("top_p must be in (0, 1], got " + std::to_string(top_p));
  if (top_k < 0) throw InvalidArgument("top_k must be >= 0 (0 disables it), got " + std::to_string(top_k));
  CheckRange("min_p", min_p, 0.0, 1.0);
  CheckRange("presence_penalty", presence_penalty, -2.0, 2.0);
  CheckRange("frequency_penalty", frequency_penalty, -2.0, 2.0);
  if (!(repetition_penalty > 0.0f && repetition_penalty <= 10.0f)) {
    throw InvalidArgument("repetition_penalty must be in (0, 10], got " + std::to_string(repetition_penalty));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size) {
      throw InvalidArgument("logit_bias names token " + std::to_string(id) + ", outside the vocabulary of " +
                            std::to_string(vocab_size));
    }
    CheckRange("logit_bias value", bias, -100.0, 100.0);
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    throw InvalidArgument("top_logprobs must be between 0 and " + std::to_string(kMaxTopLogprobs));
  }
}

uint64_t RandomSeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

SamplerScratch::SamplerScratch(int64_t vocab_size)
    : values_(static_cast<size_t>(vocab_size)),
      order_(static_cast<size_t>(vocab_size)),
      mask_(constraint::MaskWords(vocab_size)) {}

SequenceSampler::SequenceSampler(const SamplingParams& params, int64_t vocab_size, std::span<const int32_t> prompt,
                                 uint64_t seed, uint64_t stream, const kernels::KernelSet& kernels,
                                 std::unique_ptr<constraint::Matcher> constraint)
    : params_(params),
      vocab_size_(vocab_size),
      kernels_(kernels),
      random_(seed ^ SplitMix64(stream)),
      constraint_(std::move(constraint)) {
  params_.Validate(vocab_size);
  if (constraint_ && constraint_->vocab_size() > vocab_size) {
    throw InvalidArgument("sampler: the constraint's vocabulary (" + std::to_string(constraint_->vocab_size()) +
                          " tokens) exceeds the model's (" + std::to_string(vocab_size) + ")");
  }
  // History is kept only when a penalty reads it; reserved in full so Record never allocates.
  const bool counts = params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  const bool repetition = params_.repetition_penalty != 1.0f;
  if (counts) {
    output_counts_.assign(static_cast<size_t>(vocab_size), 0);
    output_ids_.reserve(static_cast<size_t>(vocab_size));
  }
  if (repetition) {
    seen_.assign(static_cast<size_t>(vocab_size), 0);
    seen_ids_.reserve(static_cast<size_t>(vocab_size));
    for (int32_t id : prompt) {
      if (id >= 0 && id < vocab_size && !seen_[id]) {
        seen_[id] = 1;
        seen_ids_.push_back(id);
      }
    }
  }
}

void SequenceSampler::ApplyAdjustments(std::span<const float> logits, float* values) const {
  // NaN (a broken model row) becomes "never": the ranking below needs a total order.
  for (size_t i = 0; i < logits.size(); ++i) {
    values[i] = std::isnan(logits[i]) ? -std::numeric_limits<float>::infinity() : logits[i];
  }
  for (const auto& [id, bias] : params_.logit_bias) values[id] += bias;
  // CTRL repetition penalty: a seen token's logit moves towards "less likely" by the factor.
  const float repetition = params_.repetition_penalty;
  for (int32_t id : seen_ids_) values[id] = values[id] > 0 ? values[id] / repetition : values[id] * repetition;
  // OpenAI penalties over the generated tokens.
  for (int32_t id : output_ids_) {
    values[id] -= params_.frequency_penalty * static_cast<float>(output_counts_[id]) + params_.presence_penalty;
  }
}

bool SequenceSampler::ApplyConstraint(float* values, std::span<uint64_t> mask) {
  constraint_->FillMask(mask);
  constexpr float kNever = -std::numeric_limits<float>::infinity();
  bool any = false;
  const int64_t words = static_cast<int64_t>(mask.size());
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t bits = mask[w];
    const int64_t base = w * 64;
    const int64_t end = std::min<int64_t>(base + 64, vocab_size_);
    if (bits == ~uint64_t{0} && end - base == 64) {
      any = true;
      continue;
    }
    for (int64_t i = base; i < end; ++i) {
      if (bits >> (i - base) & 1) {
        any = any || values[i] != kNever;
      } else {
        values[i] = kNever;
      }
    }
  }
  return any;
}

int32_t SequenceSampler::SampleFromDistribution(float* values, int32_t* order) {
  const int64_t vocab = vocab_size_;
  const float inverse_temperature = 1.0f / params_.temperature;
  float max_value = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) max_value = std::max(max_value, values[i]);
  if (max_value == -std::numeric_limits<float>::infinity()) return 0;  // every token banned: nothing to draw
  // Unnormalised probabilities exp((v - max) / T): the most likely token has weight 1.
  for (int64_t i = 0; i < vocab; ++i) values[i] = (values[i] - max_value) * inverse_temperature;
  kernels_.exp_inplace(values, vocab);

  const bool truncates = params_.top_k > 0 || params_.top_p < 1.0f || params_.min_p > 0.0f;
  if (!truncates) {
    // The whole vocabulary in id order: no ranking needed.
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i) total += values[i];
    const double target = random_.Uniform() * total;
    double cumulative = 0;
    int32_t last_positive = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (values[i] <= 0) continue;
      cumulative += values[i];
      last_positive = static_cast<int32_t>(i);
      if (cumulative > target) return static_cast<int32_t>(i);
    }
    return last_positive;  // rounding left the target just above the total
  }

  // Only tokens that can survive the cuts are ranked. Weights lie in (0, 1]; bucket b holds
  // those with binary exponent -b, so buckets are ordered by likelihood. The cuts keep a prefix
  // of the ranking, so each cut is contained in the buckets up to the one where its count
  // (top-k), mass (top-p) or threshold (min-p) is reached.
  std::array<double, kBuckets> bucket_mass{};
  std::array<int64_t, kBuckets> bucket_count{};
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float weight = values[i];
    if (weight <= 0) continue;
    total += weight;
    const int bucket = Bucket(weight);
    bucket_mass[bucket] += weight;
    ++bucket_count[bucket];
  }
  int limit = kBuckets - 1;
  if (params_.top_k > 0) {
    int64_t count = 0;
    for (int b = 0; b < kBuckets; ++b) {
      count += bucket_count[b];
      if (count >= params_.top_k) {
        limit = b;
        break;
      }
    }
  } else {
    if (params_.top_p < 1.0f) {
      double mass = 0;
      for (int b = 0; b < kBuckets; ++b) {
        mass += bucket_mass[b];
        if (mass >= static_cast<double>(params_.top_p) * total) {
          limit = std::min(limit, b);
          break;
        }
      }
    }
    if (params_.min_p > 0.0f) limit = std::min(limit, Bucket(params_.min_p));
  }
  int64_t candidates = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (values[i] > 0 && Bucket(values[i]) <= limit) order[candidates++] = static_cast<int32_t>(i);
  }
  // top-k: the k most likely candidates; their mass is what top-p is a fraction of.
  const MoreLikely more_likely{values};
  const int64_t k = params_.top_k > 0 ? std::min<int64_t>(params_.top_k, candidates) : candidates;
  double k_mass = total;
  if (params_.top_k > 0) {
    if (k < candidates) std::nth_element(order, order + k - 1, order + candidates, more_likely);
    k_mass = 0;
    for (int64_t i = 0; i < k; ++i) k_mass += values[order[i]];
  }
  // Rank a growing prefix of the k candidates until the top-p and min-p cuts fall inside it.
  // Every cut keeps a prefix of the ranking, so the kept set is the shortest of them (>= 1).
  const double p_target =
      params_.top_p < 1.0f ? static_cast<double>(params_.top_p) * k_mass : std::numeric_limits<double>::infinity();
  const float min_weight = params_.min_p;  // the most likely token's weight is 1
  int64_t ranked = 0, keep = 0;
  double kept_mass = 0;
  while (true) {
    const int64_t next = std::min<int64_t>(k, std::max<int64_t>(kFirstRankedPrefix, 2 * ranked));
    if (next < k) {
      std::nth_element(order + ranked, order + next - 1, order + k, more_likely);
    }
    std::sort(order + ranked, order + next, more_likely);
    bool cut = false;
    for (int64_t i = ranked; i < next; ++i) {
      const float weight = values[order[i]];
      if (keep > 0 && (kept_mass >= p_target || weight < min_weight)) {
        cut = true;
        break;
      }
      kept_mass += weight;
      keep = i + 1;
    }
    ranked = next;
    if (cut || ranked == k) break;
  }
  const double target = random_.Uniform() * kept_mass;
  double cumulative = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += values[order[i]];
    if (cumulative > target) return order[i];
  }
  return order[keep - 1];
}

void SequenceSampler::FillLogprobs(std::span<const float> logits, SampledToken& token, int32_t* order) const {
  const int64_t vocab = vocab_size_;
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) max_logit = std::max(max_logit, logits[i]);  // NaN ignored
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!std::isnan(logits[i])) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  }
  const double log_normaliser = max_logit + std::log(sum);
  token.logprob = static_cast<float>(logits[token.id] - log_normaliser);
  const int64_t count = std::min<int64_t>(params_.top_logprobs, vocab);
  if (count == 0) return;
  for (int64_t i = 0; i < vocab; ++i) order[i] = static_cast<int32_t>(i);
  const MoreLikelyRaw more_likely{logits.data()};
  std::partial_sort(order, order + count, order + vocab, more_likely);
  token.top_count = static_cast<int32_t>(count);
  for (int64_t i = 0; i < count; ++i) {
    token.top[i] = {order[i], static_cast<float>(logits[order[i]] - log_normaliser)};
  }
}

void SequenceSampler::Record(int32_t token) {
  ++generated_;
  if (!output_counts_.empty()) {
    if (output_counts_[token]++ == 0) output_ids_.push_back(token);
  }
  if (!seen_.empty() && !seen_[token]) {
    seen_[token] = 1;
    seen_ids_.push_back(token);
  }
}

SampledToken SequenceSampler::Sample(std::span<const float> logits, SamplerScratch& scratch) {
  if (static_cast<int64_t>(logits.size()) != vocab_size_ || scratch.vocab_size() != vocab_size_) {
    throw InvalidArgument("sampler: logits of " + std::to_string(logits.size()) + " values for a vocabulary of " +
                          std::to_string(vocab_size_));
  }
  float* values = scratch.values_.data();
  int32_t* order = scratch.order_.data();
  ApplyAdjustments(logits, values);
  SampledToken token;
  if (constraint_ && !ApplyConstraint(values, scratch.mask_)) {
    // Nothing allowed (a grammar dead end, or every allowed token banned by a -inf logit/bias):
    // end the sequence.
    token.id = constraint_->vocabulary().eos_id();
    if (params_.logprobs || params_.top_logprobs > 0) FillLogprobs(logits, token, order);
    Record(token.id);
    return token;
  }
  if (params_.temperature == 0.0f) {
    const MoreLikely more_likely{values};
    int32_t best = 0;
    for (int32_t i = 1; i < vocab_size_; ++i) {
      if (more_likely(i, best)) best = i;
    }
    token.id = best;
  } else {
    token.id = SampleFromDistribution(values, order);
  }
  if (params_.logprobs || params_.top_logprobs > 0) FillLogprobs(logits, token, order);
  if (constraint_) constraint_->Accept(token.id);
  Record(token.id);
  return token;
}

}  // namespace bora::runtime
