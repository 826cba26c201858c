// RMSNorm of one row.
#include "kernels/rmsnorm.h"

#include <cmath>

namespace bora::kernels {

void RmsNorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double sum_squares = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  float mean = static_cast<float>(sum_squares / static_cast<double>(n));
  float inverse_rms = 1.0f / std::sqrt(mean + eps);
  // Normalise first, then scale by the weight, as mistral-inference does (`_norm(x) * weight`).
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * inverse_rms) * weight[i];
}

}  // namespace bora::kernels
