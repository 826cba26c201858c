// Streams tensors into a new safetensors file.
#include "formats/safetensors_writer.h"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/durable_file.h"
#include "base/error.h"

namespace bora::formats {

uint64_t TensorSpec::ByteSize() const {
  uint64_t elements = 1;
  for (int64_t extent : shape) elements *= static_cast<uint64_t>(extent);
  return elements * DTypeSize(dtype);
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorSpec> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), partial_path_(path_ + ".partial"), tensors_(std::move(tensors)) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorSpec& spec : tensors_) {
    if (header.contains(spec.name)) throw InvalidArgument(path_ + ": duplicate tensor name \"" + spec.name + "\"");
    uint64_t size = spec.ByteSize();
    header[spec.name] = {{"dtype", std::string(DTypeName(spec.dtype))},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  total_bytes_ = offset;
  std::string text = header.dump();
  // Pad so the data buffer starts 64-byte aligned in the file (8 + header is a multiple of 64):
  // mmapped tensors then keep their cache-line alignment. A multiple of 8, as the format wants.
  text.append((64 - (8 + text.size()) % 64) % 64, ' ');
  file_ = std::fopen(partial_path_.c_str(), "wb");
  if (file_ == nullptr) throw IoError(partial_path_ + ": cannot create: " + std::strerror(errno));
  uint8_t length[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  if (std::fwrite(length, 1, 8, file_) != 8 || std::fwrite(text.data(), 1, n, file_) != n) {
    throw IoError(partial_path_ + ": write failed: " + std::strerror(errno));
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(partial_path_.c_str());
  }
}

void SafetensorsWriter::Append(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;  // zero-size tensors: nothing to write (and data() may be null)
  if (written_ + bytes.size() > total_bytes_) {
    throw InvalidArgument(path_ + ": more tensor data appended than the header declares");
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    throw IoError(partial_path_ + ": write failed: " + std::strerror(errno));
  }
  written_ += bytes.size();
}

void SafetensorsWriter::Finish() {
  if (written_ != total_bytes_) {
    throw InvalidArgument(path_ + ": " + std::to_string(written_) + " data bytes written, header declares " +
                          std::to_string(total_bytes_));
  }
  SyncFile(file_, partial_path_);  // the data is on disk before the rename publishes it
  int close_result = std::fclose(file_);
  file_ = nullptr;
  if (close_result != 0) {
    std::remove(partial_path_.c_str());
    throw IoError(partial_path_ + ": close failed: " + std::strerror(errno));
  }
  try {
    RenameDurably(partial_path_, path_);
  } catch (const IoError&) {
    std::remove(partial_path_.c_str());
    throw;
  }
}

}  // namespace bora::formats
