// Dot products of an f32 activation row with a weight row (scalar reference).
#include "kernels/dot.h"

#include "base/float16.h"

namespace bora::kernels {
namespace {

constexpr int kLanes = 8;

template <typename LoadWeight>
float DotLanes(const float* x, int64_t n, LoadWeight load) {
  float lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) lanes[lane] += load(i + lane) * x[i + lane];
  }
  for (; i < n; ++i) lanes[i % kLanes] += load(i) * x[i];
  // Pairwise reduction of the lanes.
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int lane = 0; lane < width; ++lane) lanes[lane] += lanes[lane + width];
  }
  return lanes[0];
}

}  // namespace

float DotF32(const float* a, const float* b, int64_t n) {
  return DotLanes(b, n, [a](int64_t i) { return a[i]; });
}

float DotBf16F32(const uint16_t* w, const float* x, int64_t n) {
  return DotLanes(x, n, [w](int64_t i) { return Bf16ToF32(w[i]); });
}

float DotF16F32(const uint16_t* w, const float* x, int64_t n) {
  return DotLanes(x, n, [w](int64_t i) { return F16ToF32(w[i]); });
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace bora::kernels
