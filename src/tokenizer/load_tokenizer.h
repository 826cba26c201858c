// Opens a tokenizer file (SentencePiece or Tekken) and decides its instruct version.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/instruct_version.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  VersionChoice version;
  std::string path;
};

// Loads `path`: a name containing "tekken" and ending in ".json" is Tekken (version from
// config.version); anything else is a SentencePiece model whose version comes from the text
// after the last '.' ("v3", "v7m1" → v7) or, for a suffix-less "tokenizer.model" (Hugging
// Face folders), from the control pieces it defines. `override_version` wins when given.
// Throws IoError/FormatError naming the file.
LoadedTokenizer LoadTokenizer(const std::string& path,
                              std::optional<InstructVersion> override_version = std::nullopt);

// As LoadTokenizer, from the file's bytes already in memory: `path` (a file name or path, never
// opened) chooses the backend and version and names the file in messages.
LoadedTokenizer ParseTokenizer(std::string_view bytes, const std::string& path,
                               std::optional<InstructVersion> override_version = std::nullopt);

// The tokenizer file of a model folder (tekken.json, tokenizer.model.vN, tokenizer.model,
// or any other file name Mistral uses), or "" when the folder has none.
std::string FindTokenizerFile(const std::string& folder);

}  // namespace bora::tokenizer
