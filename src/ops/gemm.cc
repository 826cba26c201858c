// Blocked f32 GEMM driver: B is packed in 16-column strips of up to kDepth rows (converting or
// dequantizing weights on the way), then the ISA's strip kernel runs over rows of A.
#include "ops/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

// ---- bf16 path: B packed as k-pairs, A converted to bf16 once per call.

// dst[2j] = even[j], dst[2j + 1] = odd[j] for j < 16 (two weight rows into one line of k-pairs).
inline void InterleaveRows16(const uint16_t* even, const uint16_t* odd, uint16_t* dst) {
#ifdef __SSE2__  // the x86-64 baseline
  for (int half = 0; half < 2; ++half) {
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(even + 8 * half));
    const __m128i o = _mm_loadu_si128(reinterpret_cast<const __m128i*>(odd + 8 * half));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * half), _mm_unpacklo_epi16(e, o));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * half + 8), _mm_unpackhi_epi16(e, o));
  }
#else
  for (int j = 0; j < 16; ++j) {
    dst[2 * j] = even[j];
    dst[2 * j + 1] = odd[j];
  }
#endif
}

// out[(q - q0) * 32 + 2j + t] = rows[j][2q + t] for q in [q0, q0 + 4), j < 16: a 16 x 4
// transpose of 32-bit k-pairs, in 4 x 4 blocks.
inline void TransposePairs16x4(const uint16_t* const* rows, int64_t q0, uint16_t* out) {
#ifdef __SSE2__
  for (int group = 0; group < 4; ++group) {
    __m128i r[4];
    for (int i = 0; i < 4; ++i) {
      r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * group + i] + 2 * q0));
    }
    const __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]), t1 = _mm_unpacklo_epi32(r[2], r[3]);
    const __m128i t2 = _mm_unpackhi_epi32(r[0], r[1]), t3 = _mm_unpackhi_epi32(r[2], r[3]);
    const __m128i lines[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1),
                              _mm_unpacklo_epi64(t2, t3), _mm_unpackhi_epi64(t2, t3)};
    for (int q = 0; q < 4; ++q) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + q * 32 + 8 * group), lines[q]);
    }
  }
#else
  for (int q = 0; q < 4; ++q) {
    for (int j = 0; j < 16; ++j) std::memcpy(out + q * 32 + 2 * j, rows[j] + 2 * (q0 + q), 4);
  }
#endif
}

constexpr int64_t kPairDepth = 256;  // k-pairs of B packed at once (512 k, 32 KiB per 2 strips)
// Rows of A per work item: 1020 (a multiple of the 12-row panel) covers a 512- or 1024-token
// step in one item, so each weight slice is packed once per call; 1020 x 256 bf16 of A is
// 510 KiB (L2).
constexpr int64_t kBlockRowsBf16 = 1020;
constexpr int64_t kPackBf16 = kPairDepth * 2 * kItemColumns;  // uint16 per thread

