// Threaded RMSNorm rows and SwiGLU.
#include "ops/elementwise.h"

#include <algorithm>

#include "kernels/rmsnorm.h"

namespace bora::ops {
namespace {

// Elements per SwiGLU step (stack scratch) and the least work worth a fork-join.
constexpr int64_t kSwiGluChunk = 256;
constexpr int64_t kMinParallelElements = 32768;

void SwiGluRange(const kernels::KernelSet& k, const float* gate, const float* up, float* out, int64_t begin,
                 int64_t end) {
  float e[kSwiGluChunk];
  for (int64_t start = begin; start < end; start += kSwiGluChunk) {
    const int64_t count = std::min(kSwiGluChunk, end - start);
    for (int64_t i = 0; i < count; ++i) e[i] = -gate[start + i];
    k.exp_inplace(e, count);
    for (int64_t i = 0; i < count; ++i) out[start + i] = gate[start + i] / (1.0f + e[i]) * up[start + i];
  }
}

}  // namespace

void RmsNormRows(ComputeContext& ctx, const float* x, const float* weight, float* out, int64_t rows,
                 int64_t dim, float eps) {
  if (rows * dim < kMinParallelElements) {
    for (int64_t t = 0; t < rows; ++t) kernels::RmsNorm(x + t * dim, weight, out + t * dim, dim, eps);
    return;
  }
  ctx.pool().ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) kernels::RmsNorm(x + t * dim, weight, out + t * dim, dim, eps);
  });
}

void SwiGlu(ComputeContext& ctx, const float* gate, const float* up, float* out, int64_t n) {
  const kernels::KernelSet& k = ctx.kernels();
  if (n < kMinParallelElements) {
    SwiGluRange(k, gate, up, out, 0, n);
    return;
  }
  const int64_t chunks = (n + kSwiGluChunk - 1) / kSwiGluChunk;
  ctx.pool().ParallelFor(chunks, [&](int64_t begin, int64_t end, int) {
    SwiGluRange(k, gate, up, out, begin * kSwiGluChunk, std::min(n, end * kSwiGluChunk));
  });
}

}  // namespace bora::ops
