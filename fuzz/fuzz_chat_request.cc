// libFuzzer target: a chat request body (JSON) goes through parsing, validation and
// mistral-common's normalisation for every instruct version and both validation modes; bad
// input is a typed error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/chat_validation.h"
#include "tokenizer/instruct_encoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bora::tokenizer;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const OrderedJson body = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  for (ValidationMode mode : {ValidationMode::kServing, ValidationMode::kTest}) {
    try {
      if (IsFimRequestBody(body)) {
        (void)ParseFimRequest(body);
        continue;
      }
      // Image chunks decode under small limits (a crafted header cannot make a huge buffer).
      ImageRequestLimits limits;
      limits.image.max_pixels = 1 << 20;
      limits.image.max_bytes = 1 << 20;
      const ChatRequest request = ParseChatRequest(body, mode, limits);
      for (InstructVersion version : {InstructVersion::kV1, InstructVersion::kV2, InstructVersion::kV3,
                                      InstructVersion::kV7, InstructVersion::kV11, InstructVersion::kV13}) {
        try {
          ValidateChatRequest(request, version, mode);  // what EncodeChat does first
          (void)NormalizeChatRequest(request, version);
        } catch (const bora::Error&) {
        }
      }
    } catch (const bora::Error&) {
    }
  }
  return 0;
}
