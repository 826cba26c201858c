// GGUF header parsing and validation (reliability rules L2, L7, L9: every length and offset from
// the file is checked against the bytes that are there before it is used).
#include "formats/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "base/checked_math.h"
#include "base/error.h"
#include "kernels/quant/ggml_blocks.h"

namespace bora::formats {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian

size_t ScalarSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8: case GgufValueType::kI8: case GgufValueType::kBool: return 1;
    case GgufValueType::kU16: case GgufValueType::kI16: return 2;
    case GgufValueType::kU32: case GgufValueType::kI32: case GgufValueType::kF32: return 4;
    case GgufValueType::kU64: case GgufValueType::kI64: case GgufValueType::kF64: return 8;
    default: return 0;
  }
}

// Sequential little-endian reader over the file image; every read is bounds-checked.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& file_name) : bytes_(bytes), file_name_(file_name) {}

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return bytes_.size() - position_; }

  [[noreturn]] void Fail(const std::string& what) const {
    throw FormatError(file_name_ + ": " + what + " (at byte " + std::to_string(position_) + ")");
  }

  std::span<const uint8_t> Take(uint64_t count, const char* what) {
    if (count > remaining()) {
      Fail(std::string("truncated GGUF header: ") + what + " needs " + std::to_string(count) + " bytes, " +
           std::to_string(remaining()) + " left");
    }
    std::span<const uint8_t> out = bytes_.subspan(position_, count);
    position_ += count;
    return out;
  }

  template <typename T>
  T Read(const char* what) {
    T value;
    std::memcpy(&value, Take(sizeof(T), what).data(), sizeof(T));
    return value;
  }

  std::string_view String(const char* what, uint64_t max_bytes) {
    const uint64_t length = Read<uint64_t>(what);
    if (length > max_bytes) {
      Fail(std::string(what) + " of " + std::to_string(length) + " bytes exceeds the limit of " +
           std::to_string(max_bytes));
    }
    std::span<const uint8_t> text = Take(length, what);
    return {reinterpret_cast<const char*>(text.data()), text.size()};
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& file_name_;
  uint64_t position_ = 0;
};

GgufValueType ReadType(Cursor& cursor, const std::string& key) {
  const uint32_t raw = cursor.Read<uint32_t>("value type");
  if (raw > static_cast<uint32_t>(GgufValueType::kF64)) {
    cursor.Fail("key \"" + std::string(key) + "\" has unknown value type " + std::to_string(raw));
  }
  return static_cast<GgufValueType>(raw);
}

void ReadScalar(Cursor& cursor, GgufValueType type, GgufValue& value, const std::string& key) {
  value.type = type;
  switch (type) {
    case GgufValueType::kU8: value.u = cursor.Read<uint8_t>("u8"); break;
    case GgufValueType::kI8: value.i = cursor.Read<int8_t>("i8"); break;
    case GgufValueType::kU16: value.u = cursor.Read<uint16_t>("u16"); break;
    case GgufValueType::kI16: value.i = cursor.Read<int16_t>("i16"); break;
    case GgufValueType::kU32: value.u = cursor.Read<uint32_t>("u32"); break;
    case GgufValueType::kI32: value.i = cursor.Read<int32_t>("i32"); break;
    case GgufValueType::kU64: value.u = cursor.Read<uint64_t>("u64"); break;
    case GgufValueType::kI64: value.i = cursor.Read<int64_t>("i64"); break;
    case GgufValueType::kF32: value.f = cursor.Read<float>("f32"); break;
    case GgufValueType::kF64: value.f = cursor.Read<double>("f64"); break;
    case GgufValueType::kBool: {
      const uint8_t b = cursor.Read<uint8_t>("bool");
      if (b > 1) cursor.Fail("key \"" + key + "\" has bool value " + std::to_string(b));
      value.u = b;
      break;
    }
    case GgufValueType::kString: value.s = cursor.String("string value", cursor.remaining()); break;
    default: cursor.Fail("key \"" + key + "\": nested arrays are not supported");
  }
}

