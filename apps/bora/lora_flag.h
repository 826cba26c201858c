// The `--lora DIR` flag of generate and chat: the adapter for a model folder and the instruct
// version it was trained with (which then renders chat prompts).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/lora_adapter.h"
#include "tokenizer/instruct_version.h"

namespace bora::app {

struct LoraFlag {
  std::shared_ptr<const model::LoraAdapter> adapter;  // null without --lora
  std::optional<tokenizer::InstructVersion> version;  // set when the adapter names one
};

// Loads `lora_dir` against `model_dir`'s params; an empty `lora_dir` gives an empty flag.
LoraFlag LoadLoraFlag(const std::string& lora_dir, const std::string& model_dir);

}  // namespace bora::app
