// Row-wise and element-wise ops of the decoder spread over the compute context's threads:
// RMSNorm of many rows and SwiGLU with the ISA's vectorised exp.
#pragma once

#include <cstdint>

#include "ops/compute_context.h"

namespace bora::ops {

// out[t] = RmsNorm(x[t]) for t < rows; x, out: [rows, dim]; `out` may alias `x`. Each row is
// kernels::RmsNorm exactly (so results do not depend on the thread count).
void RmsNormRows(ComputeContext& ctx, const float* x, const float* weight, float* out, int64_t rows,
                 int64_t dim, float eps);

// out[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i < n; `out` may alias `gate`. The exp
// is the context's kernel (within 2 ulp of libm), so this agrees with kernels::SwiGlu to a few
// ulp; each element is computed alone, so results do not depend on n or the thread count.
void SwiGlu(ComputeContext& ctx, const float* gate, const float* up, float* out, int64_t n);

}  // namespace bora::ops
