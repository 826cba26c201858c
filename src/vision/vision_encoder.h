// The Pixtral vision encoder and vision-language adapter (mistral-inference semantics): turns one
// preprocessed image into the embeddings that replace its [IMG] tokens in the decoder's input.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/model_params.h"
#include "image/preprocess.h"
#include "model/transformer.h"
#include "ops/compute_context.h"
#include "vision/vision_weights.h"

namespace bora::vision {

// Intermediate outputs of one image, for golden checks.
struct VisionTrace {
  std::vector<float> patch_embeds;  // [patches, D] the patch convolution
  std::vector<float> vision_out;    // [patches, D] after the transformer
};

class VisionEncoder {
 public:
  // Loads the vision tower of a Mistral-native folder whose decoder is `text_dim` wide.
  // `dtype` (none: as stored, computed in f32) converts its matrices like the decoder's.
  static std::unique_ptr<VisionEncoder> Load(const formats::ModelFolder& folder, int64_t text_dim,
                                             std::optional<DType> dtype, ops::ComputeContext& ctx);

  const formats::VisionParams& params() const { return params_; }
  int64_t output_dim() const { return text_dim_; }
  // Rows Encode writes for an image: one per [IMG] token (patches after merging).
  int64_t OutputRows(const image::PreprocessedImage& image) const;

  // out: [OutputRows(image), output_dim()]. Each image attends only to itself (bidirectional
  // within the image, never across images). Throws InvalidArgument when the image does not
  // fit the encoder (size not a multiple of patch x merge, or more patches a side than the
  // RoPE table built from image_size).
  void Encode(ops::ComputeContext& ctx, const image::PreprocessedImage& image, std::span<float> out,
              VisionTrace* trace = nullptr) const;

 private:
  VisionEncoder(formats::VisionParams params, int64_t text_dim, VisionWeights weights);
  void Attention(ops::ComputeContext& ctx, const VisionLayerWeights& layer, int64_t rows, int64_t cols,
                 const float* normed, float* out) const;

  formats::VisionParams params_;
  int64_t text_dim_;
  VisionWeights weights_;
  int64_t rope_side_;                 // image_size / patch_size positions per side
  std::vector<float> rope_cos_sin_;   // [rope_side, rope_side, hd/2, 2]: row angles then column angles
};

// The vision tower of a loaded decoder when its folder has one bora reads: Mistral-native with a
// vision_encoder block, one process (not under tensor parallelism). Null otherwise, with a note
// on stderr saying why when the folder has a tower bora does not load. `dtype` as LoadOptions.
std::unique_ptr<VisionEncoder> LoadVisionFor(model::Transformer& model, std::optional<DType> dtype, bool sharded);

// Checks that `config` (the tokenizer's image settings) drives `encoder`: the same [IMG] id and
// patch x merge size. Throws FormatError naming both.
void CheckImageConfig(const VisionEncoder& encoder, const image::ImageConfig& config, const std::string& where);

}  // namespace bora::vision
