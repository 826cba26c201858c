// Writes the image_decode fuzz seeds (small PNG, JPEG, WebP and GIF files in every mode the
// decoders convert) with the same Debian libraries bora decodes with. Not part of the build:
//   g++ -std=c++20 -O1 fuzz/make_image_seeds.cc -lpng -ljpeg -lwebp -lgif -o /tmp/make_image_seeds
//   /tmp/make_image_seeds fuzz/corpus/image_decode
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

namespace {

std::string dir;

std::vector<unsigned char> Pattern(int w, int h, int channels) {
  std::vector<unsigned char> out(static_cast<size_t>(w * h * channels));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) out[(y * w + x) * channels + c] = static_cast<unsigned char>((x * 37 + y * 11 + c * 80) & 255);
  return out;
}

void Png(const char* name, int w, int h, int color, int depth, bool interlace, bool trns) {
  FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, depth, color, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
    png_set_PLTE(png, info, palette, 4);
    if (trns) {
      png_byte alpha[2] = {0, 128};
      png_set_tRNS(png, info, alpha, 2, nullptr);
    }
  } else if (trns) {
    png_color_16 value{};
    value.gray = 3;
    value.red = 3;
    png_set_tRNS(png, info, nullptr, 0, &value);
  }
  png_write_info(png, info);
  const int channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<unsigned char> pixels = Pattern(w, h, static_cast<int>(row_bytes / w + 1));
  std::vector<unsigned char> row(row_bytes);
  const int passes = interlace ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; ++pass) {
    for (int y = 0; y < h; ++y) {
      for (size_t i = 0; i < row_bytes; ++i) row[i] = pixels[(y * row_bytes + i) % pixels.size()] & (depth < 8 || color == PNG_COLOR_TYPE_PALETTE ? 0x33 : 0xff);
      png_write_row(png, row.data());
    }
  }
  (void)channels;
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

void Jpeg(const char* name, int w, int h, bool gray, bool progressive) {
  FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = w;
  cinfo.image_height = h;
  cinfo.input_components = gray ? 1 : 3;
  cinfo.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 85, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<unsigned char> pixels = Pattern(w, h, gray ? 1 : 3);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pixels.data() + cinfo.next_scanline * w * (gray ? 1 : 3);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(f);
}

void Webp(const char* name, int w, int h, bool alpha, bool lossless) {
  std::vector<unsigned char> pixels = Pattern(w, h, alpha ? 4 : 3);
  uint8_t* out = nullptr;
  size_t size = alpha ? (lossless ? WebPEncodeLosslessRGBA(pixels.data(), w, h, w * 4, &out)
                                  : WebPEncodeRGBA(pixels.data(), w, h, w * 4, 80, &out))
                      : (lossless ? WebPEncodeLosslessRGB(pixels.data(), w, h, w * 3, &out)
                                  : WebPEncodeRGB(pixels.data(), w, h, w * 3, 80, &out));
  FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
  std::fwrite(out, 1, size, f);
  std::fclose(f);
  WebPFree(out);
}

void Gif(const char* name, int w, int h, bool transparent, bool interlace) {
  int error = 0;
  GifFileType* gif = EGifOpenFileName((dir + "/" + name).c_str(), false, &error);
  GifColorType colors[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {200, 200, 200}};
  ColorMapObject* map = GifMakeMapObject(4, colors);
  EGifPutScreenDesc(gif, w, h, 2, 3, map);
  if (transparent) {
    GraphicsControlBlock gcb{};
    gcb.TransparentColor = 1;
    unsigned char ext[4];
    const size_t len = EGifGCBToExtension(&gcb, ext);
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext);
  }
  // A frame smaller than the screen, offset, so the canvas outside it shows too.
  const int fw = w - 2, fh = h - 1;
  EGifPutImageDesc(gif, 1, 1, fw, fh, interlace, nullptr);
  std::vector<GifPixelType> line(fw);
  for (int y = 0; y < fh; ++y) {
    for (int x = 0; x < fw; ++x) line[x] = static_cast<GifPixelType>((x + y) % 4);
    EGifPutLine(gif, line.data(), fw);
  }
  EGifCloseFile(gif, &error);
  GifFreeMapObject(map);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  dir = argv[1];
  Png("rgb.png", 7, 5, PNG_COLOR_TYPE_RGB, 8, false, false);
  Png("rgba.png", 6, 4, PNG_COLOR_TYPE_RGB_ALPHA, 8, true, false);
  Png("gray16.png", 5, 3, PNG_COLOR_TYPE_GRAY, 16, false, true);
  Png("gray2.png", 9, 2, PNG_COLOR_TYPE_GRAY, 2, false, false);
  Png("gray_alpha.png", 4, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false);
  Png("palette_trns.png", 8, 3, PNG_COLOR_TYPE_PALETTE, 4, false, true);
  Png("rgb16.png", 3, 3, PNG_COLOR_TYPE_RGB, 16, false, false);
  Jpeg("rgb.jpg", 17, 9, false, false);
  Jpeg("gray.jpg", 8, 8, true, false);
  Jpeg("progressive.jpg", 20, 12, false, true);
  Webp("lossy.webp", 10, 6, false, false);
  Webp("alpha_lossless.webp", 5, 7, true, true);
  Gif("plain.gif", 6, 5, false, false);
  Gif("transparent_interlaced.gif", 9, 9, true, true);
  return 0;
}
