// PNG through libpng's classic API, converted to RGB the way Pillow opens and mistral-common
// converts each PNG mode (no gamma or colour-space correction: Pillow applies none).
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image_decoders.h"

namespace bora::image {
namespace {

struct PngSource {
  std::span<const uint8_t> bytes;
  size_t offset = 0;
  char error[200] = {};
};

void ReadFromMemory(png_structp png, png_bytep out, png_size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (length > source->bytes.size() - source->offset) png_error(png, "truncated file");
  std::memcpy(out, source->bytes.data() + source->offset, length);
  source->offset += length;
}

void OnError(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->error, sizeof(source->error), "%s", message);
  png_longjmp(png, 1);
}

void OnWarning(png_structp, png_const_charp) {}

// What the rows hold after libpng's transforms.
enum class Layout { kRgb, kRgba, kGray16 };

// Runs libpng; every object with a destructor lives in the caller (longjmp safety: `rows` and
// `pointers` are only resized here). On failure returns false with source.error set.
bool ReadPng(PngSource& source, const ImageLimits& limits, std::vector<uint8_t>& rows, png_uint_32& width,
             png_uint_32& height, Layout& layout, int& trns_gray, char* size_error,
             std::vector<png_bytep>& pointers) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, OnError, OnWarning);
  if (png == nullptr) {
    std::snprintf(source.error, sizeof(source.error), "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &source, ReadFromMemory);
  png_set_user_limits(png, static_cast<png_uint_32>(limits.max_side), static_cast<png_uint_32>(limits.max_side));
  png_set_chunk_malloc_max(png, 8 << 20);
  png_read_info(png, info);
  width = png_get_image_width(png, info);
  height = png_get_image_height(png, info);
  if (int64_t{width} * height > limits.max_pixels) {
    std::snprintf(size_error, 200, "x");
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  const bool has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  trns_gray = -1;
  if (color == PNG_COLOR_TYPE_GRAY && depth == 16) {
    // Pillow mode "I": converting to RGB clips each 16-bit value to 0..255.
    layout = Layout::kGray16;
    if (has_trns) {
      png_color_16p trans = nullptr;
      png_get_tRNS(png, info, nullptr, nullptr, &trans);
      if (trans != nullptr) trns_gray = trans->gray;
    }
    png_set_swap(png);  // host (little-endian) 16-bit values
  } else {
    png_set_strip_16(png);  // Pillow's ";16B" raw modes keep the high byte
    png_set_packing(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    // RGB keeps its mode in Pillow (a tRNS colour is ignored by mistral-common); other modes
    // honour it.
    if (has_trns && color != PNG_COLOR_TYPE_RGB) png_set_tRNS_to_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    const bool alpha = (color & PNG_COLOR_MASK_ALPHA) != 0 || (has_trns && color != PNG_COLOR_TYPE_RGB);
    layout = color == PNG_COLOR_TYPE_RGB ? Layout::kRgb : Layout::kRgba;
    if (!alpha && layout == Layout::kRgba) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  const size_t expected = layout == Layout::kRgb ? 3 * size_t{width} : layout == Layout::kRgba ? 4 * size_t{width}
                                                                                               : 2 * size_t{width};
  if (row_bytes != expected) png_error(png, "unexpected row layout");
  rows.resize(row_bytes * height);
  pointers.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) pointers[y] = rows.data() + y * row_bytes;
  png_read_image(png, pointers.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

RgbImage DecodePng(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  PngSource source{bytes};
  std::vector<uint8_t> rows;
  png_uint_32 width = 0, height = 0;
  Layout layout = Layout::kRgb;
  int trns_gray = -1;
  char size_error[200] = {};
  std::vector<png_bytep> pointers;
  if (!ReadPng(source, limits, rows, width, height, layout, trns_gray, size_error, pointers)) {
    if (size_error[0] != 0) CheckImageSize("PNG", width, height, limits);
    throw InvalidArgument(std::string("corrupt PNG image: ") + source.error);
  }
  CheckImageSize("PNG", width, height, limits);
  RgbImage image{width, height, {}, "png"};
  const size_t pixels = size_t{width} * height;
  if (layout == Layout::kRgb) {
    image.rgb = std::move(rows);
  } else if (layout == Layout::kRgba) {
    image.rgb.resize(pixels * 3);
    CompositeRgbaOnWhite(rows, image.rgb);
  } else {
    image.rgb.resize(pixels * 3);
    for (size_t i = 0; i < pixels; ++i) {
      uint16_t v;
      std::memcpy(&v, rows.data() + 2 * i, 2);
      const uint8_t c = static_cast<uint8_t>(v > 255 ? 255 : v);
      const uint8_t a = static_cast<int>(v) == trns_gray ? 0 : 255;
      image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = BlendOnWhite(c, a);
    }
  }
  return image;
}

}  // namespace bora::image
