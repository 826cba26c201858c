// mistral-common's ImageEncoder: the token grid of an image, OpenCV's float32 bicubic resize to
// it, CLIP normalisation, and the [IMG]/[IMG_BREAK]/[IMG_END] token layout.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "image/image.h"

namespace bora::image {

// The tokenizer's image settings (Tekken `image` block, or the SentencePiece m1 rule).
struct ImageConfig {
  int64_t patch_size = 16;
  int64_t max_image_size = 1024;
  int64_t spatial_merge_size = 1;
  int32_t image_token_id = 10;
  int32_t image_break_token_id = 12;
  int32_t image_end_token_id = 13;
};

// CLIP's per-channel mean and std (RGB), which mistral-common normalises with.
inline constexpr std::array<double, 3> kClipMean = {0.48145466, 0.4578275, 0.40821073};
inline constexpr std::array<double, 3> kClipStd = {0.26862954, 0.26130258, 0.27577711};

struct TokenGrid {
  int64_t tokens_w = 0, tokens_h = 0;  // [IMG] tokens per row, rows
  int64_t width = 0, height = 0;       // resized pixels: tokens * patch * merge
};

// ratio = max(W0/M, H0/M); above 1 the size is divided by it and rounded half to even (Python's
// round, at least 1 pixel), then each side takes ceil(side / (patch * merge)) tokens. Throws
// InvalidArgument for an empty size.
TokenGrid ComputeTokenGrid(int64_t width, int64_t height, const ImageConfig& config);

// The image's token ids: ([IMG] * tokens_w + [IMG_BREAK]) * tokens_h, the last one [IMG_END].
std::vector<int32_t> ImageTokenIds(const TokenGrid& grid, const ImageConfig& config);

// cv2.resize(INTER_CUBIC) of a float32 [h0, w0, 3] image to [h, w, 3], bit for bit as OpenCV
// 4.6's x86-64 build computes it (separable, horizontal first, clamped taps, A = -0.75, its
// vertical summation order); the same size is a copy.
std::vector<float> ResizeBicubic(std::span<const float> source, int64_t w0, int64_t h0, int64_t w, int64_t h);

// An image ready for the vision encoder.
struct PreprocessedImage {
  TokenGrid grid;
  std::vector<float> pixels;   // [3, height, width] CLIP-normalised, RGB
  uint64_t digest = 0;         // hash of the pixels and size: keys prefix-cache blocks
  int64_t image_tokens() const { return grid.tokens_w * grid.tokens_h; }  // [IMG] count
};

// rgb -> grid -> resize from the original pixels -> x/255 -> (x - mean) / std (in float64).
PreprocessedImage PreprocessImage(const RgbImage& image, const ImageConfig& config);

}  // namespace bora::image
