// Reading and validating whole training JSONL files: line splitting, per-line records, and the
// report (counts and first errors) that `--skip-invalid` and file uploads give.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/python_json.h"
#include "train/data/sample_tokenizer.h"
#include "train/data/training_record.h"

namespace bora::train {

struct ValidationOptions {
  // Count invalid lines and keep going instead of throwing the first error.
  bool skip_invalid = false;
  // How many error messages a report keeps (the counts are always complete).
  size_t max_errors = 20;
};

// What validating one or more JSONL files found. Blank lines are ignored, not counted.
struct ValidationReport {
  int64_t lines = 0;    // non-blank lines read
  int64_t valid = 0;    // records that passed validation (and tokenisation, when tokenised)
  int64_t invalid = 0;  // lines rejected
  int64_t pretrain = 0, instruct = 0, function_calling = 0;  // kinds of the valid records
  int64_t tokens = 0;               // tokens of the valid records (0 when not tokenised)
  int64_t target_tokens = 0;        // of which training targets
  std::vector<std::string> errors;  // the first errors, "FILE:LINE: FIELD: PROBLEM"

  // Adds `other`'s counts and as many of its errors as max_errors allows.
  void Merge(const ValidationReport& other, size_t max_errors);
  // {"lines", "valid", "invalid", "pretrain", "instruct", "function_calling", "tokens",
  //  "target_tokens", "errors": [...]}
  tokenizer::OrderedJson ToJson() const;
  // One line for a terminal: "12 valid, 1 invalid (first: ...)".
  std::string Summary() const;
};

// Reads `bytes`, the content of the JSONL file `name` (a leading UTF-8 BOM, CRLF line ends and
// blank lines are accepted). Every other line is parsed and validated; with a tokenizer, valid
// records are tokenised too and appended to `samples` (when not null) in file order. Invalid
// lines are added to `report` when options.skip_invalid, else the first is thrown as
// RecordError.
void ReadTrainingJsonl(std::string_view bytes, const std::string& name,
                       const SampleTokenizer* tokenizer, const ValidationOptions& options,
                       ValidationReport& report, std::vector<TrainingSample>* samples);

// The report for a whole uploaded file (what the jobs API runs on upload): never throws for
// bad content, whatever the bytes. With a tokenizer the token counts are filled in.
ValidationReport ValidateTrainingFile(std::string_view bytes, const std::string& name,
                                      const SampleTokenizer* tokenizer = nullptr,
                                      size_t max_errors = 20);

}  // namespace bora::train
