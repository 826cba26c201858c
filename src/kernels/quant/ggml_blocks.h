// llama.cpp/ggml tensor types: block geometry, bit-exact scalar dequantization of their rows to
// f32, and lossless repacking of Q8_0/Q4_0 matrices into bora's q8/q4 panel layout.
//
// A ggml row of n elements is n / block_size consecutive blocks of type_size bytes, all
// little-endian (GGUF's byte order); element i of the row lives in block i / block_size.
// DequantizeGgmlRow repeats ggml's dequantize_row_* arithmetic operation by operation (same
// int -> float conversions, same multiply/subtract order, no fused multiply-add: bora_kernels is
// built with -ffp-contract=off), so the floats are bit-identical to ggml's CPU reference.
#pragma once

#include <cstdint>
#include <string>

namespace bora::kernels {

// ggml tensor type ids as written in GGUF files (ggml.h enum ggml_type values).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39
};

// Geometry of one ggml type: a row of n elements takes n / block_size * type_size bytes.
// `supported`: DequantizeGgmlRow handles it. Unknown ids have block_size = type_size = 0.
struct GgmlTypeTraits {
  const char* name;
  int64_t block_size;  // elements per block
  int64_t type_size;   // bytes per block
  bool supported;
};

// Name ("Q4_K", "IQ4_XS", "BF16", ...: ggml_type_name upper-cased) and block geometry for any
// type id, including ggml types bora cannot dequantize (IQ2_XXS, NVFP4, ...). Unknown ids get
// name "type <N>" (static storage; "type >255" for ids above 255, see GgmlTypeName) and
// supported = false.
GgmlTypeTraits GgmlTypeInfo(uint32_t type);

// The name of GgmlTypeInfo, but "type <N>" spelled out for every unknown id (for messages).
std::string GgmlTypeName(uint32_t type);

// Bytes of a row of `n` elements of `type`; throws bora::InvalidArgument if n is negative or
// not a multiple of the block size, the type is unknown, or the size overflows.
uint64_t GgmlRowBytes(uint32_t type, int64_t n);

// Dequantizes one row: `n` elements (a multiple of the block size) from `src`
// (GgmlRowBytes(type, n) bytes, any alignment; nothing past them is read) into `out` (n floats),
// bit-identical to ggml's dequantize_row_* / ggml_fp16_to_fp32 / bf16 upcast. Supported: F32,
// F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
// Throws bora::Unsupported naming the type for any other (or unknown) type, and
// bora::InvalidArgument for a bad n.
void DequantizeGgmlRow(uint32_t type, const uint8_t* src, int64_t n, float* out);

// Lossless repack of a [rows, cols] Q8_0 or Q4_0 matrix (`rows` row-major ggml rows of
// GgmlRowBytes(type, cols) bytes, cols % 32 == 0) into bora's panel layout
// (kernels/quant/block_quant.h): `quants` gets PackedShape{format, rows, cols}.quant_bytes()
// bytes, `scales` scale_count() f16 values; each ggml block's f16 scale is copied unchanged.
//   Q4_0 -> q4: w = d * (q - 8) with bora's zero point 8: always exact.
//   Q8_0 -> q8: bora holds q in [-127, 127] as q + 128 in [1, 255], so a quant of -128 has no
//     slot: the function then returns false before writing anything (the caller falls back).
// Padded rows of the last panel get quants at the zero point and zero scales, as QuantizePanel
// pads them. Afterwards DequantizeRow equals DequantizeGgmlRow bit for bit. Returns true on
// success; throws bora::Unsupported for other types, bora::InvalidArgument for bad shapes.
bool RepackGgmlToPanels(uint32_t type, const uint8_t* src, int64_t rows, int64_t cols,
                        uint8_t* quants, uint16_t* scales);

}  // namespace bora::kernels
