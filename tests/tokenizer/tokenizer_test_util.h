// Shared helpers for tokenizer tests: loading the shared tokenizer files and JSON fixtures.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/load_tokenizer.h"
#include "tokenizer/python_json.h"

namespace bora::testing {

// Loads ../shared/tokenizers/NAME (cached per process: the Tekken file takes a moment).
const tokenizer::LoadedTokenizer& SharedTokenizer(const std::string& shared,
                                                  const std::string& name);

// A copy of the shared Tekken file with `version` and a `special_tokens` list that puts
// [ARGS] at 32, [CALL_ID] at 33 and [THINK]/[/THINK] at 34/35 (ids 0..19 as the default table),
// as v11/v13 files ship; written once per process into a temp folder.
const tokenizer::LoadedTokenizer& TekkenWithToolTokens(const std::string& shared,
                                                       const std::string& version);

std::string ReadText(const std::string& path);
tokenizer::OrderedJson ReadJson(const std::string& path);

}  // namespace bora::testing
