// libFuzzer target: bytes as a SentencePiece model (serialized ModelProto) must load through
// bora's loader, which validates what libsentencepiece trusts, or fail with a typed error; a
// model that loads must encode fixed texts to in-range ids whose decoding and streaming agree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "tokenizer/load_tokenizer.h"
#include "tokenizer/output_parser.h"
#include "tokenizer_fuzz_common.h"

namespace {

using bora::fuzz::Require;
using bora::tokenizer::SpecialTokenPolicy;

void Exercise(const bora::tokenizer::LoadedTokenizer& loaded) {
  const bora::tokenizer::Tokenizer& tokenizer = *loaded.tokenizer;
  Require(tokenizer.vocab_size() > 0, "empty vocabulary");
  static constexpr std::string_view kTexts[] = {
      "Hello, world! The quick brown fox 123 jumps.\n\n  indented\tline",
      " leading and  double  spaces ",
      "[INST] not a control token [/INST] <s></s>",
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 \xE2\x96\x81x "
      "\xEF\xBC\xA1",
      "bad \xFF\xC0\x80 utf8 \xED\xA0\x80 \xF0\x9F tail",
      "",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbb"};
  std::vector<int32_t> all;
  for (const std::string_view text : kTexts) {
    const std::vector<int32_t> ids = bora::fuzz::EncodeChecked(tokenizer, text);
    bora::fuzz::CheckStreaming(tokenizer, ids, SpecialTokenPolicy::kIgnore, text,
                               /*require_equal=*/false);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  // Every piece once (control, unknown, byte and text pieces), then the encoded texts.
  std::vector<int32_t> pieces;
  for (int32_t id = 0; id < tokenizer.vocab_size() && id < 4096; ++id) pieces.push_back(id);
  pieces.insert(pieces.end(), all.begin(), all.end());
  for (const auto policy :
       {SpecialTokenPolicy::kIgnore, SpecialTokenPolicy::kKeep, SpecialTokenPolicy::kRaise}) {
    bora::fuzz::CheckStreaming(tokenizer, pieces, policy, "\x03\x07\x01", /*require_equal=*/false);
  }
  for (int32_t id = 0; id < tokenizer.vocab_size() && id < 4096; ++id) {
    Require(bora::fuzz::IsValidUtf8(tokenizer.IdToPiece(id)), "IdToPiece is not UTF-8");
  }
  try {
    (void)bora::tokenizer::ParseAssistantOutput(tokenizer, loaded.version.version, pieces,
                                                [] { return std::string("abcdefghi"); });
  } catch (const bora::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view proto(reinterpret_cast<const char*>(data), size);
  try {
    Exercise(bora::tokenizer::ParseTokenizer(proto, "fuzz-tokenizer.model"));
  } catch (const bora::Error&) {
  }
  return 0;
}