bool IsInteger(GgufValueType type) {
  switch (type) {
    case GgufValueType::kU8: case GgufValueType::kI8: case GgufValueType::kU16: case GgufValueType::kI16:
    case GgufValueType::kU32: case GgufValueType::kI32: case GgufValueType::kU64: case GgufValueType::kI64:
      return true;
    default:
      return false;
  }
}

bool IsSigned(GgufValueType type) {
  return type == GgufValueType::kI8 || type == GgufValueType::kI16 || type == GgufValueType::kI32 ||
         type == GgufValueType::kI64;
}

double ArrayElement(const GgufValue& value, uint64_t index) {
  const size_t size = ScalarSize(value.element_type);
  const uint8_t* p = value.raw.data() + index * size;
  auto load = [p](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p, sizeof(v));
    return static_cast<double>(v);
  };
  switch (value.element_type) {
    case GgufValueType::kU8: case GgufValueType::kBool: return load(uint8_t{});
    case GgufValueType::kI8: return load(int8_t{});
    case GgufValueType::kU16: return load(uint16_t{});
    case GgufValueType::kI16: return load(int16_t{});
    case GgufValueType::kU32: return load(uint32_t{});
    case GgufValueType::kI32: return load(int32_t{});
    case GgufValueType::kU64: return load(uint64_t{});
    case GgufValueType::kI64: return load(int64_t{});
    case GgufValueType::kF32: return load(float{});
    case GgufValueType::kF64: return load(double{});
    default: return 0;
  }
}

}  // namespace

std::string_view GgufValueTypeName(GgufValueType type) {
  static constexpr std::string_view kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto index = static_cast<uint32_t>(type);
  return index < std::size(kNames) ? kNames[index] : "unknown";
}

int64_t GgufTensorInfo::NumElements() const {
  int64_t count = 1;
  for (int64_t n : ne) count *= n;
  return count;
}

