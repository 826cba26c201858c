// safetensors reader with complete header validation.
#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "base/checked_math.h"
#include "base/error.h"

namespace bora::formats {
namespace {

using Json = nlohmann::json;

[[noreturn]] void Fail(const std::string& file_name, const std::string& problem) {
  throw FormatError(file_name + ": invalid safetensors file: " + problem);
}

// Parses the JSON header, rejecting nesting deeper than kMaxSafetensorsJsonDepth and
// duplicate keys in any object (nlohmann would silently keep the last one).
Json ParseHeaderJson(std::string_view text, const std::string& file_name) {
  std::vector<std::set<std::string>> keys_by_depth;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (depth > kMaxSafetensorsJsonDepth) {
      Fail(file_name, "header JSON nested deeper than " + std::to_string(kMaxSafetensorsJsonDepth));
    }
    if (event == Json::parse_event_t::object_start) {
      if (keys_by_depth.size() <= static_cast<size_t>(depth) + 1) keys_by_depth.resize(depth + 2);
      keys_by_depth[depth + 1].clear();
    } else if (event == Json::parse_event_t::key) {
      if (keys_by_depth.size() <= static_cast<size_t>(depth)) keys_by_depth.resize(depth + 1);
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys_by_depth[depth].insert(key).second) Fail(file_name, "duplicate key \"" + key + "\"");
      if (depth == 1 && keys_by_depth[1].size() > kMaxSafetensorsTensors + 1) {
        Fail(file_name, "more than 2^20 tensors");
      }
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    Fail(file_name, std::string("header is not valid JSON: ") + e.what());
  }
}

uint64_t ReadOffset(const Json& value, const std::string& file_name, const std::string& name) {
  if (!value.is_number_unsigned()) {
    Fail(file_name, "tensor \"" + name + "\": data_offsets must be non-negative integers");
  }
  return value.get<uint64_t>();
}

TensorInfo ParseTensorEntry(const std::string& name, const Json& entry,
                            const std::string& file_name) {
  std::string where = "tensor \"" + name + "\": ";
  if (name.empty()) Fail(file_name, "empty tensor name");
  if (!entry.is_object()) Fail(file_name, where + "entry is not an object");
  auto dtype = entry.find("dtype");
  auto shape = entry.find("shape");
  auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || !dtype->is_string()) Fail(file_name, where + "missing string \"dtype\"");
  if (shape == entry.end() || !shape->is_array()) Fail(file_name, where + "missing array \"shape\"");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
    Fail(file_name, where + "\"data_offsets\" must be [begin, end]");
  }
  TensorInfo info;
  info.name = name;
  info.dtype_name = dtype->get<std::string>();
  size_t element_size = SafetensorsDTypeSize(info.dtype_name);
  if (element_size == 0) Fail(file_name, where + "unknown dtype \"" + info.dtype_name + "\"");
  if (shape->size() > kMaxTensorRank) Fail(file_name, where + "rank above 8");
  uint64_t elements = 1;
  for (const Json& extent : *shape) {
    if (!extent.is_number_unsigned()) Fail(file_name, where + "shape entries must be non-negative integers");
    uint64_t value = extent.get<uint64_t>();
    auto product = CheckedMul(elements, value);
    if (!product || value > static_cast<uint64_t>(INT64_MAX)) Fail(file_name, where + "shape product overflows");
    elements = *product;
    info.shape.push_back(static_cast<int64_t>(value));
  }
  info.begin = ReadOffset((*offsets)[0], file_name, name);
  info.end = ReadOffset((*offsets)[1], file_name, name);
  if (info.end < info.begin) Fail(file_name, where + "data_offsets end < begin");
  auto byte_size = CheckedMul(elements, element_size);
  if (!byte_size) Fail(file_name, where + "byte size overflows");
  if (info.end - info.begin != *byte_size) {
    Fail(file_name, where + "data_offsets span " + std::to_string(info.end - info.begin) +
                        " bytes but dtype x shape needs " + std::to_string(*byte_size));
  }
  return info;
}

}  // namespace

