// GGUF reader (llama.cpp's single-file format, versions 2 and 3): validates the whole header
// (magic, version, counts, keys, strings, arrays, tensor dims, types, offsets, alignment, data
// bounds, overflow) and gives typed metadata and bounds-checked tensor bytes of a mapped file.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"

namespace bora::formats {

// Limits (the format has none; these keep a hostile header from exhausting memory).
constexpr uint64_t kMaxGgufTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxGgufKeys = uint64_t{1} << 20;
constexpr uint64_t kMaxGgufNameBytes = 256;        // keys and tensor names (ggml: 63)
constexpr uint32_t kMaxGgufDims = 4;               // GGML_MAX_DIMS
constexpr uint32_t kDefaultGgufAlignment = 32;     // when general.alignment is absent

// gguf_type values of the metadata.
enum class GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string_view GgufValueTypeName(GgufValueType type);

// One metadata value. Scalars keep their exact value in the member for their kind; arrays keep
// their element type and count, string arrays their strings (views into the file), numeric
// arrays their raw little-endian bytes.
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  uint64_t u = 0;         // unsigned integers and bool
  int64_t i = 0;          // signed integers
  double f = 0;           // F32/F64
  std::string_view s;     // strings
  GgufValueType element_type = GgufValueType::kU8;  // arrays
  uint64_t count = 0;                               // arrays
  std::vector<std::string_view> strings;            // string arrays
  std::span<const uint8_t> raw;                     // numeric arrays: count * element size bytes
};

struct GgufTensorInfo {
  std::string_view name;
  std::vector<int64_t> ne;  // ggml order: fastest-varying dimension first
  uint32_t type = 0;        // ggml_type
  uint64_t offset = 0;      // relative to the data section
  uint64_t size = 0;        // bytes
  int64_t NumElements() const;
};

struct GgufHeader {
  uint32_t version = 0;
  uint32_t alignment = kDefaultGgufAlignment;
  std::vector<std::pair<std::string_view, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                           // in file order
  uint64_t data_start = 0;                                       // file offset of the data section

  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // Typed accessors: nullopt when the key is absent; FormatError naming the key when its type
  // does not fit (integers must be non-negative and in range for GetUint).
  std::optional<std::string> GetString(std::string_view key) const;
  std::optional<uint64_t> GetUint(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;  // any float or integer type
  std::optional<bool> GetBool(std::string_view key) const;
  // Arrays: FormatError when the key is not an array of the expected kind.
  std::vector<std::string_view> GetStringArray(std::string_view key) const;
  std::vector<double> GetNumberArray(std::string_view key) const;  // any numeric element type

  std::string file_name;  // for messages
  std::unordered_map<std::string_view, size_t> key_index;
  std::unordered_map<std::string_view, size_t> tensor_index;
};

// Parses and validates a complete GGUF file image. Throws FormatError naming `file_name` and the
// problem for anything malformed, Unsupported for version 1 and big-endian files. Tensor types
// are checked for a known block geometry; whether bora can compute with them is decided later.
GgufHeader ParseGgufHeader(std::span<const uint8_t> file_bytes, const std::string& file_name);

// True when `path` starts with the GGUF magic.
bool LooksLikeGguf(const std::string& path);

// A memory-mapped, validated GGUF file.
class GgufFile {
 public:
  static GgufFile Open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const GgufHeader& header() const { return header_; }
  std::span<const uint8_t> file_bytes() const { return file_.bytes(); }
  // The bytes of a tensor (already bounds-checked when parsing).
  std::span<const uint8_t> TensorBytes(const GgufTensorInfo& info) const {
    return file_.bytes().subspan(header_.data_start + info.offset, info.size);
  }

 private:
  MappedFile file_;
  GgufHeader header_;
};

}  // namespace bora::formats
