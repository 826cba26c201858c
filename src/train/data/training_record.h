// One line of a mistral-finetune JSONL file (pretrain, instruct or function calling), parsed and
// validated with errors that name the file, the line and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/python_json.h"

namespace bora::train {

// A record that is not valid training data. what() is "FILE:LINE: FIELD: PROBLEM" (the field
// part is left out when the whole line is at fault), e.g.
// `data.jsonl:17: messages[2].role: expected 'system', 'user', 'assistant' or 'tool', got 'bot'`.
class RecordError : public InvalidArgument {
 public:
  RecordError(std::string file, int64_t line, std::string field, std::string problem);

  const std::string& file() const { return file_; }
  int64_t line() const { return line_; }  // 1-based
  const std::string& field() const { return field_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string file_;
  int64_t line_;
  std::string field_;
  std::string problem_;
};

// Where a record comes from, for messages.
struct RecordLocation {
  std::string file;  // as the user named it
  int64_t line = 0;  // 1-based line number
};

enum class RecordKind {
  kPretrain,  // {"text": ...} or {"content": ...}
  kInstruct,  // {"messages": [...]} or {"interactions": [...]}, with or without tools
};

// An instruct message and its training weight.
struct TrainingMessage {
  tokenizer::Message message;  // role user, assistant or tool (system messages are lifted out)
  int weight = 1;              // assistant only: 0 = never a training target ("weight": 0)
};

struct TrainingRecord {
  RecordKind kind = RecordKind::kPretrain;
  std::string text;  // pretrain: the document
  // Instruct: the conversation as written, without its system message; the last one is an
  // assistant message.
  std::vector<TrainingMessage> messages;
  // The top-level "system_prompt" or the single system message (never both).
  std::optional<std::string> system_prompt;
  std::vector<tokenizer::ToolDefinition> tools;  // "tools"/"available_tools"; empty: none
  bool only_last = false;                        // as written (tools force it when tokenising)

  bool has_tools() const { return !tools.empty(); }
};

// Deepest JSON nesting a record may have (tool parameter schemas included).
inline constexpr int kMaxRecordJsonDepth = 64;

// Parses one JSONL line (without its line break) and validates it as mistral-finetune does
// (its record rules, then mistral-common's v3 validation in finetuning mode). A line with
// "messages"/"interactions" is instruct data, otherwise "text"/"content" makes it pretraining
// data. Throws RecordError; never anything else for any input bytes.
TrainingRecord ParseTrainingRecord(std::string_view line, const RecordLocation& where);

// As above for an already parsed JSON value.
TrainingRecord ParseTrainingRecordValue(const tokenizer::OrderedJson& value,
                                        const RecordLocation& where);

}  // namespace bora::train
