// JPEG through libjpeg(-turbo) with its default decompression settings (integer islow IDCT,
// fancy chroma upsampling): byte for byte what Pillow, and so mistral-common, decodes.
// jpeglib.h needs size_t and FILE declared first.
#include <csetjmp>
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image_decoders.h"

namespace bora::image {
namespace {

struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

void OnError(j_common_ptr cinfo) {
  auto* error = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, error->message);
  std::longjmp(error->jump, 1);
}

void OnMessage(j_common_ptr, int) {}  // warnings (corrupt but decodable data) are not fatal

enum class Outcome { kOk, kError, kTooLarge, kUnsupportedColor };

// Runs libjpeg; every object with a destructor lives in the caller (longjmp safety).
Outcome ReadJpeg(std::span<const uint8_t> bytes, const ImageLimits& limits, JpegError& error,
                 std::vector<uint8_t>& pixels, int64_t& width, int64_t& height, int& components) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = OnError;
  error.manager.emit_message = OnMessage;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kError;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = 512L << 20;
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  width = cinfo.image_width;
  height = cinfo.image_height;
  if (width <= 0 || height <= 0 || width > limits.max_side || height > limits.max_side ||
      width * height > limits.max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kTooLarge;
  }
  if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
    cinfo.out_color_space = JCS_RGB;
  } else {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kUnsupportedColor;
  }
  jpeg_start_decompress(&cinfo);
  components = cinfo.output_components;
  const size_t stride = static_cast<size_t>(cinfo.output_width) * components;
  pixels.resize(stride * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels.data() + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return Outcome::kOk;
}

}  // namespace

RgbImage DecodeJpeg(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  JpegError error;
  std::vector<uint8_t> pixels;
  int64_t width = 0, height = 0;
  int components = 0;
  switch (ReadJpeg(bytes, limits, error, pixels, width, height, components)) {
    case Outcome::kOk:
      break;
    case Outcome::kError:
      throw InvalidArgument(std::string("corrupt JPEG image: ") + error.message);
    case Outcome::kTooLarge:
      CheckImageSize("JPEG", width, height, limits);
      throw InvalidArgument("JPEG image too large");
    case Outcome::kUnsupportedColor:
      throw InvalidArgument("CMYK/YCCK JPEG images are not supported; convert the image to RGB");
  }
  RgbImage image{width, height, {}, "jpeg"};
  if (components == 3) {
    image.rgb = std::move(pixels);
  } else {  // greyscale: Pillow's L -> RGBA -> on white keeps each value
    image.rgb.resize(pixels.size() * 3);
    for (size_t i = 0; i < pixels.size(); ++i) image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = pixels[i];
  }
  return image;
}

}  // namespace bora::image
