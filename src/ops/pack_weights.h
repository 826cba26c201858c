// Converting dense weight matrices at load time: packing into q8/q4 (kernels/quant layout) or
// rounding to bf16, in parallel, into owned aligned storage.
#pragma once

#include <cstdint>

#include "base/aligned_buffer.h"
#include "base/progress.h"
#include "ops/compute_context.h"
#include "tensor/matrix_view.h"

namespace bora::ops {

// A converted matrix and the storage its view points into.
struct OwnedMatrix {
  MatrixView view;
  AlignedBuffer storage;  // packed: quants then scales; bf16: the rows
};

// Bytes a [rows, cols] matrix takes in `dtype` (packed: both planes).
uint64_t MatrixBytes(DType dtype, int64_t rows, int64_t cols);

// Whether a matrix of `cols` columns can be packed (a multiple of the 32-column block).
bool CanPack(int64_t cols);

// Converts a dense matrix to `target` (kQ8, kQ4 or kBF16). `progress` (may be null) advances by
// the source bytes. Throws InvalidArgument when a packed target cannot hold the shape.
OwnedMatrix ConvertMatrix(ComputeContext& ctx, const MatrixView& source, DType target, ProgressBar* progress);

// Row `row` of any matrix (dense or packed) as f32: the embedding lookup.
void MatrixRowToF32(const MatrixView& matrix, int64_t row, float* out);

}  // namespace bora::ops
