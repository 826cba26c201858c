// libFuzzer target: a GGUF image whose tokenizer.ggml.* metadata is turned into a SentencePiece
// or Tekken tokenizer must give a typed error or a tokenizer that encodes and decodes, never a
// crash, overflow or hang.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const bora::formats::GgufHeader header = bora::formats::ParseGgufHeader({data, size}, "fuzz.gguf");
    const bora::tokenizer::GgufTokenizer tokenizer = bora::tokenizer::LoadGgufTokenizer(header);
    const std::vector<int32_t> ids = tokenizer.tokenizer->Encode("Hello [INST] wörld\n  12");
    (void)tokenizer.tokenizer->Decode(ids);
  } catch (const bora::Error&) {
  }
  return 0;
}
