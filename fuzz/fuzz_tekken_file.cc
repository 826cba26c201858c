// libFuzzer target: bytes as a tekken.json (as they are, and with the 256 single-byte ranks put
// before their vocab so that small inputs reach merges, specials and the pattern) must load
// through bora's loader or fail with a typed error; a file that loads must encode fixed texts to
// in-range ids whose decoding and streaming agree. Both pattern policies run: the allowlist and
// the bounded matcher that a trusted pattern gets.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"
#include "tokenizer/output_parser.h"
#include "tokenizer/tekken_tokenizer.h"
#include "tokenizer_fuzz_common.h"

namespace {

using bora::fuzz::Require;
using bora::tokenizer::SpecialTokenPolicy;

// The input's JSON with 256 single-byte vocab entries (ranks 0..255) put first and the input's
// own integer ranks moved up by 256; "" when the input is not an object with a "vocab" array.
std::string WithByteRanks(std::string_view text) {
  using Json = nlohmann::ordered_json;
  Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return "";
  const auto vocab = root.find("vocab");
  if (vocab == root.end() || !vocab->is_array()) return "";
  Json expanded = Json::array();
  static constexpr const char* kBase64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int byte = 0; byte < 256; ++byte) {
    const std::string encoded = {kBase64[byte >> 2], kBase64[(byte & 3) << 4], '=', '='};
    expanded.push_back({{"rank", byte}, {"token_bytes", encoded}, {"token_str", nullptr}});
  }
  for (Json& entry : *vocab) {
    if (entry.is_object()) {
      const auto rank = entry.find("rank");
      if (rank != entry.end() && rank->is_number_integer() && rank->get<int64_t>() >= 0 &&
          rank->get<int64_t>() < (int64_t{1} << 40)) {
        *rank = rank->get<int64_t>() + 256;
      }
    }
    expanded.push_back(std::move(entry));
  }
  *vocab = std::move(expanded);
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void Exercise(const bora::tokenizer::LoadedTokenizer& loaded) {
  const bora::tokenizer::Tokenizer& tokenizer = *loaded.tokenizer;
  Require(tokenizer.vocab_size() > tokenizer.num_special_tokens(), "empty vocabulary");
  static constexpr std::string_view kTexts[] = {
      "Hello, world! The quick brown fox 123 jumps.\n\n  indented\tline",
      "[INST] not a control token [/INST] <s></s>",
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 \xE2\x96\x81x",
      "bad \xFF\xC0\x80 utf8 \xED\xA0\x80 \xF0\x9F tail",
      "",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbb"};
  std::vector<int32_t> all;
  for (const std::string_view text : kTexts) {
    const std::vector<int32_t> ids = bora::fuzz::EncodeChecked(tokenizer, text);
    bora::fuzz::CheckStreaming(tokenizer, ids, SpecialTokenPolicy::kIgnore, text);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  // Specials and partial UTF-8 between texts: every policy, and the assistant-output parser.
  for (int32_t id = 0; id < tokenizer.vocab_size() && id < 40; ++id) all.push_back(id);
  for (const auto policy :
       {SpecialTokenPolicy::kIgnore, SpecialTokenPolicy::kKeep, SpecialTokenPolicy::kRaise}) {
    bora::fuzz::CheckStreaming(tokenizer, all, policy, "\x03\x07\x01");
  }
  try {
    (void)bora::tokenizer::ParseAssistantOutput(tokenizer, loaded.version.version, all,
                                                [] { return std::string("abcdefghi"); });
  } catch (const bora::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const std::string& file : {std::string(text), WithByteRanks(text)}) {
    if (file.empty()) continue;
    try {
      Exercise(bora::tokenizer::ParseTokenizer(file, "fuzz-tekken.json"));
    } catch (const bora::Error&) {
    }
    // Unknown patterns are refused above (rule T3); the bounded PCRE2 matcher behind them is
    // still fuzzed with the policy that trusts the file's pattern.
    try {
      bora::tokenizer::LoadedTokenizer loaded;
      auto tekken = bora::tokenizer::ParseTekkenTokenizer(
          file, "fuzz-tekken.json", bora::tokenizer::TekkenPatternPolicy::kTrustFile);
      loaded.version = {bora::tokenizer::ParseInstructVersion(tekken->config_version()), "fuzz"};
      loaded.tokenizer = std::move(tekken);
      Exercise(loaded);
    } catch (const bora::Error&) {
    }
  }
  return 0;
}
