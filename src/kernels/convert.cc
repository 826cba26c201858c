// Conversion of one row of F32/BF16/F16 values to f32.
#include "kernels/convert.h"

#include <cstring>

#include "base/float16.h"

namespace bora::kernels {

void RowToF32(DType dtype, const void* src, float* dst, int64_t n) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(in[i]);
      return;
    }
    case DType::kF16: {
      const auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(in[i]);
      return;
    }
  }
}

}  // namespace bora::kernels
