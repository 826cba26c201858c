// libFuzzer target: a safetensors file image (8-byte header length, JSON header, data) must be
// accepted or rejected with a typed error, never crash, overflow or hang.
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/error.h"
#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    bora::formats::SafetensorsHeader header = bora::formats::ParseSafetensorsHeader({data, size}, "fuzz.safetensors");
    (void)header;
  } catch (const bora::Error&) {
  }
  return 0;
}
