// Training tokenisation and loss masks from the instruct encoder's per-message segments.
#include "train/data/sample_tokenizer.h"

#include <algorithm>

namespace bora::train {

bool TrainingSample::has_targets() const {
  return std::any_of(mask.begin() + std::min<size_t>(1, mask.size()), mask.end(),
                     [](uint8_t m) { return m != 0; });
}

SampleTokenizer::SampleTokenizer(const tokenizer::Tokenizer& tokenizer)
    : tokenizer_(tokenizer), encoder_(tokenizer, tokenizer::InstructVersion::kV3) {}

tokenizer::InstructRequest SampleTokenizer::InstructRequestFor(const TrainingRecord& record) {
  tokenizer::InstructRequest request;
  request.messages.reserve(record.messages.size());
  for (const auto& message : record.messages) request.messages.push_back(message.message);
  // mistral-finetune's maybe_remove_call_id: the model must not learn to predict random ids.
  if (!request.messages.empty()) {
    auto& last = request.messages.back();
    if (last.role == tokenizer::Role::kAssistant && last.tool_calls) {
      for (auto& call : *last.tool_calls) call.id = "null";
    }
  }
  request.system_prompt = record.system_prompt;
  if (record.has_tools()) request.tools = record.tools;
  return request;
}

TrainingSample SampleTokenizer::Tokenize(const TrainingRecord& record) const {
  TrainingSample sample;
  if (record.kind == RecordKind::kPretrain) {
    sample.tokens.push_back(tokenizer_.bos_id());
    auto text = tokenizer_.Encode(record.text);
    sample.tokens.insert(sample.tokens.end(), text.begin(), text.end());
    sample.tokens.push_back(tokenizer_.eos_id());
    sample.mask.assign(sample.tokens.size(), 1);
    sample.mask[0] = 0;
    return sample;
  }
  const bool only_last = record.only_last || record.has_tools();
  const int last = static_cast<int>(record.messages.size()) - 1;
  for (const auto& segment : encoder_.EncodeInstructSegments(InstructRequestFor(record))) {
    bool target = false;
    if (segment.kind == tokenizer::InstructSegment::Kind::kAssistant) {
      const int index = segment.message_index;
      target = record.messages[index].weight == 1 && (!only_last || index == last);
    }
    sample.tokens.insert(sample.tokens.end(), segment.ids.begin(), segment.ids.end());
    sample.mask.insert(sample.mask.end(), segment.ids.size(), target ? 1 : 0);
  }
  return sample;
}

}  // namespace bora::train
