// What a request asks of token selection: temperature, truncation (top-k, top-p, min-p),
// penalties, logit bias, seed and log-probabilities, with the ranges the APIs allow.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace bora::runtime {

// Most alternatives per token that `top_logprobs` may ask for (OpenAI's limit).
constexpr int kMaxTopLogprobs = 20;

struct SamplingParams {
  float temperature = 0.7f;        // 0 = greedy (argmax); the API allows 0..2
  float top_p = 1.0f;              // nucleus mass in (0, 1]; 1 = off
  int32_t top_k = 0;               // keep the k most likely tokens; 0 = off
  float min_p = 0.0f;              // drop tokens below min_p * p(most likely); 0 = off
  float presence_penalty = 0.0f;   // -2..2, subtracted once from every token already generated
  float frequency_penalty = 0.0f;  // -2..2, subtracted per occurrence in the generated tokens
  float repetition_penalty = 1.0f; // > 0; CTRL-style over prompt and output tokens; 1 = off
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the raw logits (-100..100)
  std::optional<uint64_t> seed;    // none: a random seed per request
  bool logprobs = false;           // report the chosen token's log-probability
  int32_t top_logprobs = 0;        // and this many alternatives (0..kMaxTopLogprobs)

  // Throws InvalidArgument naming the field and its allowed range; token ids in logit_bias must
  // be below `vocab_size`.
  void Validate(int64_t vocab_size) const;
};

}  // namespace bora::runtime
