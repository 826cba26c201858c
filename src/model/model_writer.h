// Writes a loaded (and possibly converted) model as a Mistral-native model folder:
// params.json + consolidated.safetensors, packed q8/q4 matrices as `name.q8|q4` U8 planes with
// `name.q8_scales|q4_scales` F16 planes, mmap-able as they are (what `bora quantize` produces).
#pragma once

#include <string>

#include "formats/model_params.h"
#include "model/weights.h"

namespace bora::model {

// Writes into `out_dir` (created if missing); files appear complete or not at all. With
// `source` (the folder the model came from, with a vision encoder) its vision tower's tensors are
// copied as they are stored (native names and RoPE order) and params.json gets the
// vision_encoder block.
void WriteModelFolder(ModelWeights& weights, const formats::ModelParams& params, const std::string& out_dir,
                      const formats::ModelFolder* source = nullptr);

}  // namespace bora::model
