// The Pixtral vision tower's weights (encoder, optional pre-projector norm and patch merger,
// vision-language adapter), mapped from a Mistral-native folder and optionally converted.
#pragma once

#include <optional>
#include <vector>

#include "base/dtype.h"
#include "formats/model_folder.h"
#include "ops/compute_context.h"
#include "ops/pack_weights.h"
#include "tensor/matrix_view.h"

namespace bora::vision {

struct VisionLayerWeights {
  std::vector<float> attention_norm;  // [D]
  std::vector<float> ffn_norm;        // [D]
  MatrixView wq, wk, wv, wo;          // [D, D]
  MatrixView w1, w3;                  // [I, D]
  MatrixView w2;                      // [D, I]
};

struct VisionWeights {
  formats::CheckpointTensors tensors;  // owns the mappings
  MatrixView patch_conv;               // [D, 3*P*P]: Conv2d weight [D, 3, P, P] flattened
  std::vector<float> ln_pre;           // [D]
  std::vector<VisionLayerWeights> layers;
  std::vector<float> pre_mm_norm;      // [D] or empty
  MatrixView merging_layer;            // [D, D*s*s] (patch merger) or empty
  MatrixView adapter_in;               // [dim, D]
  std::vector<float> adapter_in_bias;  // [dim] or empty
  MatrixView adapter_out;              // [dim, dim]
  std::vector<float> adapter_out_bias;
  std::vector<ops::OwnedMatrix> owned;  // converted matrices
};

// Maps and checks every vision tensor the params describe (names and shapes; any tensor left
// over is refused by name). `text_dim`: the decoder's width the adapter projects to.
VisionWeights LoadVisionWeights(const formats::ModelFolder& folder, int64_t text_dim);

// Converts the matrices to `target` (kBF16, kQ8, kQ4; kF32 keeps them as stored). Matrices whose
// width is not a multiple of the 32-column block stay as stored.
void ConvertVisionWeights(VisionWeights& weights, DType target, ops::ComputeContext& ctx);

}  // namespace bora::vision
