// GIF through giflib, first frame only, as Pillow opens it: a palette image of the logical
// screen size, pixels outside the frame set to the transparent index (else 0), the frame's
// transparent index given alpha 0, then composited on white.
#include <gif_lib.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image_decoders.h"

namespace bora::image {
namespace {

struct GifSource {
  std::span<const uint8_t> bytes;
  size_t offset = 0;
};

int ReadFromMemory(GifFileType* gif, GifByteType* out, int length) {
  auto* source = static_cast<GifSource*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(std::max(length, 0)), source->bytes.size() - source->offset);
  std::memcpy(out, source->bytes.data() + source->offset, n);
  source->offset += n;
  return static_cast<int>(n);
}

struct GifCloser {
  GifFileType* gif;
  ~GifCloser() {
    int error = 0;
    if (gif != nullptr) DGifCloseFile(gif, &error);
  }
};

[[noreturn]] void Fail(const char* what, int error) {
  const char* text = GifErrorString(error);
  throw InvalidArgument(std::string("corrupt GIF image: ") + what + (text != nullptr ? std::string(" (") + text + ")" : ""));
}

}  // namespace

RgbImage DecodeGif(std::span<const uint8_t> bytes, const ImageLimits& limits) {
  GifSource source{bytes};
  int error = 0;
  GifCloser closer{DGifOpen(&source, ReadFromMemory, &error)};
  GifFileType* gif = closer.gif;
  if (gif == nullptr) Fail("unreadable header", error);
  const int64_t width = gif->SWidth, height = gif->SHeight;
  CheckImageSize("GIF", width, height, limits);
  int transparent = -1;
  while (true) {
    GifRecordType record;
    if (DGifGetRecordType(gif, &record) == GIF_ERROR) Fail("bad record", gif->Error);
    if (record == TERMINATE_RECORD_TYPE) throw InvalidArgument("corrupt GIF image: no frame");
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) Fail("bad extension", gif->Error);
      while (block != nullptr) {
        if (code == GRAPHICS_EXT_FUNC_CODE && block[0] >= 4 && (block[1] & 1) != 0) transparent = block[4];
        if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) Fail("bad extension", gif->Error);
        code = -1;  // only the first sub-block carries the graphics control fields
      }
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif) == GIF_ERROR) Fail("bad image descriptor", gif->Error);
    const GifImageDesc& desc = gif->Image;
    const ColorMapObject* map = desc.ColorMap != nullptr ? desc.ColorMap : gif->SColorMap;
    if (map == nullptr) throw InvalidArgument("corrupt GIF image: no colour table");
    if (desc.Width <= 0 || desc.Height <= 0 || desc.Width > limits.max_side || desc.Height > limits.max_side) {
      throw InvalidArgument("corrupt GIF image: bad frame size");
    }
    // Palette indices of the screen: outside the frame the transparent index, else 0.
    std::vector<uint8_t> indices(static_cast<size_t>(width * height), static_cast<uint8_t>(transparent >= 0 ? transparent : 0));
    std::vector<GifPixelType> line(static_cast<size_t>(desc.Width));
    auto store = [&](int64_t y) {
      const int64_t row = desc.Top + y;
      if (row < 0 || row >= height) return;
      for (int64_t x = 0; x < desc.Width; ++x) {
        const int64_t col = desc.Left + x;
        if (col >= 0 && col < width) indices[row * width + col] = line[x];
      }
    };
    if (desc.Interlace) {
      static constexpr int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass) {
        for (int64_t y = kStart[pass]; y < desc.Height; y += kStep[pass]) {
          if (DGifGetLine(gif, line.data(), desc.Width) == GIF_ERROR) Fail("truncated frame", gif->Error);
          store(y);
        }
      }
    } else {
      for (int64_t y = 0; y < desc.Height; ++y) {
        if (DGifGetLine(gif, line.data(), desc.Width) == GIF_ERROR) Fail("truncated frame", gif->Error);
        store(y);
      }
    }
    RgbImage image{width, height, std::vector<uint8_t>(indices.size() * 3), "gif"};
    for (size_t i = 0; i < indices.size(); ++i) {
      const int index = indices[i];
      const GifColorType color = index < map->ColorCount ? map->Colors[index] : GifColorType{0, 0, 0};
      const uint8_t alpha = index == transparent ? 0 : 255;
      image.rgb[3 * i] = BlendOnWhite(color.Red, alpha);
      image.rgb[3 * i + 1] = BlendOnWhite(color.Green, alpha);
      image.rgb[3 * i + 2] = BlendOnWhite(color.Blue, alpha);
    }
    return image;
  }
}

}  // namespace bora::image
