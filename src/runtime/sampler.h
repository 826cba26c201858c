// Token selection for one sequence: penalties and logit bias on the raw logits, then greedy
// argmax or temperature sampling over the top-k / top-p / min-p candidates, with the sequence's
// own seeded generator, so a sequence's tokens never depend on what else is in the batch.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/random.h"
#include "kernels/kernel_set.h"
#include "runtime/constraint/matcher.h"
#include "runtime/sampling_params.h"

namespace bora::runtime {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

// One chosen token. Log-probabilities are those of the model's distribution (log-softmax of the
// raw logits, before bias, penalties, constraint mask, temperature and truncation), as vLLM
// reports by default; they are filled only when the parameters ask for them.
struct SampledToken {
  int32_t id = 0;
  float logprob = 0.0f;
  int32_t top_count = 0;
  std::array<TokenLogprob, kMaxTopLogprobs> top{};  // most likely first, ties by lower id
};

// Vocabulary-sized work buffers, allocated once per engine and shared by the sequences it
// samples one after the other (so sampling allocates nothing per token).
class SamplerScratch {
 public:
  explicit SamplerScratch(int64_t vocab_size);
  int64_t vocab_size() const { return static_cast<int64_t>(values_.size()); }

 private:
  friend class SequenceSampler;
  std::vector<float> values_;   // adjusted logits, then unnormalised probabilities
  std::vector<int32_t> order_;  // candidate ids, most likely first
  std::vector<uint64_t> mask_;  // [vocab / 64] constraint bitset: allowed token ids
};

class SequenceSampler {
 public:
  // `prompt` feeds the repetition penalty. `seed` is the request's (resolved) seed and `stream`
  // the choice index, so the n choices of a seeded request differ from each other but each is
  // reproducible. `kernels` supplies the vectorised exp. `constraint` (optional, e.g. a JSON
  // schema's matcher) restricts every token to those its grammar allows: disallowed tokens get
  // -inf after bias and penalties, before greedy/temperature/top-k/top-p/min-p selection, and
  // the chosen token is accepted into it. Its vocabulary must not exceed `vocab_size` (ids
  // beyond the tokenizer's, e.g. padding rows of the model, are never allowed).
  SequenceSampler(const SamplingParams& params, int64_t vocab_size, std::span<const int32_t> prompt, uint64_t seed,
                  uint64_t stream, const kernels::KernelSet& kernels,
                  std::unique_ptr<constraint::Matcher> constraint = nullptr);

  // Chooses the next token from one row of raw logits [vocab_size] and records it in the
  // history the penalties read. With a constraint that allows no token at all (a grammar
  // dead end; should not happen) the token is the constraint's EOS, not accepted into it.
  SampledToken Sample(std::span<const float> logits, SamplerScratch& scratch);

  const SamplingParams& params() const { return params_; }
  // The constraint, or null; Complete()/Finished() tell whether its grammar is satisfied.
  const constraint::Matcher* constraint() const { return constraint_.get(); }
  int64_t generated() const { return generated_; }

 private:
  void ApplyAdjustments(std::span<const float> logits, float* values) const;
  // Sets disallowed tokens to -inf; false when the constraint allows none.
  bool ApplyConstraint(float* values, std::span<uint64_t> mask);
  int32_t SampleFromDistribution(float* values, int32_t* order);
  void FillLogprobs(std::span<const float> logits, SampledToken& token, int32_t* order) const;
  void Record(int32_t token);

  SamplingParams params_;
  int64_t vocab_size_;
  const kernels::KernelSet& kernels_;
  Xoshiro256 random_;  // seeded from (seed, stream): see the constructor
  std::vector<uint32_t> output_counts_;   // [vocab] occurrences among generated tokens
  std::vector<uint8_t> seen_;             // [vocab] in the prompt or generated (repetition penalty)
  std::vector<int32_t> seen_ids_;         // distinct ids of seen_, in first-seen order
  std::vector<int32_t> output_ids_;       // distinct generated ids
  int64_t generated_ = 0;
  std::unique_ptr<constraint::Matcher> constraint_;
};

// A random seed for requests that give none (from std::random_device).
uint64_t RandomSeed();

}  // namespace bora::runtime
