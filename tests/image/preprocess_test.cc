// Image decoding and mistral-common preprocessing against tiny-pixtral's goldens (rgb_u8 exact,
// pixels within 1e-5, token ids identical), plus the rounding and limit rules on their own.
#include "image/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "image/image.h"
#include "testdata.h"

namespace bora::image {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

ImageConfig TinyConfig() {
  ImageConfig config;
  config.patch_size = 16;
  config.max_image_size = 128;
  return config;
}

TEST(ImagePreprocess, MatchesMistralCommonOnTinyPixtralImages) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/reference-models/tiny-pixtral";
  const auto golden = nlohmann::json::parse(ReadAll(dir + "/golden/golden.json"));
  int checked = 0;
  for (const auto& [name, entry] : golden.at("images").items()) {
    SCOPED_TRACE(name);
    const std::string file = ReadAll(dir + "/" + entry.at("file").get<std::string>());
    const RgbImage rgb = DecodeImage(Bytes(file));
    const std::string rgb_golden = ReadAll(dir + "/golden/" + entry.at("rgb_u8").at("file").get<std::string>());
    ASSERT_EQ(rgb.rgb.size(), rgb_golden.size());
    EXPECT_EQ(std::memcmp(rgb.rgb.data(), rgb_golden.data(), rgb_golden.size()), 0) << "decoded RGB differs";

    const PreprocessedImage image = PreprocessImage(rgb, TinyConfig());
    EXPECT_EQ(image.grid.tokens_w, entry.at("tokens_wh")[0].get<int64_t>());
    EXPECT_EQ(image.grid.tokens_h, entry.at("tokens_wh")[1].get<int64_t>());
    EXPECT_EQ(image.grid.width, entry.at("resized_wh")[0].get<int64_t>());
    EXPECT_EQ(image.grid.height, entry.at("resized_wh")[1].get<int64_t>());
    EXPECT_EQ(ImageTokenIds(image.grid, TinyConfig()), entry.at("image_tokens").get<std::vector<int32_t>>());

    const std::string pixels = ReadAll(dir + "/golden/" + entry.at("pixels").at("file").get<std::string>());
    ASSERT_EQ(pixels.size(), image.pixels.size() * 4);
    const auto* expected = reinterpret_cast<const float*>(pixels.data());
    double worst = 0;
    size_t exact = 0;
    for (size_t i = 0; i < image.pixels.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(image.pixels[i] - expected[i])));
      exact += image.pixels[i] == expected[i];
    }
    EXPECT_LE(worst, 1e-5);
    // The resize reproduces OpenCV's order of operations: every value is bit-exact.
    EXPECT_EQ(exact, image.pixels.size()) << "max abs " << worst;
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(ImagePreprocess, GridRoundsHalfToEvenLikePython) {
  ImageConfig config = TinyConfig();
  // 256x193 fitted into 128: 96.5 rounds to 96 (half-up would give 97 and a 7th row).
  TokenGrid grid = ComputeTokenGrid(256, 193, config);
  EXPECT_EQ(grid.tokens_w, 8);
  EXPECT_EQ(grid.tokens_h, 6);
  grid = ComputeTokenGrid(20, 150, config);  // 17x128
  EXPECT_EQ(grid.tokens_w, 2);
  EXPECT_EQ(grid.tokens_h, 8);
  grid = ComputeTokenGrid(1, 1, config);
  EXPECT_EQ(grid.tokens_w, 1);
  EXPECT_EQ(grid.height, 16);
  config.spatial_merge_size = 2;
  grid = ComputeTokenGrid(100, 37, config);
  EXPECT_EQ(grid.tokens_w, 4);
  EXPECT_EQ(grid.width, 128);
  grid = ComputeTokenGrid(1, 100000, TinyConfig());  // the thin side keeps one pixel, one token
  EXPECT_EQ(grid.tokens_w, 1);
  EXPECT_EQ(grid.tokens_h, 8);
  EXPECT_THROW(ComputeTokenGrid(0, 10, TinyConfig()), InvalidArgument);
}

TEST(ImagePreprocess, ResizeSameSizeIsACopyAndConstantsStayConstant) {
  std::vector<float> flat(5 * 7 * 3, 42.0f);
  const std::vector<float> up = ResizeBicubic(flat, 5, 7, 16, 32);
  for (float v : up) EXPECT_NEAR(v, 42.0f, 1e-4);
  EXPECT_EQ(ResizeBicubic(flat, 5, 7, 5, 7), flat);
}

