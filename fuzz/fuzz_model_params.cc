// libFuzzer target: params.json (Mistral) and config.json (Hugging Face) text must parse and
// validate, or fail with a typed error; never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "formats/model_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool hugging_face : {false, true}) {
    try {
      const bora::formats::ModelParams params = hugging_face ? bora::formats::ParseHfConfig(text, "config.json")
                                                             : bora::formats::ParseMistralParams(text, "params.json");
      bora::formats::ValidateModelParams(params, "fuzz");
      (void)bora::formats::MistralParamsJson(params);
    } catch (const bora::Error&) {
    }
  }
  return 0;
}
