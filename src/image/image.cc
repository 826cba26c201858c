// Format sniffing, size guards and the RGB-on-white conversion shared by the decoders.
#include "image/image.h"

#include <cstring>

#include "base/error.h"
#include "image/image_decoders.h"

namespace bora::image {

std::string SniffImageFormat(std::span<const uint8_t> bytes) {
  auto starts = [&](const char* magic, size_t n, size_t offset = 0) {
    return bytes.size() >= offset + n && std::memcmp(bytes.data() + offset, magic, n) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "png";
  if (starts("\xff\xd8\xff", 3)) return "jpeg";
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "webp";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "gif";
  return "";
}

void CheckImageSize(const char* format, int64_t width, int64_t height, const ImageLimits& limits) {
  if (width <= 0 || height <= 0) {
    throw InvalidArgument(std::string(format) + " image has an empty size " + std::to_string(width) + "x" +
                          std::to_string(height));
  }
  if (width > limits.max_side || height > limits.max_side || width * height > limits.max_pixels) {
    throw InvalidArgument(std::string(format) + " image of " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels exceeds the limit (" + std::to_string(limits.max_side) + " a side, " +
                          std::to_string(limits.max_pixels) + " pixels)");
  }
}

void CompositeRgbaOnWhite(std::span<const uint8_t> rgba, std::span<uint8_t> rgb) {
  const size_t pixels = rgba.size() / 4;
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t a = rgba[4 * i + 3];
    for (int c = 0; c < 3; ++c) rgb[3 * i + c] = BlendOnWhite(rgba[4 * i + c], a);
  }
}

RgbImage DecodeImage(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  if (static_cast<int64_t>(bytes.size()) > limits.max_bytes) {
    throw InvalidArgument("image of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                          std::to_string(limits.max_bytes) + " bytes");
  }
  const std::string format = SniffImageFormat(bytes);
  if (format == "png") return DecodePng(bytes, limits);
  if (format == "jpeg") return DecodeJpeg(bytes, limits);
  if (format == "webp") return DecodeWebp(bytes, limits);
  if (format == "gif") return DecodeGif(bytes, limits);
  throw InvalidArgument("not a PNG, JPEG, WebP or GIF image (unrecognised file signature)");
}

}  // namespace bora::image
