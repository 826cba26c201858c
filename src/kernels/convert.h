// Conversion of one row of F32/BF16/F16 values to f32 (exact for all three).
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace bora::kernels {

void RowToF32(DType dtype, const void* src, float* dst, int64_t n);

}  // namespace bora::kernels
