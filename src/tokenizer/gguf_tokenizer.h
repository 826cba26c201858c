// Tokenizers from GGUF metadata (tokenizer.ggml.*): SentencePiece vocabularies ("llama") and
// Tekken ("gpt2" with pre "tekken"), rebuilt into bora's own exact backends, and the instruct
// version chosen from the vocabulary's control tokens and the chat template's name or text.
#pragma once

#include <memory>
#include <string>

#include "formats/gguf.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

struct GgufTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  VersionChoice version;
  // The same tokenizer as a standalone Mistral tokenizer file (written beside converted
  // weights): "tokenizer.model.vN" (SentencePiece ModelProto) or "tekken.json".
  std::string file_name;
  std::string file_bytes;
};

// Builds the tokenizer a GGUF file carries. Throws FormatError for inconsistent metadata
// (array lengths, ids, merges that are not pairs of tokens), Unsupported for tokenizer models
// bora does not run (naming them), and FormatError when the file has no tokenizer at all.
GgufTokenizer LoadGgufTokenizer(const formats::GgufHeader& header);

// True when the header carries tokenizer.ggml.model.
bool GgufHasTokenizer(const formats::GgufHeader& header);

}  // namespace bora::tokenizer
