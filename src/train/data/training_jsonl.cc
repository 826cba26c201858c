// Line-by-line JSONL reading with per-line validation, tokenisation and error counting.
#include "train/data/training_jsonl.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace bora::train {
namespace {

bool IsBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

bool IsFunctionCalling(const TrainingRecord& record) {
  if (record.has_tools()) return true;
  return std::any_of(record.messages.begin(), record.messages.end(), [](const auto& message) {
    return message.message.role == tokenizer::Role::kTool ||
           (message.message.tool_calls && !message.message.tool_calls->empty());
  });
}

}  // namespace

void ValidationReport::Merge(const ValidationReport& other, size_t max_errors) {
  lines += other.lines;
  valid += other.valid;
  invalid += other.invalid;
  pretrain += other.pretrain;
  instruct += other.instruct;
  function_calling += other.function_calling;
  tokens += other.tokens;
  target_tokens += other.target_tokens;
  for (const auto& error : other.errors) {
    if (errors.size() >= max_errors) break;
    errors.push_back(error);
  }
}

tokenizer::OrderedJson ValidationReport::ToJson() const {
  tokenizer::OrderedJson json = tokenizer::OrderedJson::object();
  json["lines"] = lines;
  json["valid"] = valid;
  json["invalid"] = invalid;
  json["pretrain"] = pretrain;
  json["instruct"] = instruct;
  json["function_calling"] = function_calling;
  json["tokens"] = tokens;
  json["target_tokens"] = target_tokens;
  json["errors"] = errors;
  return json;
}

std::string ValidationReport::Summary() const {
  std::string text = std::to_string(valid) + " valid, " + std::to_string(invalid) + " invalid";
  if (tokens > 0) {
    text +=
        ", " + std::to_string(tokens) + " tokens (" + std::to_string(target_tokens) + " targets)";
  }
  if (!errors.empty()) text += " (first: " + errors.front() + ")";
  return text;
}

void ReadTrainingJsonl(std::string_view bytes, const std::string& name,
                       const SampleTokenizer* tokenizer, const ValidationOptions& options,
                       ValidationReport& report, std::vector<TrainingSample>* samples) {
  const std::string file = tokenizer::ReplaceInvalidUtf8(name);  // reports are JSON (UTF-8)
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  int64_t line_number = 0;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (IsBlank(line)) continue;
    if (line.back() == '\r') line.remove_suffix(1);
    ++report.lines;
    const RecordLocation where{file, line_number};
    try {
      TrainingRecord record = ParseTrainingRecord(line, where);
      if (tokenizer != nullptr) {
        TrainingSample sample;
        try {
          sample = tokenizer->Tokenize(record);
        } catch (const Error& error) {
          throw RecordError(file, line_number, "", std::string("cannot tokenise: ") + error.what());
        }
        report.tokens += static_cast<int64_t>(sample.tokens.size());
        report.target_tokens += std::count(sample.mask.begin(), sample.mask.end(), uint8_t{1});
        if (samples != nullptr) samples->push_back(std::move(sample));
      }
      ++report.valid;
      if (record.kind == RecordKind::kPretrain) {
        ++report.pretrain;
      } else if (IsFunctionCalling(record)) {
        ++report.function_calling;
      } else {
        ++report.instruct;
      }
    } catch (const RecordError& error) {
      if (!options.skip_invalid) throw;
      ++report.invalid;
      if (report.errors.size() < options.max_errors)
        report.errors.push_back(tokenizer::ReplaceInvalidUtf8(error.what()));
    }
  }
}

ValidationReport ValidateTrainingFile(std::string_view bytes, const std::string& name,
                                      const SampleTokenizer* tokenizer, size_t max_errors) {
  ValidationReport report;
  ValidationOptions options;
  options.skip_invalid = true;
  options.max_errors = max_errors;
  ReadTrainingJsonl(bytes, name, tokenizer, options, report, nullptr);
  return report;
}

}  // namespace bora::train
