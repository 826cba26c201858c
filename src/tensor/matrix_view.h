// Non-owning, typed, row-major 2-D view over weight memory: [rows, cols] with a row stride.
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace bora {

struct MatrixView {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;  // also the row stride in elements: rows are dense

  const uint8_t* RowBytes(int64_t row) const {
    return static_cast<const uint8_t*>(data) + row * cols * static_cast<int64_t>(DTypeSize(dtype));
  }
  bool empty() const { return data == nullptr; }
};

}  // namespace bora
