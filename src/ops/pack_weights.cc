// Load-time conversion of dense weights to q8/q4/bf16.
#include "ops/pack_weights.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/float16.h"
#include "kernels/convert.h"
#include "kernels/quant/block_quant.h"

namespace bora::ops {
namespace {

kernels::QuantFormat FormatOf(DType dtype) {
  return dtype == DType::kQ4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8;
}

}  // namespace

uint64_t MatrixBytes(DType dtype, int64_t rows, int64_t cols) {
  if (IsPackedDType(dtype)) {
    const kernels::PackedShape shape{FormatOf(dtype), rows, cols};
    return static_cast<uint64_t>(shape.quant_bytes() + 2 * shape.scale_count());
  }
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) * DTypeSize(dtype);
}

bool CanPack(int64_t cols) { return cols > 0 && cols % kernels::kQuantBlock == 0; }

OwnedMatrix ConvertMatrix(ComputeContext& ctx, const MatrixView& source, DType target, ProgressBar* progress) {
  if (source.packed()) throw InvalidArgument("cannot convert an already packed matrix");
  OwnedMatrix result;
  result.storage = AlignedBuffer(MatrixBytes(target, source.rows, source.cols));
  result.view = MatrixView{target, result.storage.data(), source.rows, source.cols, nullptr};
  const uint64_t source_row_bytes = static_cast<uint64_t>(source.cols) * DTypeSize(source.dtype);
  std::mutex progress_mutex;
  auto advance = [&](int64_t rows) {
    if (progress == nullptr) return;
    std::lock_guard<std::mutex> lock(progress_mutex);
    progress->Advance(static_cast<uint64_t>(rows) * source_row_bytes);
  };
  if (target == DType::kBF16) {
    auto* out = reinterpret_cast<uint16_t*>(result.storage.data());
    ctx.pool().ParallelFor(source.rows, [&](int64_t begin, int64_t end, int) {
      std::vector<float> row(static_cast<size_t>(source.cols));
      for (int64_t r = begin; r < end; ++r) {
        kernels::RowToF32(source.dtype, source.RowBytes(r), row.data(), source.cols);
        for (int64_t c = 0; c < source.cols; ++c) out[r * source.cols + c] = F32ToBf16(row[c]);
        if ((r - begin) % 256 == 255) advance(256);
      }
      advance((end - begin) % 256);
    });
    return result;
  }
  if (!IsPackedDType(target)) throw InvalidArgument("unsupported conversion target " + std::string(DTypeName(target)));
  if (!CanPack(source.cols)) {
    throw InvalidArgument("a matrix with " + std::to_string(source.cols) + " columns cannot be packed as " +
                          std::string(DTypeName(target)) + " (needs a multiple of 32)");
  }
  const kernels::PackedShape shape{FormatOf(target), source.rows, source.cols};
  auto* quants = result.storage.data();
  auto* scales = reinterpret_cast<uint16_t*>(quants + shape.quant_bytes());
  result.view.scales = scales;
  const int64_t blocks = shape.blocks();
  ctx.pool().ParallelFor(shape.panels(), [&](int64_t begin, int64_t end, int) {
    std::vector<float> panel(static_cast<size_t>(kernels::kPanelRows * source.cols));
    for (int64_t p = begin; p < end; ++p) {
      const int64_t rows = std::min(kernels::kPanelRows, source.rows - p * kernels::kPanelRows);
      for (int64_t r = 0; r < rows; ++r) {
        kernels::RowToF32(source.dtype, source.RowBytes(p * kernels::kPanelRows + r), panel.data() + r * source.cols,
                          source.cols);
      }
      kernels::QuantizePanel(shape.format, panel.data(), rows, source.cols,
                             quants + p * blocks * kernels::QuantBlockBytes(shape.format),
                             scales + p * blocks * kernels::kPanelRows);
      advance(rows);
    }
  });
  return result;
}

void MatrixRowToF32(const MatrixView& matrix, int64_t row, float* out) {
  if (matrix.packed()) {
    const kernels::PackedShape shape{FormatOf(matrix.dtype), matrix.rows, matrix.cols};
    kernels::DequantizeRow(shape, static_cast<const uint8_t*>(matrix.data), matrix.scales, row, out);
  } else {
    kernels::RowToF32(matrix.dtype, matrix.RowBytes(row), out, matrix.cols);
  }
}

}  // namespace bora::ops