// pack[s][q][j][t] = B[k0 + 2q + t][n0 + 16 s + j] for q < pairs (zero beyond k or n).
void PackWeightBf16(const MatrixView& w, bool input_gradient, int64_t k, int64_t k0, int64_t pairs,
                    int64_t n0, int64_t columns, uint16_t* pack) {
  const int64_t strip_size = pairs * 32;
  if (w.dtype == DType::kBF16 && input_gradient && columns == kItemColumns && 2 * pairs <= k - k0) {
    // Row pairs outer, strips inner: each 128-byte piece of a weight row is read once (the rows
    // are often a multiple of 4 KiB apart, so a strip-by-strip walk would thrash L1 sets).
    const auto* data = static_cast<const uint16_t*>(w.data);
    for (int64_t q = 0; q < pairs; ++q) {
      const uint16_t* even = data + (k0 + 2 * q) * w.cols + n0;
      const uint16_t* odd = even + w.cols;
      for (int64_t s = 0; s < kStrips; ++s) {
        InterleaveRows16(even + s * kGemmStrip, odd + s * kGemmStrip,
                         pack + s * strip_size + q * 32);
      }
    }
    return;
  }
  for (int64_t s = 0; s * kGemmStrip < columns; ++s) {
    uint16_t* out = pack + s * strip_size;
    const int64_t first = n0 + s * kGemmStrip;
    const int64_t width = std::min(kGemmStrip, columns - s * kGemmStrip);
    if (width < kGemmStrip || k0 + 2 * pairs > k) std::fill(out, out + strip_size, uint16_t{0});
    const int64_t depth = std::min(2 * pairs, k - k0);
    if (w.dtype == DType::kBF16) {
      const auto* data = static_cast<const uint16_t*>(w.data);
      if (input_gradient) {  // B[p][j] = W[k0 + p][first + j]: rows 2q and 2q+1 interleaved
        for (int64_t p = 0; p < depth; p += 2) {
          const uint16_t* even = data + (k0 + p) * w.cols + first;
          const uint16_t* odd = p + 1 < depth ? even + w.cols : nullptr;
          uint16_t* dst = out + (p / 2) * 32;
          if (odd != nullptr && width == kGemmStrip) {
            InterleaveRows16(even, odd, dst);
          } else {
            for (int64_t j = 0; j < width; ++j) {
              dst[2 * j] = even[j];
              dst[2 * j + 1] = odd != nullptr ? odd[j] : uint16_t{0};
            }
          }
        }
      } else {  // B[p][j] = W[first + j][k0 + p]: a 32-bit transpose (k-pairs are adjacent)
        const int64_t full = depth / 2;
        const uint16_t* rows[kGemmStrip];
        for (int64_t j = 0; j < width; ++j) rows[j] = data + (first + j) * w.cols + k0;
        int64_t q = 0;
        if (width == kGemmStrip) {
          for (; q + 4 <= full; q += 4) TransposePairs16x4(rows, q, out + q * 32);
        }
        for (; q < full; ++q) {
          uint16_t* line = out + q * 32;  // one 64-byte line of the strip
          for (int64_t j = 0; j < width; ++j) std::memcpy(line + 2 * j, rows[j] + 2 * q, 4);
        }
        if (depth % 2 != 0) {
          for (int64_t j = 0; j < width; ++j) {
            out[full * 32 + 2 * j] = data[(first + j) * w.cols + k0 + depth - 1];
          }
        }
      }
      continue;
    }
    // q8/q4: dequantized tiles rounded to bf16.
    float tile[16][32];
    if (input_gradient) {
      const int64_t block = first / 32, half = (first % 32) / 16 * 16;
      for (int64_t p0 = 0; p0 < depth; p0 += 16) {
        DequantizeTile(w, (k0 + p0) / 16, block, tile);
        const int64_t rows = std::min<int64_t>(16, depth - p0);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t p = p0 + r;
          uint16_t* dst = out + (p / 2) * 32 + (p % 2);
          for (int64_t j = 0; j < width; ++j) dst[2 * j] = F32ToBf16(tile[r][half + j]);
        }
      }
    } else {
      const int64_t panel = first / 16;
      for (int64_t p0 = 0; p0 < depth; p0 += 32) {
        DequantizeTile(w, panel, (k0 + p0) / 32, tile);
        const int64_t cols = std::min<int64_t>(32, depth - p0);
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t p = p0 + c;
          uint16_t* dst = out + (p / 2) * 32 + (p % 2);
          for (int64_t j = 0; j < width; ++j) dst[2 * j] = F32ToBf16(tile[j][c]);
        }
      }
    }
  }
}

