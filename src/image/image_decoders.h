// One decoder per encoded format, each a thin wrapper over the Debian library that reads it.
#pragma once

#include <span>

#include "image/image.h"

namespace bora::image {

RgbImage DecodePng(std::span<const uint8_t> bytes, const ImageLimits& limits);
RgbImage DecodeJpeg(std::span<const uint8_t> bytes, const ImageLimits& limits);
RgbImage DecodeWebp(std::span<const uint8_t> bytes, const ImageLimits& limits);
RgbImage DecodeGif(std::span<const uint8_t> bytes, const ImageLimits& limits);

}  // namespace bora::image
