// Blocked f32 GEMM driver: B is packed in 16-column strips of up to kDepth rows (converting or
// dequantizing weights on the way), then the ISA's strip kernel runs over rows of A.
#include "ops/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/float16.h"
#include "kernels/quant/block_quant.h"

namespace bora::ops {
namespace {

using kernels::kGemmMaxRows;
using kernels::kGemmStrip;

constexpr int64_t kDepth = 256;      // k rows of B packed at once (a multiple of 32)
constexpr int64_t kStrips = 4;       // strips per work item: 64 columns of C
constexpr int64_t kBlockRows = 384;  // rows of A per work item (a multiple of 12)
constexpr int64_t kItemColumns = kStrips * kGemmStrip;

// Fills pack[strip][p][16] for B rows [k0, k0 + depth) and columns [n0, n0 + columns).
using PackFn = void (*)(const void* source, int64_t k0, int64_t depth, int64_t n0, int64_t columns,
                        float* pack);

void PackStrided(const void* source, int64_t k0, int64_t depth, int64_t n0, int64_t columns,
                 float* pack) {
  const StridedMatrix& b = *static_cast<const StridedMatrix*>(source);
  for (int64_t s = 0; s * kGemmStrip < columns; ++s) {
    float* out = pack + s * depth * kGemmStrip;
    const int64_t width = std::min(kGemmStrip, columns - s * kGemmStrip);
    for (int64_t p = 0; p < depth; ++p) {
      const float* row = b.data + (k0 + p) * b.row_stride + (n0 + s * kGemmStrip) * b.col_stride;
      int64_t j = 0;
      if (b.col_stride == 1) {
        std::memcpy(out + p * kGemmStrip, row, sizeof(float) * width);
        j = width;
      }
      for (; j < width; ++j) out[p * kGemmStrip + j] = row[j * b.col_stride];
      for (; j < kGemmStrip; ++j) out[p * kGemmStrip + j] = 0.0f;
    }
  }
}

struct WeightSource {
  const MatrixView* w;
  bool input_gradient;
};

inline float DenseAt(const MatrixView& w, int64_t row, int64_t col) {
  const int64_t index = row * w.cols + col;
  switch (w.dtype) {
    case DType::kF32:
      return static_cast<const float*>(w.data)[index];
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w.data)[index]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w.data)[index]);
    default:
      return 0.0f;
  }
}

// Dequantizes the 16 x 32 tile (panel, block) of a packed matrix into tile[r][c].
void DequantizeTile(const MatrixView& w, int64_t panel, int64_t block, float tile[16][32]) {
  const kernels::QuantFormat format =
      w.dtype == DType::kQ8 ? kernels::QuantFormat::kQ8 : kernels::QuantFormat::kQ4;
  const int64_t blocks = w.cols / kernels::kQuantBlock;
  const uint8_t* q = static_cast<const uint8_t*>(w.data) +
                     (panel * blocks + block) * kernels::QuantBlockBytes(format);
  const uint16_t* scales = w.scales + (panel * blocks + block) * kernels::kPanelRows;
  const float zero = static_cast<float>(kernels::QuantZeroPoint(format));
  for (int64_t r = 0; r < 16; ++r) {
    const float d = F16ToF32(scales[r]);
    for (int64_t c = 0; c < 32; ++c) {
      const int64_t quad = c / 4, j = c % 4;
      int value;
      if (format == kernels::QuantFormat::kQ8) {
        value = q[quad * 64 + r * 4 + j];
      } else {
        value = (q[(quad / 2) * 64 + r * 4 + j] >> ((quad % 2) * 4)) & 0x0f;
      }
      tile[r][c] = d * (static_cast<float>(value) - zero);
    }
  }
}

// Forward (B[p][j] = W[n0 + j][k0 + p]) or input gradient (B[p][j] = W[k0 + p][n0 + j]).
void PackWeight(const void* source, int64_t k0, int64_t depth, int64_t n0, int64_t columns,
                float* pack) {
  const WeightSource& src = *static_cast<const WeightSource*>(source);
  const MatrixView& w = *src.w;
  for (int64_t s = 0; s * kGemmStrip < columns; ++s) {
    float* out = pack + s * depth * kGemmStrip;
    const int64_t first = n0 + s * kGemmStrip;
    const int64_t width = std::min(kGemmStrip, columns - s * kGemmStrip);
    if (width < kGemmStrip) std::fill(out, out + depth * kGemmStrip, 0.0f);
    if (!w.packed()) {
      if (src.input_gradient) {
        for (int64_t p = 0; p < depth; ++p) {
          for (int64_t j = 0; j < width; ++j)
            out[p * kGemmStrip + j] = DenseAt(w, k0 + p, first + j);
        }
      } else {
        for (int64_t j = 0; j < width; ++j) {
          for (int64_t p = 0; p < depth; ++p)
            out[p * kGemmStrip + j] = DenseAt(w, first + j, k0 + p);
        }
      }
      continue;
    }
    float tile[16][32];
    if (src.input_gradient) {
      // Rows k0.. of W span panels; columns first..first+15 are one half of block first / 32.
      const int64_t block = first / 32, half = (first % 32) / 16 * 16;
      for (int64_t p0 = 0; p0 < depth; p0 += 16) {
        DequantizeTile(w, (k0 + p0) / 16, block, tile);
        const int64_t rows = std::min<int64_t>(16, depth - p0);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < width; ++j) out[(p0 + r) * kGemmStrip + j] = tile[r][half + j];
        }
      }
    } else {
      // Rows first..first+15 of W are one panel; columns k0.. span blocks of 32.
      const int64_t panel = first / 16;
      for (int64_t p0 = 0; p0 < depth; p0 += 32) {
        DequantizeTile(w, panel, (k0 + p0) / 32, tile);
        const int64_t cols = std::min<int64_t>(32, depth - p0);
        for (int64_t c = 0; c < cols; ++c) {
          for (int64_t j = 0; j < width; ++j) out[(p0 + c) * kGemmStrip + j] = tile[j][c];
        }
      }
    }
  }
}