TEST(ImageDecode, RefusesUnknownTruncatedAndOversizedImages) {
  const std::string text = "hello, not an image";
  EXPECT_THROW(DecodeImage(Bytes(text)), InvalidArgument);
  const std::string png_magic = "\x89PNG\r\n\x1a\n";
  EXPECT_THROW(DecodeImage(Bytes(png_magic)), InvalidArgument);
  const std::string jpeg_magic = "\xff\xd8\xff\xe0";
  EXPECT_THROW(DecodeImage(Bytes(jpeg_magic)), InvalidArgument);
  EXPECT_THROW(DecodeImage(Bytes(std::string("GIF89a\x01\x00\x01\x00", 10))), InvalidArgument);
  EXPECT_THROW(DecodeImage(Bytes(std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16))), InvalidArgument);
}

TEST(ImageDecode, SizeLimitsApplyBeforeDecoding) {
  BORA_REQUIRE_SHARED(shared);
  const std::string file = ReadAll(shared + "/reference-models/tiny-pixtral/images/big_256x193.png");
  ImageLimits limits;
  limits.max_pixels = 1000;
  try {
    DecodeImage(Bytes(file), limits);
    FAIL() << "expected a size error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("256x193"), std::string::npos) << e.what();
  }
  limits = ImageLimits{};
  limits.max_bytes = 100;
  EXPECT_THROW(DecodeImage(Bytes(file), limits), InvalidArgument);
}

// Every mode the decoders convert (the fuzz seeds: PNG rgb/rgba/grey 2- and 16-bit/grey+alpha/
// palette+tRNS, JPEG baseline/grey/progressive, WebP lossy/lossless+alpha, GIF with and without
// transparency, interlaced) decodes to RGB of its stated size.
TEST(ImageDecode, EveryFormatAndModeDecodes) {
  int decoded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(BORA_SOURCE_DIR) + "/fuzz/corpus/image_decode")) {
    SCOPED_TRACE(entry.path().string());
    const std::string file = ReadAll(entry.path().string());
    const RgbImage image = DecodeImage(Bytes(file));
    EXPECT_EQ(static_cast<int64_t>(image.rgb.size()), image.width * image.height * 3);
    EXPECT_EQ(image.format, SniffImageFormat(Bytes(file)));
    ++decoded;
  }
  EXPECT_GE(decoded, 14);
}

TEST(ImageDecode, GifFirstFrameOnItsScreenLikePillow) {
  const std::string dir = std::string(BORA_SOURCE_DIR) + "/fuzz/corpus/image_decode/";
  // 6x5 screen, a 4x4 frame at (1, 1), no transparency: outside the frame is palette index 0.
  RgbImage plain = DecodeImage(Bytes(ReadAll(dir + "plain.gif")));
  ASSERT_EQ(plain.width, 6);
  EXPECT_EQ(plain.rgb[0], 255);
  EXPECT_EQ(plain.rgb[1], 0);
  EXPECT_EQ(plain.rgb[2], 0);
  // Transparent index 1: outside the frame and every index-1 pixel composite to white.
  RgbImage clear = DecodeImage(Bytes(ReadAll(dir + "transparent_interlaced.gif")));
  EXPECT_EQ(clear.rgb[0], 255);
  EXPECT_EQ(clear.rgb[1], 255);
  EXPECT_EQ(clear.rgb[2], 255);
  const int64_t frame_origin = (1 * clear.width + 1) * 3;  // index (0 + 0) % 4 = 0: red
  EXPECT_EQ(clear.rgb[frame_origin], 255);
  EXPECT_EQ(clear.rgb[frame_origin + 1], 0);
  const int64_t second = (1 * clear.width + 2) * 3;  // index 1: transparent -> white
  EXPECT_EQ(clear.rgb[second + 1], 255);
  EXPECT_EQ(clear.rgb[second + 2], 255);
}

TEST(ImageDecode, PillowBlendOnWhite) {
  EXPECT_EQ(BlendOnWhite(0, 0), 255);
  EXPECT_EQ(BlendOnWhite(17, 255), 17);
  for (int c = 0; c < 256; ++c) EXPECT_EQ(BlendOnWhite(static_cast<uint8_t>(c), 255), c);
  EXPECT_EQ(BlendOnWhite(0, 128), 127);  // 255*127 + 128 = 32513 -> 127
}

}  // namespace
}  // namespace bora::image