GgufHeader ParseGgufHeader(std::span<const uint8_t> file_bytes, const std::string& file_name) {
  GgufHeader header;
  header.file_name = file_name;
  Cursor cursor(file_bytes, file_name);
  const uint32_t magic = cursor.Read<uint32_t>("magic");
  if (magic != kGgufMagic) cursor.Fail("not a GGUF file (bad magic)");
  const uint32_t version = cursor.Read<uint32_t>("version");
  if (version == 1) throw Unsupported(file_name + ": GGUF version 1 (2023 files) is not supported; convert it again");
  if (version != 2 && version != 3) {
    if (version == 0x02000000 || version == 0x03000000) {
      throw Unsupported(file_name + ": big-endian GGUF files are not supported");
    }
    cursor.Fail("unknown GGUF version " + std::to_string(version));
  }
  header.version = version;
  const uint64_t tensor_count = cursor.Read<uint64_t>("tensor count");
  const uint64_t key_count = cursor.Read<uint64_t>("metadata count");
  if (tensor_count > kMaxGgufTensors) cursor.Fail("tensor count " + std::to_string(tensor_count) + " is too large");
  if (key_count > kMaxGgufKeys) cursor.Fail("metadata count " + std::to_string(key_count) + " is too large");
  // Each key needs at least 12 bytes and each tensor 28: reject counts the file cannot hold.
  if (key_count * 12 + tensor_count * 28 > cursor.remaining()) cursor.Fail("counts exceed the file size");

  header.metadata.reserve(key_count);
  for (uint64_t k = 0; k < key_count; ++k) {
    const std::string_view key = cursor.String("key", kMaxGgufNameBytes);
    if (key.empty()) cursor.Fail("empty metadata key");
    const std::string key_text(key);
    GgufValue value;
    const GgufValueType type = ReadType(cursor, key_text);
    if (type == GgufValueType::kArray) {
      value.type = type;
      value.element_type = ReadType(cursor, key_text);
      value.count = cursor.Read<uint64_t>("array length");
      if (value.element_type == GgufValueType::kArray) cursor.Fail("key \"" + key_text + "\": nested arrays are not supported");
      if (value.element_type == GgufValueType::kString) {
        // Each string needs at least its 8-byte length.
        if (value.count > cursor.remaining() / 8) cursor.Fail("key \"" + key_text + "\": array length exceeds the file");
        value.strings.reserve(value.count);
        for (uint64_t i = 0; i < value.count; ++i) value.strings.push_back(cursor.String("array string", cursor.remaining()));
      } else {
        const std::optional<uint64_t> bytes = CheckedMul(value.count, ScalarSize(value.element_type));
        if (!bytes) cursor.Fail("key \"" + key_text + "\": array length overflows");
        value.raw = cursor.Take(*bytes, "array data");
        if (value.element_type == GgufValueType::kBool) {
          for (uint8_t b : value.raw) {
            if (b > 1) cursor.Fail("key \"" + key_text + "\" has a bool array element " + std::to_string(b));
          }
        }
      }
    } else {
      ReadScalar(cursor, type, value, key_text);
    }
    if (!header.key_index.emplace(key, header.metadata.size()).second) cursor.Fail("duplicate key \"" + key_text + "\"");
    header.metadata.emplace_back(key, std::move(value));
  }

  if (const GgufValue* alignment = header.Find("general.alignment")) {
    if (alignment->type != GgufValueType::kU32 || alignment->u == 0 || (alignment->u & (alignment->u - 1)) != 0) {
      throw FormatError(file_name + ": general.alignment must be a u32 power of two");
    }
    header.alignment = static_cast<uint32_t>(alignment->u);
  }

  header.tensors.reserve(tensor_count);
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensorInfo info;
    info.name = cursor.String("tensor name", kMaxGgufNameBytes);
    const std::string name(info.name);
    if (info.name.empty()) cursor.Fail("empty tensor name");
    const uint32_t dims = cursor.Read<uint32_t>("tensor rank");
    if (dims == 0 || dims > kMaxGgufDims) {
      cursor.Fail("tensor \"" + name + "\" has " + std::to_string(dims) + " dimensions (1 to 4 allowed)");
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < dims; ++d) {
      const int64_t n = cursor.Read<int64_t>("tensor dimension");
      if (n <= 0 || n > (int64_t{1} << 40)) cursor.Fail("tensor \"" + name + "\" has dimension " + std::to_string(n));
      const std::optional<uint64_t> product = CheckedMul(elements, static_cast<uint64_t>(n));
      if (!product || *product > (uint64_t{1} << 48)) cursor.Fail("tensor \"" + name + "\" has too many elements");
      elements = *product;
      info.ne.push_back(n);
    }
    info.type = cursor.Read<uint32_t>("tensor type");
    const kernels::GgmlTypeTraits traits = kernels::GgmlTypeInfo(info.type);
    if (traits.block_size <= 0) cursor.Fail("tensor \"" + name + "\" has unknown type " + std::to_string(info.type));
    if (info.ne[0] % traits.block_size != 0) {
      cursor.Fail("tensor \"" + name + "\" of type " + traits.name + " has a row of " + std::to_string(info.ne[0]) +
                  " elements, not a multiple of its block size " + std::to_string(traits.block_size));
    }
    const std::optional<uint64_t> size =
        CheckedMul(elements / static_cast<uint64_t>(traits.block_size), static_cast<uint64_t>(traits.type_size));
    if (!size) cursor.Fail("tensor \"" + name + "\" size overflows");
    info.size = *size;
    info.offset = cursor.Read<uint64_t>("tensor offset");
    if (info.offset % header.alignment != 0) {
      cursor.Fail("tensor \"" + name + "\" offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
                  std::to_string(header.alignment));
    }
    if (!header.tensor_index.emplace(info.name, header.tensors.size()).second) {
      cursor.Fail("duplicate tensor \"" + name + "\"");
    }
    header.tensors.push_back(std::move(info));
  }

  const uint64_t end_of_infos = cursor.position();
  const uint64_t data_start = (end_of_infos + header.alignment - 1) / header.alignment * header.alignment;
  if (tensor_count > 0 && data_start > file_bytes.size()) {
    throw FormatError(file_name + ": the data section starts past the end of the file");
  }
  header.data_start = data_start;
  const uint64_t data_size = file_bytes.size() > data_start ? file_bytes.size() - data_start : 0;
  // Bounds, then no two tensors may share bytes.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& info : header.tensors) {
    const std::optional<uint64_t> end = CheckedAdd(info.offset, info.size);
    if (!end || *end > data_size) {
      throw FormatError(file_name + ": tensor \"" + std::string(info.name) + "\" data [" + std::to_string(info.offset) +
                        ", +" + std::to_string(info.size) + ") lies outside the file's data section of " +
                        std::to_string(data_size) + " bytes (truncated download?)");
    }
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset) {
      throw FormatError(file_name + ": tensors \"" + std::string(by_offset[i - 1]->name) + "\" and \"" +
                        std::string(by_offset[i]->name) + "\" overlap");
    }
  }
  return header;
}

