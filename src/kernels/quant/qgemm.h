// Integer GEMM/GEMV of packed q8/q4 weights with int8-quantized activation rows, and the
// activation quantizer that feeds it. One accumulation order for every ISA and batch size.
//
// Activations: each row of `cols` f32 values is cut into blocks of 32 with scale
// d_x = amax/127 and q = round_half_even(x * (127/amax)) in [-127, 127], plus the block sum of q.
// Output (row r, token t) = sum over blocks b, in block order, of
//   acc = fma(float(isum_b), d_w[r][b] * d_x[t][b], acc),  isum_b = sum_k (q_w - z) * q_x
// with isum_b exact in int32: scalar, AVX2 and AVX-512 give bit-identical results, and a
// token's outputs do not depend on which other tokens share the call (batch invariance).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant/block_quant.h"

namespace bora::kernels {

// Quantized activation rows inside caller-owned scratch (see QuantizedRowsBytes).
struct QuantizedRows {
  int8_t* q = nullptr;      // [tokens, blocks * 32]
  float* scale = nullptr;   // [tokens, blocks]
  int32_t* sum = nullptr;   // [tokens, blocks]
  int64_t blocks = 0;
};

// Scratch bytes for `tokens` rows of `cols` values (cols a multiple of 32), 64-byte aligned parts.
size_t QuantizedRowsBytes(int64_t tokens, int64_t cols);
// Lays out a QuantizedRows over `scratch` (64-byte aligned, at least QuantizedRowsBytes).
QuantizedRows CarveQuantizedRows(void* scratch, int64_t tokens, int64_t cols);

// A packed matrix (see block_quant.h) as the kernels read it.
struct PackedMatrixRef {
  QuantFormat format = QuantFormat::kQ8;
  const uint8_t* quants = nullptr;
  const uint16_t* scales = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// x: [tokens, cols] f32 -> out (blocks = cols / 32).
using QuantizeRowsFn = void (*)(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out);
// y[t * y_stride + r] for every token t < tokens and every row r of panels [panel_begin,
// panel_end) (rows past w.rows are not written).
using QGemmFn = void (*)(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                         int64_t panel_end, float* y, int64_t y_stride);

void QuantizeRowsScalar(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out);
void QuantizeRowsAvx2(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out);
void QuantizeRowsAvx512(const float* x, int64_t tokens, int64_t cols, const QuantizedRows& out);

void QGemmScalar(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride);
void QGemmAvx2(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
               int64_t panel_end, float* y, int64_t y_stride);
void QGemmAvx512(const PackedMatrixRef& w, const QuantizedRows& x, int64_t tokens, int64_t panel_begin,
                 int64_t panel_end, float* y, int64_t y_stride);

}  // namespace bora::kernels
