// safetensors reader: validates the whole header (reliability rules L2, L7, L9) and gives typed,
// bounds-checked views into the memory-mapped data.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"
#include "base/dtype.h"
#include "tensor/matrix_view.h"

namespace bora::formats {

// Limits from the reference reader and our checklist.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
constexpr size_t kMaxSafetensorsTensors = size_t{1} << 20;
constexpr int kMaxSafetensorsJsonDepth = 4;
constexpr size_t kMaxTensorRank = 8;

struct TensorInfo {
  std::string name;
  std::string dtype_name;        // as written: "BF16", "F32", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;            // data_offsets, relative to the data buffer
  uint64_t end = 0;
};

// A tensor's bytes inside a mapped file, with its element type when bora can compute with it.
struct TensorView {
  const TensorInfo* info = nullptr;
  DType dtype = DType::kF32;
  std::span<const uint8_t> bytes;

  int64_t NumElements() const;
  // 2-D view [shape[0], shape[1]] (or [1, n] for a vector); throws FormatError otherwise.
  MatrixView AsMatrix() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;             // sorted by data offset
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t data_start = 0;                     // 8 + header length
  uint64_t data_size = 0;                      // bytes after the header
};

// Parses and validates a complete safetensors file image. Throws FormatError naming
// `file_name` and the problem for anything the reference reader would reject.
SafetensorsHeader ParseSafetensorsHeader(std::span<const uint8_t> file_bytes,
                                         const std::string& file_name);

// Byte size of one element of a safetensors dtype name, or 0 if the name is unknown.
size_t SafetensorsDTypeSize(std::string_view dtype_name);

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  static SafetensorsFile Open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  // The whole mapped file (header included).
  std::span<const uint8_t> file_bytes() const { return file_.bytes(); }
  const TensorInfo* Find(std::string_view name) const;
  // Throws FormatError when absent; Unsupported when the dtype is not F32/BF16/F16/U8.
  TensorView View(std::string_view name) const;
  TensorView View(const TensorInfo& info) const;
  // The bytes of any tensor, whatever its dtype (FP8 weights before dequantization).
  std::span<const uint8_t> RawBytes(const TensorInfo& info) const {
    return file_.bytes().subspan(header_.data_start + info.begin, info.end - info.begin);
  }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string_view, size_t> index_;
};

}  // namespace bora::formats
