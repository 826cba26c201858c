// A seeded synthetic fine-tuning dataset (mistral-finetune JSONL) that a tiny random-weight
// model learns within a few LoRA steps: short answers from small closed sets, predictable from
// the prompt. Used by `bora make-dataset` and the training tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bora::train {

enum class SyntheticKind {
  kInstruct,  // one or two question/answer turns (capitals, colours, opposites), some with a
              // system prompt; answers are one word and a full stop
  kPretrain,  // {"text"}: a few sentences from a handful of templates and a small vocabulary
  kTools,     // function calling: weather/time tools, a call (ending the conversation) or a call,
              // its result and a templated answer
};

// "instruct", "pretrain" or "tools"; InvalidArgument otherwise.
SyntheticKind ParseSyntheticKind(std::string_view name);
std::string SyntheticKindName(SyntheticKind kind);

// Record `index` of the dataset for `seed`: one JSON object on one line (no line break). A
// pure function of (kind, seed, index): the first N records of a dataset do not depend on how
// many are generated, and another seed gives a held-out set from the same distribution.
std::string SyntheticRecord(SyntheticKind kind, uint64_t seed, uint64_t index);

// Records 0..count-1.
std::vector<std::string> GenerateSyntheticDataset(SyntheticKind kind, int64_t count, uint64_t seed);

// Writes GenerateSyntheticDataset(...) to `path`, one record per line. Throws IoError.
void WriteSyntheticDataset(const std::string& path, SyntheticKind kind, int64_t count,
                           uint64_t seed);

}  // namespace bora::train
