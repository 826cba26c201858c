// Scalar reference of the activation quantizer and the packed q8/q4 GEMM.
#include <algorithm>
#include <cmath>

#include "base/float16.h"
#include "kernels/quant/qgemm.h"

namespace bora::kernels {
namespace {

constexpr size_t AlignUp(size_t value) { return (value + 63) & ~size_t{63}; }

}  // namespace

size_t QuantizedRowsBytes(int64_t tokens, int64_t cols) {
  const size_t blocks = static_cast<size_t>(cols / kQuantBlock) * static_cast<size_t>(tokens);
  return AlignUp(blocks * kQuantBlock) + AlignUp(blocks * sizeof(float)) + AlignUp(blocks * sizeof(int32_t));
}

QuantizedRows CarveQuantizedRows(void* scratch, int64_t tokens, int64_t cols) {
  const size_t blocks = static_cast<size_t>(cols / kQuantBlock) * static_cast<size_t>(tokens);
  auto* base = static_cast<uint8_t*>(scratch);
  QuantizedRows rows;
  rows.blocks = cols / kQuantBlock;
  rows.q = reinterpret_cast<int8_t*>(base);
  base += AlignUp(blocks * kQuantBlock);
  rows.scale = reinterpret_cast<float*>(base);
  base += AlignUp(blocks * sizeof(float));
  rows.sum = reinterpret_cast<int32_t*>(base);
  return rows;
}

void QuantizeRowsScalar(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out) {
  const int64_t blocks = cols / kQuantBlock;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* block = x + t * cols + b * kQuantBlock;
      int8_t* q = out.q + (t * blocks + b) * kQuantBlock;
      float amax = 0.0f;
      for (int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(block[i]));
      const float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
      int32_t sum = 0;
      for (int64_t i = 0; i < kQuantBlock; ++i) {
        // nearbyint rounds half to even, like cvtps2dq under the default MXCSR.
        const int32_t value = std::clamp(static_cast<int32_t>(std::nearbyint(block[i] * inverse)), -127, 127);
        q[i] = static_cast<int8_t>(value);
        sum += value;
      }
      out.scale[t * blocks + b] = amax / 127.0f;
      out.sum[t * blocks + b] = sum;
    }
  }
}

void QGemmScalar(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride) {
  const PackedShape shape{w.format, w.rows, w.cols};
  const int64_t blocks = shape.blocks();
  const int64_t block_bytes = QuantBlockBytes(w.format);
  const int32_t zero_point = QuantZeroPoint(w.format);
  const bool q4 = w.format == QuantFormat::kQ4;
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t valid_rows = std::min(kPanelRows, w.rows - panel * kPanelRows);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < valid_rows; ++r) {
        float acc = 0.0f;
        for (int64_t b = 0; b < blocks; ++b) {
          const uint8_t* block = w.quants + (panel * blocks + b) * block_bytes;
          const int8_t* xq = x.q + (t * blocks + b) * kQuantBlock;
          int32_t isum = 0;
          for (int64_t c = 0; c < kQuantBlock; ++c) {
            const int64_t quad = c / 4, j = c % 4;
            int32_t q;
            if (q4) {
              q = (block[(quad / 2) * 64 + r * 4 + j] >> ((quad % 2) * 4)) & 0x0f;
            } else {
              q = block[quad * 64 + r * 4 + j];
            }
            isum += (q - zero_point) * xq[c];
          }
          const float d_w = F16ToF32(w.scales[(panel * blocks + b) * kPanelRows + r]);
          const float scale = d_w * x.scale[t * blocks + b];
          acc = std::fma(static_cast<float>(isum), scale, acc);
        }
        y[t * y_stride + panel * kPanelRows + r] = acc;
      }
    }
  }
}

}  // namespace bora::kernels
