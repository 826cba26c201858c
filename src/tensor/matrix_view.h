// Non-owning, typed, row-major 2-D view over weight memory: [rows, cols], dense (F32/BF16/F16)
// or packed in bora's q8/q4 panel layout (quants at `data`, f16 scales at `scales`).
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace bora {

struct MatrixView {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;                  // dense: also the row stride in elements
  const uint16_t* scales = nullptr;  // packed formats only

  // Dense formats only.
  const uint8_t* RowBytes(int64_t row) const {
    return static_cast<const uint8_t*>(data) + row * cols * static_cast<int64_t>(DTypeSize(dtype));
  }
  bool packed() const { return IsPackedDType(dtype); }
  bool empty() const { return data == nullptr; }
};

}  // namespace bora
