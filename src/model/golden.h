// Golden-logit verification: reads a reference folder's golden/ set (mistral-inference outputs)
// and runs every case through one-shot prefill, chunked prefill, token-by-token prefill and
// KV-cache decode, comparing logits and greedy tokens.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
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
  // Multimodal cases: the embeddings of every [IMG] token of the prompt, in order [k, dim].
  std::vector<float> image_rows;
  int32_t image_token = -1;
};

// How far Mistral's reference drifts from the f32 goldens when it computes in bf16
// (golden.json "bf16_compute_vs_f32"): the yardstick for quantized dtypes.
struct Bf16Drift {
  double rms_rel = 0;             // sqrt(sum d^2 / sum ref^2) over the logits
  double top1_agreement_min = 0;  // worst case's fraction of rows whose argmax agrees
};

struct GoldenSet {
  int64_t vocab_size = 0;
  std::vector<GoldenCase> cases;
  std::optional<Bf16Drift> bf16_drift;
};

// Reads golden.json and its .bin files from `golden_dir`; throws FormatError/IoError. Cases that
// feed images are refused unless `with_images` (the caller then attaches their image rows).
GoldenSet ReadGoldenSet(const std::string& golden_dir, bool with_images = false);

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

// Teacher-forced quality of a (quantized) model against the f32 goldens: prompt + greedy tokens
// in one prefill, every row compared with prefill_logits then decode_logits.
struct GoldenQuality {
  std::string name;
  int64_t rows = 0;
  double max_abs_diff = 0;
  double sum_sq_diff = 0;       // sum over all logits of (ours - golden)^2
  double sum_sq_golden = 0;     // sum of golden^2
  double top1_agreement = 0;    // fraction of rows with the same argmax
  double mean_kl = 0;           // mean over rows of KL(softmax(golden) || softmax(ours)), nats
  double rms_rel() const { return sum_sq_golden > 0 ? std::sqrt(sum_sq_diff / sum_sq_golden) : 0; }
};
GoldenQuality MeasureGoldenQuality(Transformer& model, const GoldenCase& golden);

// Needs model.context_length() >= prompt + greedy tokens; throws InvalidArgument otherwise.
GoldenCaseResult RunGoldenCase(Transformer& model, const GoldenCase& golden, int64_t chunk_size = 5);

}  // namespace bora::model
