// Recognises Mistral tokenizer files in a folder and reads their vocabulary size without
// building a tokenizer (for `make-model --tokenizer` and model-folder checks).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bora::formats {

// True for file names Mistral uses for tokenizers: tekken.json, tokenizer.model[.vN[mM]],
// and mistral-common's *.model.vN names.
bool IsTokenizerFileName(const std::string& file_name);

// Vocabulary size of a tokenizer file: the number of pieces of a SentencePiece model, or
// Tekken's config.default_vocab_size. Throws FormatError/IoError naming the file.
int64_t TokenizerVocabSize(const std::string& path);

}  // namespace bora::formats
