// Element types of weights and activations, their sizes and safetensors names.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace bora {

enum class DType : uint8_t { kF32, kBF16, kF16 };

constexpr size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
  }
  return 0;
}

constexpr std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
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

}  // namespace bora
