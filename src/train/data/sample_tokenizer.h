// A validated training record → tokens and loss mask (mistral-finetune's tokenize.py: v3
// instruct format, masks as mistral-formats.md §8.3).
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/instruct_encoder.h"
#include "tokenizer/tokenizer.h"
#include "train/data/training_record.h"

namespace bora::train {

// One tokenised record. tokens[0] is the BOS; mask[i] = 1 when tokens[i] is a training target
// (the model is trained to predict it from tokens[0, i)); mask[0] is always 0.
struct TrainingSample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;  // same length as tokens; 0 or 1

  // Whether any token after the BOS is a target (else packing drops the whole sample).
  bool has_targets() const;
};

// Tokenises records with one tokenizer in the v3 instruct format, which mistral-finetune uses
// for every model (system prompt merged into the last user message, tools before it).
// Cheap to construct; the tokenizer must outlive it. Thread-safe (const).
class SampleTokenizer {
 public:
  // Throws InvalidArgument when the tokenizer lacks the v3 control tokens (Tekken files).
  explicit SampleTokenizer(const tokenizer::Tokenizer& tokenizer);

  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }

  // Pretrain: BOS + encode(text) + EOS, every token but the BOS a target. Instruct: the v3
  // encoding with tool-call ids of the last message removed; targets are the tokens of
  // assistant messages (text or tool-call JSON, and their EOS) whose weight is 1, only of the
  // last message when only_last is set or tools are given. BOS, tools block, user and tool
  // messages are never targets.
  TrainingSample Tokenize(const TrainingRecord& record) const;

  // The v3 request mistral-finetune encodes for an instruct record.
  static tokenizer::InstructRequest InstructRequestFor(const TrainingRecord& record);

 private:
  const tokenizer::Tokenizer& tokenizer_;
  tokenizer::InstructEncoder encoder_;
};

}  // namespace bora::train
