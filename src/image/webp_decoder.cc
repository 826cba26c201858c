// WebP through libwebp (animated files: the first frame through libwebpdemux's animation
// decoder, as Pillow reads them); images with alpha are composited on white.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image_decoders.h"

namespace bora::image {

RgbImage DecodeWebp(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK) {
    throw InvalidArgument("corrupt WebP image: unreadable header");
  }
  CheckImageSize("WebP", features.width, features.height, limits);
  RgbImage image{features.width, features.height, {}, "webp"};
  const size_t pixels = static_cast<size_t>(features.width) * features.height;
  std::vector<uint8_t> rgba;
  if (features.has_animation) {
    WebPData data{bytes.data(), bytes.size()};
    WebPAnimDecoderOptions options;
    WebPAnimDecoderOptionsInit(&options);
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPAnimDecoder* decoder = WebPAnimDecoderNew(&data, &options);
    if (decoder == nullptr) throw InvalidArgument("corrupt WebP image: unreadable animation");
    WebPAnimInfo info;
    uint8_t* frame = nullptr;
    int timestamp = 0;
    const bool ok = WebPAnimDecoderGetInfo(decoder, &info) && info.canvas_width == static_cast<uint32_t>(features.width) &&
                    info.canvas_height == static_cast<uint32_t>(features.height) &&
                    WebPAnimDecoderGetNext(decoder, &frame, &timestamp);
    if (ok) rgba.assign(frame, frame + pixels * 4);
    WebPAnimDecoderDelete(decoder);
    if (!ok) throw InvalidArgument("corrupt WebP image: the first frame does not decode");
  } else if (features.has_alpha) {
    rgba.resize(pixels * 4);
    if (WebPDecodeRGBAInto(bytes.data(), bytes.size(), rgba.data(), rgba.size(), features.width * 4) == nullptr) {
      throw InvalidArgument("corrupt WebP image: data does not decode");
    }
  } else {
    image.rgb.resize(pixels * 3);
    if (WebPDecodeRGBInto(bytes.data(), bytes.size(), image.rgb.data(), image.rgb.size(), features.width * 3) ==
        nullptr) {
      throw InvalidArgument("corrupt WebP image: data does not decode");
    }
    return image;
  }
  image.rgb.resize(pixels * 3);
  CompositeRgbaOnWhite(rgba, image.rgb);
  return image;
}

}  // namespace bora::image
