// Everything the trainer needs from `--data/--eval/--eval-split`: the validated sources, the
// infinite training stream and the packed eval sequences.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "train/data/data_sources.h"
#include "train/data/training_stream.h"

namespace bora::train {

struct TrainingDataOptions {
  std::string data;              // "SRC[:WEIGHT][,SRC[:WEIGHT]...]" (required)
  std::string eval;              // "SRC[,SRC...]": held-out data (weights ignored); "" for none
  double eval_split = 0;         // with no `eval`: share of every source held out, in [0, 1)
  int64_t seq_len = 2048;        // tokens per packed sequence
  uint64_t seed = 0;             // data order and split
  ValidationOptions validation;  // skip_invalid: report and skip bad lines instead of failing
};

struct TrainingData {
  TrainingStream train;
  // The eval samples packed in order in finite mode (last one padded); empty without eval.
  std::vector<PackedSequence> eval;
  int64_t eval_samples = 0;
  ValidationReport train_report;  // all training sources (before the split)
  ValidationReport eval_report;   // the --eval sources (empty for a split)
};

// Loads, validates and tokenises (v3 instruct format) every source up front, then splits or
// loads the eval set and builds the stream. Throws RecordError for the first invalid line
// (unless validation.skip_invalid), IoError for unreadable paths, InvalidArgument for bad
// options (both eval and eval_split, a source without targets...).
TrainingData LoadTrainingData(const TrainingDataOptions& options,
                              const tokenizer::Tokenizer& tokenizer);

}  // namespace bora::train