void WeightGemmBf16(ComputeContext& ctx, const float* a, int64_t m, int64_t lda,
                    const MatrixView& w, bool input_gradient, float* c, int64_t ldc,
                    bool accumulate) {
  const int64_t n = input_gradient ? w.cols : w.rows;
  const int64_t k = input_gradient ? w.rows : w.cols;
  if (m <= 0 || n <= 0) return;
  constexpr int64_t kPanel = kernels::kGemmBf16MaxRows;  // rows per A panel
  const int64_t k_pairs = (k + 1) / 2, panels = (m + kPanel - 1) / kPanel;
  const int64_t panel_size = k_pairs * kPanel * 2;  // uint16 per panel: [q][row][2]
  const int threads = ctx.num_threads();
  const kernels::KernelSet& kernels = ctx.kernels();
  // One scratch block: A in bf16 as 12-row panels (the kernel reads each as one stream), a
  // converted row per thread, then a B pack per thread.
  const size_t a_elements = static_cast<size_t>(panels * panel_size);
  const size_t row_elements = static_cast<size_t>((2 * k_pairs + 32) / 32 * 32);  // > k
  auto* scratch = static_cast<uint16_t*>(
      ctx.Scratch(sizeof(uint16_t) * (a_elements + (row_elements + static_cast<size_t>(kPackBf16)) *
                                                       static_cast<size_t>(threads))));
  uint16_t* a16 = scratch;
  uint16_t* rows16 = scratch + a_elements;
  uint16_t* packs = rows16 + row_elements * static_cast<size_t>(threads);
  ctx.pool().ParallelFor(panels, [&](int64_t begin, int64_t end, int thread) {
    uint16_t* row16 = rows16 + row_elements * static_cast<size_t>(thread);
    for (int64_t panel = begin; panel < end; ++panel) {
      uint16_t* out = a16 + panel * panel_size;
      for (int64_t r = 0; r < kPanel; ++r) {
        const int64_t i = panel * kPanel + r;
        if (i < m) {
          kernels.f32_to_bf16_row(a + i * lda, row16, k);
          row16[k] = 0;  // an odd k's pad
        } else {
          std::fill_n(row16, 2 * k_pairs, uint16_t{0});
        }
        for (int64_t q = 0; q < k_pairs; ++q)
          std::memcpy(out + (q * kPanel + r) * 2, row16 + 2 * q, 4);
      }
    }
  });
  const int64_t column_items = (n + kItemColumns - 1) / kItemColumns;
  const int64_t row_items = (m + kBlockRowsBf16 - 1) / kBlockRowsBf16;
  ctx.pool().ParallelFor(column_items * row_items, [&](int64_t begin, int64_t end, int thread) {
    uint16_t* pack = packs + thread * kPackBf16;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t row0 = (item % row_items) * kBlockRowsBf16;
      const int64_t rows = std::min(kBlockRowsBf16, m - row0);
      const int64_t n0 = (item / row_items) * kItemColumns;
      const int64_t columns = std::min(kItemColumns, n - n0);
      if (!accumulate) {
        for (int64_t i = 0; i < rows; ++i) std::fill_n(c + (row0 + i) * ldc + n0, columns, 0.0f);
      }
      for (int64_t q0 = 0; q0 < k_pairs; q0 += kPairDepth) {
        const int64_t pairs = std::min(kPairDepth, k_pairs - q0);
        PackWeightBf16(w, input_gradient, k, 2 * q0, pairs, n0, columns, pack);
        const int64_t strip_stride = pairs * 32;
        for (int64_t s = 0; s * kGemmStrip < columns; s += 2) {
          const int64_t width = std::min(kernels::kGemmBf16MaxColumns, columns - s * kGemmStrip);
          for (int64_t i = 0; i < rows; i += kPanel) {  // row0 is a multiple of kPanel
            const int64_t count = std::min(kPanel, rows - i);
            const int64_t panel = (row0 + i) / kPanel;
            kernels.gemm_strip_bf16(a16 + panel * panel_size + q0 * kPanel * 2, kPanel * 2,
                                    pack + s * strip_stride, strip_stride, pairs, count,
                                    c + (row0 + i) * ldc + n0 + s * kGemmStrip, ldc, width);
          }
        }
      }
    }
  });
}

}  // namespace

bool UsesBf16Gemm(const ComputeContext& ctx, const MatrixView& w) {
  return ctx.kernels().gemm_strip_bf16 != nullptr && (w.dtype == DType::kBF16 || w.packed());
}

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
                bool input_gradient, float* c, int64_t ldc, bool accumulate,
                GemmPrecision precision) {
  if (w.dtype != DType::kF32 && w.dtype != DType::kBF16 && w.dtype != DType::kF16 && !w.packed()) {
    throw InvalidArgument("WeightGemm: unsupported weight dtype");
  }
  if (precision == GemmPrecision::kBf16 && UsesBf16Gemm(ctx, w)) {
    return WeightGemmBf16(ctx, a, m, lda, w, input_gradient, c, ldc, accumulate);
  }
  const WeightSource source{&w, input_gradient};
  const int64_t n = input_gradient ? w.cols : w.rows;
  const int64_t k = input_gradient ? w.rows : w.cols;
  Run(ctx, PackWeight, &source, m, n, k, StridedMatrix{a, lda, 1}, c, ldc, accumulate);
}

}  // namespace bora::ops
