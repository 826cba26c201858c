// Rotary position embedding on interleaved pairs.
#include "kernels/rope.h"

namespace bora::kernels {

void RopeInterleaved(float* x, const float* cos_sin, int64_t n_heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  for (int64_t head = 0; head < n_heads; ++head) {
    float* pairs = x + head * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      float c = cos_sin[2 * i];
      float s = cos_sin[2 * i + 1];
      float re = pairs[2 * i];
      float im = pairs[2 * i + 1];
      // (re + i im) * (c + i s)
      pairs[2 * i] = re * c - im * s;
      pairs[2 * i + 1] = re * s + im * c;
    }
  }
}

}  // namespace bora::kernels
