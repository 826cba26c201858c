// Element types of weights and activations, their sizes and safetensors names, plus the
// block-quantized matrix formats bora packs weights into (q8, q4: see kernels/quant).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bora {

// kU8 is raw bytes (packed quantized planes in a safetensors file); kQ8/kQ4 are packed matrices
// with no per-element size.
enum class DType : uint8_t { kF32, kBF16, kF16, kU8, kQ8, kQ4 };

constexpr size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kU8: return 1;
    case DType::kQ8:
    case DType::kQ4: return 0;
  }
  return 0;
}

constexpr bool IsPackedDType(DType dtype) { return dtype == DType::kQ8 || dtype == DType::kQ4; }
constexpr bool IsFloatDType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16;
}

constexpr std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kU8: return "U8";
    case DType::kQ8: return "q8";
    case DType::kQ4: return "q4";
  }
  return "?";
}

// Parses a safetensors dtype name among those bora computes with ("F32", "BF16", "F16").
inline std::optional<DType> ParseComputeDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  return std::nullopt;
}

// Compute dtypes plus "U8" (raw bytes of packed weights).
inline std::optional<DType> ParseStorageDType(std::string_view name) {
  if (name == "U8") return DType::kU8;
  return ParseComputeDType(name);
}

}  // namespace bora
