// libFuzzer target: any bytes through bora's wrapper around each image decoder (libpng,
// libjpeg-turbo, libwebp, giflib) and, when they decode, mistral-common's preprocessing; bad
// input is a typed error, never a crash, a leak or an allocation beyond the limits.
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/error.h"
#include "image/image.h"
#include "image/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bora::image;
  ImageLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_pixels = 1 << 20;  // a decompression bomb is refused before its pixels exist
  limits.max_side = 4096;
  try {
    const RgbImage image = DecodeImage(std::span<const uint8_t>(data, size), limits);
    if (static_cast<int64_t>(image.rgb.size()) != image.width * image.height * 3) __builtin_trap();
    ImageConfig config;
    config.patch_size = 8;
    config.max_image_size = 48;
    const PreprocessedImage pre = PreprocessImage(image, config);
    if (static_cast<int64_t>(pre.pixels.size()) != 3 * pre.grid.width * pre.grid.height) __builtin_trap();
  } catch (const bora::Error&) {
  }
  return 0;
}
