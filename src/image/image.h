// Decoded images as the vision path takes them: 8-bit RGB after Pillow's RGB-on-white conversion,
// the limits that guard decoding, and the decoder entry point (PNG, JPEG, WebP, GIF first frame).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bora::image {

// Guards applied before any pixel buffer is allocated (decompression bombs).
struct ImageLimits {
  int64_t max_bytes = 20 << 20;         // encoded file size
  int64_t max_pixels = 25'000'000;      // width * height as the header states it
  int64_t max_side = 16384;             // either dimension
};

// Pixels [height, width, 3] uint8, row-major, RGB order.
struct RgbImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> rgb;
  std::string format;  // "png", "jpeg", "webp", "gif"
};

// The encoded format `bytes` start with ("png", "jpeg", "webp", "gif"), or "" when none.
std::string SniffImageFormat(std::span<const uint8_t> bytes);

// Decodes one image file and converts it to RGB as mistral-common's _convert_to_rgb does with
// Pillow: RGB stays as decoded; every other mode (grey, palette, with or without alpha or a tRNS
// transparency) goes through RGBA and is composited on opaque white with Pillow's integer blend.
// JPEG uses libjpeg(-turbo)'s default decompression (islow IDCT, fancy upsampling), as Pillow.
// Throws InvalidArgument naming what is wrong (unknown format, corrupt data, too large).
RgbImage DecodeImage(std::span<const uint8_t> bytes, const ImageLimits& limits = {});

// Pillow's paste-with-alpha on white for one channel value: (255*(255-a) + c*a + 128) with
// (v + (v >> 8)) >> 8.
inline uint8_t BlendOnWhite(uint8_t c, uint8_t a) {
  const uint32_t v = 255u * (255u - a) + uint32_t{c} * a + 128u;
  return static_cast<uint8_t>((v + (v >> 8)) >> 8);
}

// Converts RGBA rows [pixels, 4] to RGB on white [pixels, 3].
void CompositeRgbaOnWhite(std::span<const uint8_t> rgba, std::span<uint8_t> rgb);

// Checks a header's size against `limits`; throws InvalidArgument naming the format.
void CheckImageSize(const char* format, int64_t width, int64_t height, const ImageLimits& limits);

}  // namespace bora::image
