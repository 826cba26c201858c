// Golden checks of a vision-language reference folder (tiny-pixtral): decoded RGB, preprocessed
// pixels and token ids of each image, the encoder's intermediate outputs and embeddings, and the
// logits of the multimodal prompts.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "vision/vision_encoder.h"

namespace bora::vision {

// Tolerances of tiny-pixtral/README.md (float32 compute).
constexpr double kPixelsTolerance = 1e-5;
constexpr double kEncoderTolerance = 1e-4;     // patch_embeds, vision_out
constexpr double kEmbeddingTolerance = 1e-5;   // adapter output

struct GoldenImage {
  std::string name;
  std::string file;  // relative to the reference folder
  int64_t tokens_w = 0, tokens_h = 0, width = 0, height = 0;
  std::vector<int32_t> image_tokens;
  std::vector<uint8_t> rgb_u8;             // [H0, W0, 3]
  image::PreprocessedImage pixels;         // the golden pixels with their grid
  std::vector<float> patch_embeds, vision_out, embeddings;
};

struct VisionGoldenSet {
  image::ImageConfig config;
  std::map<std::string, GoldenImage> images;
  model::GoldenSet text;                                // the prompts' tokens and logits
  std::vector<std::vector<std::string>> case_images;    // per case: image names in order
};

// True when `golden_dir`/golden.json describes images (an "images" and an "image_config").
bool IsVisionGoldenDir(const std::string& golden_dir);

// Reads golden.json and every .bin it names; throws FormatError/IoError.
VisionGoldenSet ReadVisionGoldenSet(const std::string& golden_dir);

struct ImageCheck {
  std::string name;
  bool rgb_exact = false;    // our decoder's RGB equals rgb_u8 byte for byte
  bool tokens_match = false; // grid, resized size and token ids
  double pixels = 0;         // max abs, our preprocessing of the file vs the golden pixels
  double patch_embeds = 0, vision_out = 0, embeddings = 0;  // from the golden pixels
  bool passed() const {
    return rgb_exact && tokens_match && pixels <= kPixelsTolerance && patch_embeds <= kEncoderTolerance &&
           vision_out <= kEncoderTolerance && embeddings <= kEmbeddingTolerance;
  }
};

// Decodes and preprocesses the image file of `golden` (under `ref_dir`) and runs the encoder on
// the golden pixels. `embeddings` receives our embeddings [n_img, dim].
ImageCheck CheckGoldenImage(ops::ComputeContext& ctx, const VisionEncoder& encoder, const std::string& ref_dir,
                            const GoldenImage& golden, const image::ImageConfig& config,
                            std::vector<float>& embeddings);

// The case's [IMG] rows: the embeddings of its images in order, from `embeddings_by_name`.
void AttachCaseImages(model::GoldenCase& golden_case, const std::vector<std::string>& names,
                      const std::map<std::string, std::vector<float>>& embeddings_by_name, int32_t image_token);

}  // namespace bora::vision
