// Golden-logit verification: reads a reference folder's golden/ set (mistral-inference outputs)
// and runs every case through one-shot prefill, chunked prefill, token-by-token prefill and
// KV-cache decode, comparing logits and greedy tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace bora::model {

// Max abs logit difference allowed per case (float32 compute; see reference-models README).
constexpr double kGoldenTolerance = 1e-4;

struct GoldenCase {
  std::string name;
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> greedy_tokens;
  std::vector<float> prefill_logits;  // [prompt, vocab]
  std::vector<float> decode_logits;   // [greedy_tokens, vocab]: row i fed greedy_tokens[i]
};

struct GoldenSet {
  int64_t vocab_size = 0;
  std::vector<GoldenCase> cases;
};

// Reads golden.json and its .bin files from `golden_dir`; throws FormatError/IoError.
GoldenSet ReadGoldenSet(const std::string& golden_dir);

struct GoldenPathResult {
  std::string path;  // "one-shot", "chunked-5", "token-by-token", "decode"
  double max_abs_diff = 0;
};

struct GoldenCaseResult {
  std::string name;
  std::vector<GoldenPathResult> paths;
  double max_abs_diff = 0;          // over all paths
  bool greedy_match = true;
  int first_greedy_mismatch = -1;   // index into greedy_tokens, -1 when all match
  bool passed() const { return greedy_match && max_abs_diff <= kGoldenTolerance; }
};

// Needs model.context_length() >= prompt + greedy tokens; throws InvalidArgument otherwise.
GoldenCaseResult RunGoldenCase(Transformer& model, const GoldenCase& golden, int64_t chunk_size = 5);

}  // namespace bora::model
