// Recognition and vocabulary size of Mistral tokenizer files.
#include "formats/tokenizer_file.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "base/error.h"
#include "base/mapped_file.h"

namespace bora::formats {
namespace {

// Largest vocabulary accepted (the reliability rules' T2; real files: 32768 and 131072), and
// largest Tekken JSON read (real files: 13 to 20 MiB), as the tokenizer loaders.
constexpr int64_t kMaxVocabSize = int64_t{1} << 20;
constexpr uintmax_t kMaxTekkenFileBytes = uintmax_t{128} << 20;

// Reads a protobuf varint at `pos`; returns false when it runs past `end` or exceeds 64 bits.
bool ReadVarint(const uint8_t* data, size_t end, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= end) return false;
    uint8_t byte = data[pos++];
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Counts the top-level `pieces` (field 1, length-delimited) of a SentencePiece ModelProto.
int64_t CountSentencePieces(const std::string& path) {
  MappedFile file = MappedFile::Open(path);
  const uint8_t* data = file.bytes().data();
  const size_t size = file.bytes().size();
  size_t pos = 0;
  int64_t pieces = 0;
  auto fail = [&](const std::string& problem) -> int64_t {
    throw FormatError(path + ": not a SentencePiece model: " + problem);
  };
  while (pos < size) {
    uint64_t tag;
    if (!ReadVarint(data, size, pos, tag)) return fail("truncated field tag");
    uint64_t field = tag >> 3;
    switch (tag & 7) {
      case 0: {
        uint64_t ignored;
        if (!ReadVarint(data, size, pos, ignored)) return fail("truncated varint");
        break;
      }
      case 1:
        if (size - pos < 8) return fail("truncated fixed64");
        pos += 8;
        break;
      case 2: {
        uint64_t length;
        if (!ReadVarint(data, size, pos, length) || length > size - pos)
          return fail("length runs past the end");
        pos += length;
        if (field == 1) ++pieces;
        break;
      }
      case 5:
        if (size - pos < 4) return fail("truncated fixed32");
        pos += 4;
        break;
      default:
        return fail("unknown wire type");
    }
  }
  if (pieces == 0) return fail("no pieces");
  if (pieces > kMaxVocabSize) return fail("more than " + std::to_string(kMaxVocabSize) + " pieces");
  return pieces;
}

}  // namespace

bool IsTokenizerFileName(const std::string& file_name) {
  static const std::regex kPattern(
      R"(tekken(_\d+)?(-[\w-]+)?\.json|(.*tokenizer.*)\.model(\.v\d+(m\d+)?)?)");
  return std::regex_match(file_name, kPattern);
}

int64_t TokenizerVocabSize(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() >= 5 && name.substr(name.size() - 5) == ".json") {
    std::ifstream in(path);
    if (!in) throw IoError(path + ": cannot open");
    std::error_code error;
    if (const uintmax_t size = std::filesystem::file_size(path, error);
        !error && size > kMaxTekkenFileBytes) {
      throw FormatError(path + ": " + std::to_string(size) +
                        " bytes is far larger than any Tekken tokenizer file");
    }
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(path + ": not valid JSON: " + e.what());
    }
    if (!root.is_object() || !root.contains("config") || !root["config"].is_object() ||
        !root["config"].contains("default_vocab_size") ||
        !root["config"]["default_vocab_size"].is_number_unsigned()) {
      throw FormatError(path + ": not a Tekken file (no config.default_vocab_size)");
    }
    const uint64_t vocab_size = root["config"]["default_vocab_size"].get<uint64_t>();
    if (vocab_size == 0 || vocab_size > static_cast<uint64_t>(kMaxVocabSize)) {
      throw FormatError(path + ": config.default_vocab_size " + std::to_string(vocab_size) +
                        " is outside [1, " + std::to_string(kMaxVocabSize) + "]");
    }
    return static_cast<int64_t>(vocab_size);
  }
  return CountSentencePieces(path);
}

}  // namespace bora::formats
