// Rotary position tables (plain RoPE, YaRN) and the llama-4 query temperature.
#include "model/rope_table.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace bora::model {

std::vector<float> RopeInverseFrequencies(const formats::ModelParams& params) {
  const int64_t d = params.head_dim;
  const int64_t half = d / 2;
  const float theta = static_cast<float>(params.rope_theta);
  // pos_freqs[i] = theta ** (2i / d), exponent and power in float32.
  std::vector<float> pos_freqs(half);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
    pos_freqs[i] = static_cast<float>(std::pow(static_cast<double>(theta), static_cast<double>(exponent)));
  }
  std::vector<float> inv_freq(half);
  if (!params.yarn) {
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = 1.0f / pos_freqs[i];
    return inv_freq;
  }
  const formats::YarnParams& y = *params.yarn;
  // Correction range in double (Python floats), as find_correction_range.
  const double base = params.rope_theta;
  const double original = static_cast<double>(y.original_max_positions);
  auto correction_dim = [&](double rotations) {
    return static_cast<double>(d) * std::log(original / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
  };
  double low = correction_dim(y.beta_fast), high = correction_dim(y.beta_slow);
  if (y.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d - 1));
  if (low == high) high += 0.001;
  const float factor = static_cast<float>(y.factor);
  const float low_f = static_cast<float>(low), span = static_cast<float>(high - low);
  for (int64_t i = 0; i < half; ++i) {
    const float ramp = std::clamp((static_cast<float>(i) - low_f) / span, 0.0f, 1.0f);
    const float extrapolation_factor = 1.0f - ramp;
    const float interpolation = 1.0f / (factor * pos_freqs[i]);
    const float extrapolation = 1.0f / pos_freqs[i];
    inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return inv_freq;
}

std::vector<float> RopeTable(const formats::ModelParams& params, int64_t positions) {
  const int64_t half = params.head_dim / 2;
  const std::vector<float> inv_freq = RopeInverseFrequencies(params);
  const float magnitude = params.yarn ? static_cast<float>(params.yarn->attention_factor) : 1.0f;
  std::vector<float> table(static_cast<size_t>(positions * half * 2));
  for (int64_t pos = 0; pos < positions; ++pos) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos) * inv_freq[i];
      float cos_value = static_cast<float>(std::cos(static_cast<double>(angle)));
      float sin_value = static_cast<float>(std::sin(static_cast<double>(angle)));
      if (magnitude != 1.0f) {
        cos_value *= magnitude;
        sin_value *= magnitude;
      }
      table[(pos * half + i) * 2] = cos_value;
      table[(pos * half + i) * 2 + 1] = sin_value;
    }
  }
  return table;
}

float QueryScale(const formats::ModelParams& params, int64_t position) {
  if (!HasQueryScale(params)) return 1.0f;
  const float beta = static_cast<float>(params.llama4_scaling->beta);
  const float original = static_cast<float>(params.llama4_scaling->original_max_positions);
  const float blocks = std::floor(static_cast<float>(position) / original);
  return 1.0f + beta * std::log(1.0f + blocks);
}

}  // namespace bora::model
