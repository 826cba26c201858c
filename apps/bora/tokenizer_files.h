// Carrying a model's tokenizer to a folder bora writes (quantize, merge-lora).
#pragma once

#include <filesystem>
#include <string>

namespace bora::app {

// Copies the tokenizer files of `model` (a folder: tokenizer.model*, tekken.json,
// tokenizer.json, tokenizer_config.json, generation_config.json) into `to`; for a GGUF file,
// writes its vocabulary as the equivalent Mistral tokenizer file (tokenizer.model.vN or
// tekken.json). Returns the number of files written; throws IoError when one cannot be.
int CopyTokenizerFiles(const std::string& model, const std::filesystem::path& to);

}  // namespace bora::app
