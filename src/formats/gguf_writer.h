// GGUF writer (version 3): typed metadata and tensors laid out at the file's alignment, the
// layout ParseGgufHeader reads back (used for GGUF files bora makes from its own models).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace bora::formats {

class GgufWriter {
 public:
  void AddString(const std::string& key, const std::string& value);
  void AddU32(const std::string& key, uint32_t value);
  void AddF32(const std::string& key, float value);
  void AddBool(const std::string& key, bool value);
  void AddStringArray(const std::string& key, const std::vector<std::string>& values);
  void AddF32Array(const std::string& key, const std::vector<float>& values);
  void AddI32Array(const std::string& key, const std::vector<int32_t>& values);
  // `ne` in ggml order (fastest dimension first); `bytes` must be the tensor's exact size for
  // `type` (checked). The bytes are copied.
  void AddTensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type,
                 std::span<const uint8_t> bytes);

  // The whole file image: header, metadata, tensor infos, padding, data (alignment 32).
  std::string Build() const;
  // Writes Build() to `path`; throws IoError when it cannot.
  void Write(const std::string& path) const;

 private:
  void Key(const std::string& key, GgufValueType type);

  std::string metadata_;
  uint64_t key_count_ = 0;
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::vector<uint8_t> bytes;
  };
  std::vector<Tensor> tensors_;
};

}  // namespace bora::formats
