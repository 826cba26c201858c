// GGUF v3 serialization: little-endian fields, 8-byte string lengths, 32-byte aligned data.
#include "formats/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "base/error.h"
#include "kernels/quant/ggml_blocks.h"

namespace bora::formats {
namespace {

constexpr uint64_t kAlignment = kDefaultGgufAlignment;

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutString(std::string& out, const std::string& text) {
  Put<uint64_t>(out, text.size());
  out += text;
}

}  // namespace

void GgufWriter::Key(const std::string& key, GgufValueType type) {
  PutString(metadata_, key);
  Put<uint32_t>(metadata_, static_cast<uint32_t>(type));
  ++key_count_;
}

void GgufWriter::AddString(const std::string& key, const std::string& value) {
  Key(key, GgufValueType::kString);
  PutString(metadata_, value);
}

void GgufWriter::AddU32(const std::string& key, uint32_t value) {
  Key(key, GgufValueType::kU32);
  Put(metadata_, value);
}

void GgufWriter::AddF32(const std::string& key, float value) {
  Key(key, GgufValueType::kF32);
  Put(metadata_, value);
}

void GgufWriter::AddBool(const std::string& key, bool value) {
  Key(key, GgufValueType::kBool);
  Put<uint8_t>(metadata_, value ? 1 : 0);
}

void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& values) {
  Key(key, GgufValueType::kArray);
  Put<uint32_t>(metadata_, static_cast<uint32_t>(GgufValueType::kString));
  Put<uint64_t>(metadata_, values.size());
  for (const std::string& value : values) PutString(metadata_, value);
}

void GgufWriter::AddF32Array(const std::string& key, const std::vector<float>& values) {
  Key(key, GgufValueType::kArray);
  Put<uint32_t>(metadata_, static_cast<uint32_t>(GgufValueType::kF32));
  Put<uint64_t>(metadata_, values.size());
  for (float value : values) Put(metadata_, value);
}

void GgufWriter::AddI32Array(const std::string& key, const std::vector<int32_t>& values) {
  Key(key, GgufValueType::kArray);
  Put<uint32_t>(metadata_, static_cast<uint32_t>(GgufValueType::kI32));
  Put<uint64_t>(metadata_, values.size());
  for (int32_t value : values) Put(metadata_, value);
}

void GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type,
                           std::span<const uint8_t> bytes) {
  if (ne.empty() || ne.size() > kMaxGgufDims) throw InvalidArgument("GGUF tensor " + name + ": 1 to 4 dimensions");
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<uint64_t>(ne[d]);
  const uint64_t expected = kernels::GgmlRowBytes(type, ne[0]) * rows;
  if (bytes.size() != expected) {
    throw InvalidArgument("GGUF tensor " + name + ": " + std::to_string(bytes.size()) + " bytes, its shape and type need " +
                          std::to_string(expected));
  }
  tensors_.push_back({name, ne, type, std::vector<uint8_t>(bytes.begin(), bytes.end())});
}

std::string GgufWriter::Build() const {
  std::string out = "GGUF";
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors_.size());
  Put<uint64_t>(out, key_count_);
  out += metadata_;
  uint64_t offset = 0;
  for (const Tensor& tensor : tensors_) {
    PutString(out, tensor.name);
    Put<uint32_t>(out, static_cast<uint32_t>(tensor.ne.size()));
    for (int64_t n : tensor.ne) Put<int64_t>(out, n);
    Put<uint32_t>(out, tensor.type);
    Put<uint64_t>(out, offset);
    offset += (tensor.bytes.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
  for (const Tensor& tensor : tensors_) {
    out.append(reinterpret_cast<const char*>(tensor.bytes.data()), tensor.bytes.size());
    out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
  }
  return out;
}

void GgufWriter::Write(const std::string& path) const {
  const std::string image = Build();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(image.data(), static_cast<std::streamsize>(image.size()));
  if (!out) throw IoError(path + ": cannot write");
}

}  // namespace bora::formats