size_t SafetensorsDTypeSize(std::string_view dtype_name) {
  static const std::pair<std::string_view, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& [name, size] : kSizes) {
    if (name == dtype_name) return size;
  }
  return 0;
}

SafetensorsHeader ParseSafetensorsHeader(std::span<const uint8_t> file_bytes,
                                         const std::string& file_name) {
  if (file_bytes.size() < 8) Fail(file_name, "file is shorter than the 8-byte header length");
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | file_bytes[i];
  if (header_length > kMaxSafetensorsHeaderBytes) {
    Fail(file_name, "header length " + std::to_string(header_length) + " exceeds 100 MB");
  }
  auto data_start = CheckedAdd(8, header_length);
  if (!data_start || *data_start > file_bytes.size()) {
    Fail(file_name, "header length " + std::to_string(header_length) + " runs past the end of the file (" +
                        std::to_string(file_bytes.size()) + " bytes): truncated file?");
  }
  if (header_length == 0 || file_bytes[8] != '{') Fail(file_name, "header does not start with '{'");
  std::string_view text(reinterpret_cast<const char*>(file_bytes.data() + 8), header_length);
  Json root = ParseHeaderJson(text, file_name);
  if (!root.is_object()) Fail(file_name, "header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = *data_start;
  header.data_size = file_bytes.size() - *data_start;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) Fail(file_name, "__metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) Fail(file_name, "__metadata__ value for \"" + key + "\" is not a string");
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(ParseTensorEntry(name, entry, file_name));
  }
  // Tensors must tile the data buffer from 0 without holes or overlap; empty tensors may touch.
  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const TensorInfo& info : header.tensors) {
    if (info.begin != expected) {
      Fail(file_name, "tensor \"" + info.name + "\" starts at " + std::to_string(info.begin) +
                          (info.begin < expected ? ", overlapping the previous tensor" : ", leaving a hole") +
                          " (expected " + std::to_string(expected) + ")");
    }
    expected = info.end;
  }
  if (expected != header.data_size) {
    Fail(file_name, "tensors cover " + std::to_string(expected) + " bytes but the data buffer has " +
                        std::to_string(header.data_size) + (expected > header.data_size ? " (truncated file?)" : " (trailing bytes)"));
  }
  return header;
}

int64_t TensorView::NumElements() const {
  int64_t count = 1;
  for (int64_t extent : info->shape) count *= extent;
  return count;
}

MatrixView TensorView::AsMatrix() const {
  const auto& shape = info->shape;
  if (shape.size() == 2) return MatrixView{dtype, bytes.data(), shape[0], shape[1]};
  if (shape.size() == 1) return MatrixView{dtype, bytes.data(), 1, shape[0]};
  throw FormatError("tensor \"" + info->name + "\" has rank " + std::to_string(shape.size()) +
                    ", expected a matrix");
}

SafetensorsFile SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile result;
  result.file_ = MappedFile::Open(path);
  result.header_ = ParseSafetensorsHeader(result.file_.bytes(), path);
  for (size_t i = 0; i < result.header_.tensors.size(); ++i) {
    result.index_.emplace(result.header_.tensors[i].name, i);
  }
  return result;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::View(std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) throw FormatError(path() + ": tensor \"" + std::string(name) + "\" is missing");
  return View(*info);
}

TensorView SafetensorsFile::View(const TensorInfo& info) const {
  auto dtype = ParseStorageDType(info.dtype_name);
  if (!dtype) {
    throw Unsupported(path() + ": tensor \"" + info.name + "\" has dtype " + info.dtype_name +
                      "; bora reads F32, BF16 and F16 weights (and U8 planes of its own packed q8/q4 folders)");
  }
  TensorView view;
  view.info = &info;
  view.dtype = *dtype;
  view.bytes = file_.bytes().subspan(header_.data_start + info.begin, info.end - info.begin);
  return view;
}

}  // namespace bora::formats