const GgufValue* GgufHeader::Find(std::string_view key) const {
  auto it = key_index.find(key);
  return it == key_index.end() ? nullptr : &metadata[it->second].second;
}

const GgufTensorInfo* GgufHeader::FindTensor(std::string_view name) const {
  auto it = tensor_index.find(name);
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

std::optional<std::string> GgufHeader::GetString(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufValueType::kString) {
    throw FormatError(file_name + ": key \"" + std::string(key) + "\" is a " + std::string(GgufValueTypeName(value->type)) +
                      ", expected a string");
  }
  return std::string(value->s);
}

std::optional<uint64_t> GgufHeader::GetUint(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return std::nullopt;
  if (!IsInteger(value->type)) {
    throw FormatError(file_name + ": key \"" + std::string(key) + "\" is a " + std::string(GgufValueTypeName(value->type)) +
                      ", expected an integer");
  }
  if (IsSigned(value->type)) {
    if (value->i < 0) throw FormatError(file_name + ": key \"" + std::string(key) + "\" is negative");
    return static_cast<uint64_t>(value->i);
  }
  return value->u;
}

std::optional<double> GgufHeader::GetFloat(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type == GgufValueType::kF32 || value->type == GgufValueType::kF64) {
    if (!std::isfinite(value->f)) throw FormatError(file_name + ": key \"" + std::string(key) + "\" is not finite");
    return value->f;
  }
  if (IsInteger(value->type)) return IsSigned(value->type) ? static_cast<double>(value->i) : static_cast<double>(value->u);
  throw FormatError(file_name + ": key \"" + std::string(key) + "\" is a " + std::string(GgufValueTypeName(value->type)) +
                    ", expected a number");
}

std::optional<bool> GgufHeader::GetBool(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return std::nullopt;
  if (value->type != GgufValueType::kBool) {
    throw FormatError(file_name + ": key \"" + std::string(key) + "\" is a " + std::string(GgufValueTypeName(value->type)) +
                      ", expected a bool");
  }
  return value->u != 0;
}

std::vector<std::string_view> GgufHeader::GetStringArray(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return {};
  if (value->type != GgufValueType::kArray || value->element_type != GgufValueType::kString) {
    throw FormatError(file_name + ": key \"" + std::string(key) + "\" is not an array of strings");
  }
  return value->strings;
}

std::vector<double> GgufHeader::GetNumberArray(std::string_view key) const {
  const GgufValue* value = Find(key);
  if (value == nullptr) return {};
  if (value->type != GgufValueType::kArray || ScalarSize(value->element_type) == 0) {
    throw FormatError(file_name + ": key \"" + std::string(key) + "\" is not an array of numbers");
  }
  std::vector<double> out(value->count);
  for (uint64_t i = 0; i < value->count; ++i) out[i] = ArrayElement(*value, i);
  return out;
}

bool LooksLikeGguf(const std::string& path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile GgufFile::Open(const std::string& path) {
  GgufFile file;
  file.file_ = MappedFile::Open(path);
  file.header_ = ParseGgufHeader(file.file_.bytes(), path);
  return file;
}

}  // namespace bora::formats
