// Quantizers and dequantizers of the q8/q4 panel formats (scalar; load and quantize time only).
#include "kernels/quant/block_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/float16.h"

namespace bora::kernels {
namespace {

// Byte offset and nibble of (row r, column c) of one (panel, block).
struct QuantSlot {
  int64_t byte;
  int shift;  // 0 or 4 (q4 high nibble)
};

QuantSlot SlotOf(QuantFormat format, int64_t r, int64_t c) {
  const int64_t quad = c / 4, j = c % 4;
  if (format == QuantFormat::kQ8) return {quad * 64 + r * 4 + j, 0};
  return {(quad / 2) * 64 + r * 4 + j, static_cast<int>(quad % 2) * 4};
}

// Round half to even without a libm call (the baseline ISA has no roundss): adding and
// subtracting 1.5 * 2^23 leaves the nearest integer for |v| < 2^22.
inline int RoundToInt(float v) {
  v = std::clamp(v, -1024.0f, 1024.0f);
  volatile float shifted = v + 12582912.0f;  // volatile: keep the two roundings separate
  return static_cast<int>(shifted - 12582912.0f);
}

// Quantizes 32 values with scale `d` (already f16-exact) into integers in [lo, hi].
float BlockError(const float* x, float d, int lo, int hi, int8_t* q) {
  float error = 0.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQuantBlock; ++i) {
    int value = RoundToInt(x[i] * inverse);
    value = std::clamp(value, lo, hi);
    q[i] = static_cast<int8_t>(value);
    const float diff = x[i] - d * static_cast<float>(value);
    error += diff * diff;
  }
  return error;
}

float RoundToF16(float value) { return F16ToF32(F32ToF16(value)); }

// q8: symmetric, scale amax/127.
float QuantizeBlockQ8(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = RoundToF16(amax / 127.0f);
  BlockError(x, d, -127, 127, q);
  return d;
}

// q4: integers in [-8, 7]; search the scale.
float QuantizeBlockQ4(const float* x, int8_t* q) {
  float signed_max = 0.0f;
  for (int i = 0; i < kQuantBlock; ++i) {
    if (std::fabs(x[i]) > std::fabs(signed_max)) signed_max = x[i];
  }
  if (signed_max == 0.0f) {
    std::fill(q, q + kQuantBlock, 0);
    return 0.0f;
  }
  int8_t candidate[kQuantBlock];
  float best_d = RoundToF16(signed_max / -8.0f);  // Q4_0's choice
  float best_error = BlockError(x, best_d, -8, 7, q);
  auto consider = [&](float d) {
    d = RoundToF16(d);
    if (d == 0.0f || !std::isfinite(d)) return;
    const float error = BlockError(x, d, -8, 7, candidate);
    if (error < best_error) {
      best_error = error;
      best_d = d;
      std::memcpy(q, candidate, sizeof(candidate));
    }
  };
  // Shrinking the range trades clipping of the largest value for finer steps elsewhere.
  for (float divisor : {-7.5f, -7.0f, -6.5f, -6.0f, 7.0f, 7.5f, 8.0f}) consider(signed_max / divisor);
  // Least-squares scale for the chosen integers, and once more for the integers it gives.
  for (int refine = 0; refine < 2; ++refine) {
    float numerator = 0.0f, denominator = 0.0f;
    for (int i = 0; i < kQuantBlock; ++i) {
      numerator += x[i] * q[i];
      denominator += static_cast<float>(q[i]) * q[i];
    }
    if (denominator > 0.0f) consider(numerator / denominator);
  }
  return best_d;
}

}  // namespace

std::string_view QuantFormatName(QuantFormat format) { return format == QuantFormat::kQ8 ? "q8" : "q4"; }

void QuantizePanel(QuantFormat format, const float* rows, int64_t panel_rows, int64_t cols, uint8_t* quants,
                   uint16_t* scales) {
  const int64_t blocks = cols / kQuantBlock;
  const int64_t block_bytes = QuantBlockBytes(format);
  const int32_t zero_point = QuantZeroPoint(format);
  std::memset(quants, 0, static_cast<size_t>(blocks * block_bytes));
  const float zeros[kQuantBlock] = {};
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* block = quants + b * block_bytes;
    for (int64_t r = 0; r < kPanelRows; ++r) {
      const float* x = r < panel_rows ? rows + r * cols + b * kQuantBlock : zeros;
      int8_t q[kQuantBlock];
      const float d = format == QuantFormat::kQ8 ? QuantizeBlockQ8(x, q) : QuantizeBlockQ4(x, q);
      scales[b * kPanelRows + r] = F32ToF16(d);
      for (int64_t c = 0; c < kQuantBlock; ++c) {
        const QuantSlot slot = SlotOf(format, r, c);
        block[slot.byte] |= static_cast<uint8_t>((q[c] + zero_point) << slot.shift);
      }
    }
  }
}

void DequantizeRow(const PackedShape& shape, const uint8_t* quants, const uint16_t* scales, int64_t row,
                   float* out) {
  const int64_t blocks = shape.blocks();
  const int64_t block_bytes = QuantBlockBytes(shape.format);
  const int32_t zero_point = QuantZeroPoint(shape.format);
  const int64_t panel = row / kPanelRows, r = row % kPanelRows;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* block = quants + (panel * blocks + b) * block_bytes;
    const float d = F16ToF32(scales[(panel * blocks + b) * kPanelRows + r]);
    for (int64_t c = 0; c < kQuantBlock; ++c) {
      const QuantSlot slot = SlotOf(shape.format, r, c);
      const int32_t q = (block[slot.byte] >> slot.shift) & (shape.format == QuantFormat::kQ8 ? 0xff : 0x0f);
      out[b * kQuantBlock + c] = d * static_cast<float>(q - zero_point);
    }
  }
}

}  // namespace bora::kernels
