// Block-quantized weight formats q8 and q4 in bora's panel layout, their quantizers (f32 ->
// packed) and dequantizers (packed -> f32), scalar code used at load/quantize time.
//
// A [rows, cols] matrix is cut into panels of 16 rows (the last one zero-padded) and blocks of
// 32 columns (cols must be a multiple of 32). Each (panel, block) holds one f16 scale per row and
// the 16 x 32 quantized weights, stored as unsigned bytes with a zero point z
// (w ~= scale * (q - z)), interleaved so that one 64-byte vector holds 4 consecutive columns of
// all 16 rows (byte r*4 + j = row r, column 4*quad + j): the operand layout of vpdpbusd.
//   q8: z = 128, q in [1, 255]; 8 vectors (512 bytes) per (panel, block): vector `quad`.
//   q4: z = 8,   q in [0, 15];  4 vectors (256 bytes): vector v's low nibbles hold quad 2v,
//       its high nibbles quad 2v+1.
// Quants and scales live in two planes, both ordered [panel][block]: 8.5 bits per weight for
// q8 and 4.5 for q4 (llama.cpp's Q8_0 and Q4_0 sizes).
#pragma once

#include <cstdint>
#include <string_view>

namespace bora::kernels {

enum class QuantFormat : uint8_t { kQ8, kQ4 };

constexpr int64_t kQuantBlock = 32;   // columns per scale
constexpr int64_t kPanelRows = 16;    // rows per panel (one zmm of int32 accumulators)

constexpr int64_t QuantBlockBytes(QuantFormat format) { return format == QuantFormat::kQ8 ? 512 : 256; }
constexpr int32_t QuantZeroPoint(QuantFormat format) { return format == QuantFormat::kQ8 ? 128 : 8; }
std::string_view QuantFormatName(QuantFormat format);  // "q8", "q4"

// Sizes of the two planes of a packed [rows, cols] matrix.
struct PackedShape {
  QuantFormat format = QuantFormat::kQ8;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t panels() const { return (rows + kPanelRows - 1) / kPanelRows; }
  int64_t blocks() const { return cols / kQuantBlock; }
  int64_t quant_bytes() const { return panels() * blocks() * QuantBlockBytes(format); }
  int64_t scale_count() const { return panels() * blocks() * kPanelRows; }  // f16 values
};

// Quantizes one panel: `panel_rows` (<= 16) rows of `cols` f32 values, row stride `cols`;
// missing rows are padded with zeros. Writes blocks() * QuantBlockBytes bytes and
// blocks() * 16 f16 scales. q8: scale = amax/127 (rounded to f16), q = round(w/scale).
// q4: the scale minimising the block's squared error among candidates that include Q4_0's
// (max-magnitude value / -8), so the error is never above Q4_0's for the same block.
void QuantizePanel(QuantFormat format, const float* rows, int64_t panel_rows, int64_t cols, uint8_t* quants,
                   uint16_t* scales);

// Row `row` of a packed matrix back to f32 (cols values).
void DequantizeRow(const PackedShape& shape, const uint8_t* quants, const uint16_t* scales, int64_t row,
                   float* out);

}  // namespace bora::kernels