// C[rows, columns] block: clears it unless accumulating, then walks k in kDepth slices.
void RunItem(const kernels::KernelSet& kernels, PackFn pack_fn, const void* source, int64_t row0,
             int64_t rows, int64_t n0, int64_t columns, int64_t k, StridedMatrix a, float* c,
             int64_t ldc, bool accumulate, float* pack) {
  if (!accumulate) {
    for (int64_t i = 0; i < rows; ++i) std::fill_n(c + (row0 + i) * ldc + n0, columns, 0.0f);
  }
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t depth = std::min(kDepth, k - k0);
    pack_fn(source, k0, depth, n0, columns, pack);
    for (int64_t s = 0; s * kGemmStrip < columns; ++s) {
      const int64_t width = std::min(kGemmStrip, columns - s * kGemmStrip);
      const float* strip = pack + s * depth * kGemmStrip;
      for (int64_t i = 0; i < rows; i += kGemmMaxRows) {
        const int64_t count = std::min(kGemmMaxRows, rows - i);
        kernels.gemm_strip(a.data + (row0 + i) * a.row_stride + k0 * a.col_stride, a.row_stride,
                           a.col_stride, strip, depth, count,
                           c + (row0 + i) * ldc + n0 + s * kGemmStrip, ldc, width);
      }
    }
  }
}

void Run(ComputeContext& ctx, PackFn pack_fn, const void* source, int64_t m, int64_t n, int64_t k,
         StridedMatrix a, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const int64_t column_items = (n + kItemColumns - 1) / kItemColumns;
  const int64_t row_items = (m + kBlockRows - 1) / kBlockRows;
  const int threads = ctx.num_threads();
  float* packs = static_cast<float*>(ctx.Scratch(sizeof(float) * GemmPackFloats() * threads));
  const kernels::KernelSet& kernels = ctx.kernels();
  ctx.pool().ParallelFor(column_items * row_items, [&](int64_t begin, int64_t end, int thread) {
    float* pack = packs + thread * GemmPackFloats();
    for (int64_t item = begin; item < end; ++item) {
      const int64_t row0 = (item % row_items) * kBlockRows;
      const int64_t n0 = (item / row_items) * kItemColumns;
      RunItem(kernels, pack_fn, source, row0, std::min(kBlockRows, m - row0), n0,
              std::min(kItemColumns, n - n0), k, a, c, ldc, accumulate, pack);
    }
  });
}

}  // namespace

int64_t GemmPackFloats() { return kDepth * kItemColumns; }

void Gemm(ComputeContext& ctx, int64_t m, int64_t n, int64_t k, StridedMatrix a, StridedMatrix b,
          float* c, int64_t ldc, bool accumulate) {
  Run(ctx, PackStrided, &b, m, n, k, a, c, ldc, accumulate);
}

void GemmSerial(const kernels::KernelSet& kernels, int64_t m, int64_t n, int64_t k, StridedMatrix a,
                StridedMatrix b, float* c, int64_t ldc, bool accumulate, float* pack) {
  for (int64_t n0 = 0; n0 < n; n0 += kItemColumns) {
    RunItem(kernels, PackStrided, &b, 0, m, n0, std::min(kItemColumns, n - n0), k, a, c, ldc,
            accumulate, pack);
  }
}

void WeightGemm(ComputeContext& ctx, const float* a, int64_t m, int64_t lda, const MatrixView& w,
                bool input_gradient, float* c, int64_t ldc, bool accumulate) {
  if (w.dtype != DType::kF32 && w.dtype != DType::kBF16 && w.dtype != DType::kF16 && !w.packed()) {
    throw InvalidArgument("WeightGemm: unsupported weight dtype");
  }
  const WeightSource source{&w, input_gradient};
  const int64_t n = input_gradient ? w.cols : w.rows;
  const int64_t k = input_gradient ? w.rows : w.cols;
  Run(ctx, PackWeight, &source, m, n, k, StridedMatrix{a, lda, 1}, c, ldc, accumulate);
}

}  // namespace bora::ops
