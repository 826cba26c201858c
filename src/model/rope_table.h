// Rotary position tables: inverse frequencies (plain or YaRN), the cos/sin table of every
// position of the context, and the llama-4 query temperature per position.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/model_params.h"

namespace bora::model {

// [head_dim/2] float32 inverse frequencies: theta^(-2i/d), or YaRN's blend of theta^(-2i/d) and
// theta^(-2i/d) / factor (transformers' _compute_yarn_parameters, float32 throughout).
std::vector<float> RopeInverseFrequencies(const formats::ModelParams& params);

// [positions, head_dim/2, 2] = (cos, sin) of position * inv_freq, float32 as torch.polar, times
// YaRN's attention factor (1 without YaRN).
std::vector<float> RopeTable(const formats::ModelParams& params, int64_t positions);

// The llama-4 temperature of the query at 0-based absolute position p:
// 1 + beta * ln(1 + floor(p / L)) in float32 (vLLM's _get_llama_4_attn_scale); 1 without it.
float QueryScale(const formats::ModelParams& params, int64_t position);

// True when some position has a query scale other than 1 (the model has llama_4_scaling).
inline bool HasQueryScale(const formats::ModelParams& params) {
  return params.llama4_scaling.has_value() && params.llama4_scaling->beta != 0;
}

}  // namespace bora::model
