// libFuzzer target: a GGUF file image (header, metadata, tensor infos, data) must be accepted or
// rejected with a typed error, never crash, overflow or hang; accepted headers also go through
// the typed accessors, the llama/mistral3 hyper-parameter table and the tensor-name mapping.
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/gguf_model.h"

namespace {

// Reads every metadata value through the accessor of its type (errors are fine, crashes not).
void ReadAllValues(const bora::formats::GgufHeader& header) {
  using bora::formats::GgufValueType;
  for (const auto& [key, value] : header.metadata) {
    try {
      switch (value.type) {
        case GgufValueType::kString: (void)header.GetString(key); break;
        case GgufValueType::kBool: (void)header.GetBool(key); break;
        case GgufValueType::kArray:
          if (value.element_type == GgufValueType::kString) {
            (void)header.GetStringArray(key);
          } else {
            (void)header.GetNumberArray(key);
          }
          break;
        default:
          (void)header.GetFloat(key);
          (void)header.GetUint(key);
          break;
      }
    } catch (const bora::Error&) {
    }
  }
  for (const bora::formats::GgufTensorInfo& info : header.tensors) {
    (void)info.NumElements();
    try {
      (void)bora::formats::GgufToNativeName(info.name, header.file_name);
    } catch (const bora::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const bora::formats::GgufHeader header = bora::formats::ParseGgufHeader({data, size}, "fuzz.gguf");
    ReadAllValues(header);
    (void)bora::formats::GgufDecodedBytes(header, true);
    (void)bora::formats::GgufDecodedBytes(header, false);
    const bora::formats::ModelParams params = bora::formats::GgufModelParams(header);
    (void)params;
  } catch (const bora::Error&) {
  }
  return 0;
}
