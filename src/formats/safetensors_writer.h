// Streams tensors into a new safetensors file (header first, then data in declaration order).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace bora::formats {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;

  uint64_t ByteSize() const;
};

// Writes to `path + ".partial"` and renames on Finish(), so a crash never leaves a file that
// looks complete. Data must be appended in the order of `tensors`, each exactly ByteSize().
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<TensorSpec> tensors,
                    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends bytes of the current tensor (may be called several times per tensor).
  void Append(std::span<const uint8_t> bytes);
  void Finish();

  uint64_t total_data_bytes() const { return total_bytes_; }

 private:
  std::string path_;
  std::string partial_path_;
  std::vector<TensorSpec> tensors_;
  std::FILE* file_ = nullptr;
  uint64_t total_bytes_ = 0;
  uint64_t written_ = 0;
};

}  // namespace bora::formats
