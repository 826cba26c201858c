// Conversion of one row of F32/BF16/F16 values to f32.
#include "kernels/convert.h"

#include <cstring>
#include <string>

#include "base/error.h"
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
    case DType::kU8:
    case DType::kQ8:
    case DType::kQ4:
      break;
  }
  // Raw bytes and packed matrices have no per-row float view: a caller bug, never data.
  throw InvalidArgument("RowToF32: dtype " + std::string(DTypeName(dtype)) + " is not a float format");
}

}  // namespace bora::kernels
