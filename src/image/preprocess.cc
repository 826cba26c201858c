// Token grid, OpenCV-exact bicubic resize and CLIP normalisation of mistral-common's ImageEncoder.
#include "image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/sha256.h"

namespace bora::image {
namespace {

// Python's round() of a float64 to the nearest integer, ties to even.
int64_t RoundHalfEven(double value) {
  const double floor = std::floor(value);
  const double diff = value - floor;
  if (diff > 0.5) return static_cast<int64_t>(floor) + 1;
  if (diff < 0.5) return static_cast<int64_t>(floor);
  const auto f = static_cast<int64_t>(floor);
  return f % 2 == 0 ? f : f + 1;
}

// Python's floor division for the token count: (side - 1) // unit + 1.
int64_t TokensFor(int64_t side, int64_t unit) {
  const int64_t numerator = side - 1;
  const int64_t quotient = numerator >= 0 ? numerator / unit : -((-numerator + unit - 1) / unit);
  return quotient + 1;
}

// One output index's source taps and OpenCV's cubic weights (float32, A = -0.75).
struct Taps {
  int64_t index[4];
  float weight[4];
};

Taps CubicTaps(int64_t d, double scale, int64_t n) {
  const float f = static_cast<float>((static_cast<double>(d) + 0.5) * scale - 0.5);
  const float s = std::floor(f);
  const float t = f - s;
  constexpr float A = -0.75f;
  Taps taps;
  taps.weight[0] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
  taps.weight[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  taps.weight[2] = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
  taps.weight[3] = 1.f - taps.weight[0] - taps.weight[1] - taps.weight[2];
  const auto base = static_cast<int64_t>(s);
  for (int k = 0; k < 4; ++k) taps.index[k] = std::clamp<int64_t>(base - 1 + k, 0, n - 1);
  return taps;
}

}  // namespace

TokenGrid ComputeTokenGrid(int64_t width, int64_t height, const ImageConfig& config) {
  if (width <= 0 || height <= 0) throw InvalidArgument("image has an empty size");
  const auto max_size = static_cast<double>(config.max_image_size);
  const double ratio = std::max(static_cast<double>(width) / max_size, static_cast<double>(height) / max_size);
  int64_t w = width, h = height;
  if (ratio > 1) {
    // An extreme aspect ratio would round the short side to 0 pixels: keep one (as current
    // mistral-common does).
    w = std::max<int64_t>(RoundHalfEven(static_cast<double>(width) / ratio), 1);
    h = std::max<int64_t>(RoundHalfEven(static_cast<double>(height) / ratio), 1);
  }
  const int64_t unit = config.patch_size * config.spatial_merge_size;
  TokenGrid grid;
  grid.tokens_w = TokensFor(w, unit);
  grid.tokens_h = TokensFor(h, unit);
  if (grid.tokens_w <= 0 || grid.tokens_h <= 0) {
    throw InvalidArgument("image of " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels is too thin: a side shrinks below one pixel when fitted into " +
                          std::to_string(config.max_image_size) + " pixels");
  }
  grid.width = grid.tokens_w * unit;
  grid.height = grid.tokens_h * unit;
  return grid;
}

std::vector<int32_t> ImageTokenIds(const TokenGrid& grid, const ImageConfig& config) {
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>((grid.tokens_w + 1) * grid.tokens_h));
  for (int64_t row = 0; row < grid.tokens_h; ++row) {
    ids.insert(ids.end(), static_cast<size_t>(grid.tokens_w), config.image_token_id);
    ids.push_back(config.image_break_token_id);
  }
  ids.back() = config.image_end_token_id;
  return ids;
}

std::vector<float> ResizeBicubic(std::span<const float> source, int64_t w0, int64_t h0, int64_t w, int64_t h) {
  if (w == w0 && h == h0) return std::vector<float>(source.begin(), source.end());
  constexpr int64_t kChannels = 3;
  // Horizontal pass: every source row to width w.
  const double scale_x = 1.0 / (static_cast<double>(w) / static_cast<double>(w0));
  std::vector<Taps> x_taps(static_cast<size_t>(w));
  for (int64_t x = 0; x < w; ++x) x_taps[x] = CubicTaps(x, scale_x, w0);
  std::vector<float> rows(static_cast<size_t>(h0 * w * kChannels));
  for (int64_t y = 0; y < h0; ++y) {
    const float* in = source.data() + y * w0 * kChannels;
    float* out = rows.data() + y * w * kChannels;
    for (int64_t x = 0; x < w; ++x) {
      const Taps& t = x_taps[x];
      for (int64_t c = 0; c < kChannels; ++c) {
        float sum = in[t.index[0] * kChannels + c] * t.weight[0] + in[t.index[1] * kChannels + c] * t.weight[1];
        sum = sum + in[t.index[2] * kChannels + c] * t.weight[2];
        sum = sum + in[t.index[3] * kChannels + c] * t.weight[3];
        out[x * kChannels + c] = sum;
      }
    }
  }
  // Vertical pass. OpenCV's SSE kernel covers the row's floats in groups of 4 and sums
  // w0 s0 + (w1 s1 + (w2 s2 + w3 s3)); the scalar tail sums left to right.
  const double scale_y = 1.0 / (static_cast<double>(h) / static_cast<double>(h0));
  const int64_t row_floats = w * kChannels;
  const int64_t vector_floats = row_floats / 4 * 4;
  std::vector<float> result(static_cast<size_t>(h * row_floats));
  for (int64_t y = 0; y < h; ++y) {
    const Taps t = CubicTaps(y, scale_y, h0);
    const float* s0 = rows.data() + t.index[0] * row_floats;
    const float* s1 = rows.data() + t.index[1] * row_floats;
    const float* s2 = rows.data() + t.index[2] * row_floats;
    const float* s3 = rows.data() + t.index[3] * row_floats;
    float* out = result.data() + y * row_floats;
    for (int64_t i = 0; i < vector_floats; ++i) {
      const float inner = s2[i] * t.weight[2] + s3[i] * t.weight[3];
      const float middle = s1[i] * t.weight[1] + inner;
      out[i] = s0[i] * t.weight[0] + middle;
    }
    for (int64_t i = vector_floats; i < row_floats; ++i) {
      float sum = s0[i] * t.weight[0] + s1[i] * t.weight[1];
      sum = sum + s2[i] * t.weight[2];
      out[i] = sum + s3[i] * t.weight[3];
    }
  }
  return result;
}

PreprocessedImage PreprocessImage(const RgbImage& image, const ImageConfig& config) {
  PreprocessedImage out;
  out.grid = ComputeTokenGrid(image.width, image.height, config);
  std::vector<float> source(image.rgb.size());
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<float>(image.rgb[i]);
  const std::vector<float> resized = ResizeBicubic(source, image.width, image.height, out.grid.width, out.grid.height);
  const int64_t plane = out.grid.width * out.grid.height;
  out.pixels.resize(static_cast<size_t>(3 * plane));
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      const float y = resized[i * 3 + c] / 255.0f;
      out.pixels[c * plane + i] = static_cast<float>((static_cast<double>(y) - kClipMean[c]) / kClipStd[c]);
    }
  }
  Sha256 hash;
  const int64_t dims[2] = {out.grid.width, out.grid.height};
  hash.Update(std::string_view(reinterpret_cast<const char*>(dims), sizeof(dims)));
  hash.Update(std::string_view(reinterpret_cast<const char*>(out.pixels.data()), out.pixels.size() * 4));
  const Sha256Digest digest = hash.Finish();
  std::memcpy(&out.digest, digest.data(), sizeof(out.digest));
  return out;
}

}  // namespace bora::image
