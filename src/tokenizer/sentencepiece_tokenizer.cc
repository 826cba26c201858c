// SentencePiece backend: libsentencepiece for encoding and decoding, plus per-piece tables that
// let the streaming detokenizer reproduce the library's decoding one id at a time.
#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space inside pieces.
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

// Real models are a few MB; the cap keeps a wrongly chosen multi-GB file from being read whole.
constexpr uintmax_t kMaxModelBytes = uintmax_t{256} << 20;

std::string ReadModelFile(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    throw IoError(path + ": cannot open SentencePiece model: " +
                  (error ? error.message() : std::string("no such file")));
  }
  if (!std::filesystem::is_regular_file(status)) {
    throw IoError(path + ": cannot open SentencePiece model: not a regular file");
  }
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxModelBytes) {
    throw FormatError(path + ": not a SentencePiece model: " + std::to_string(size) +
                      " bytes is far larger than any tokenizer model");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open SentencePiece model: " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(path + ": read failed");
  return data;
}

bool IsValidUtf8(std::string_view text) {
  uint32_t code_point;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = DecodeUtf8(text, pos, code_point);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

// Reads a protobuf varint at `pos`; false when it runs past the end or beyond 64 bits.
bool ReadVarint(std::string_view data, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= data.size()) return false;
    const auto byte = static_cast<uint8_t>(data[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Calls `visit(field, payload)` for every length-delimited field of the protobuf message
// `data` and skips the others; false when the wire format is malformed or uses groups (which
// no SentencePiece model contains).
template <typename Visit>
bool ForEachLengthDelimited(std::string_view data, Visit visit) {
  size_t pos = 0;
  while (pos < data.size()) {
    uint64_t tag;
    if (!ReadVarint(data, pos, tag)) return false;
    switch (tag & 7) {
      case 0: {
        uint64_t ignored;
        if (!ReadVarint(data, pos, ignored)) return false;
        break;
      }
      case 1:
        if (data.size() - pos < 8) return false;
        pos += 8;
        break;
      case 2: {
        uint64_t length;
        if (!ReadVarint(data, pos, length) || length > data.size() - pos) return false;
        visit(tag >> 3, data.substr(pos, length));
        pos += length;
        break;
      }
      case 5:
        if (data.size() - pos < 4) return false;
        pos += 4;
        break;
      default:
        return false;
    }
  }
  return true;
}

// Whether ModelProto.denormalizer_spec (field 5) has a non-empty precompiled_charsmap (field
// 2): the library then rewrites the decoded text as a whole, which no per-token table can
// reproduce. Runs before the library parses the file, so that a file which is not protobuf at
// all gets a plain FormatError rather than the library's source-location message.
bool HasDenormalizer(const std::string& path, std::string_view proto) {
  bool found = false;
  bool specs_well_formed = true;
  const bool well_formed =
      ForEachLengthDelimited(proto, [&](uint64_t field, std::string_view spec) {
        if (field != 5) return;
        specs_well_formed &=
            ForEachLengthDelimited(spec, [&](uint64_t inner, std::string_view value) {
              if (inner == 2 && !value.empty()) found = true;
            });
      });
  if (!well_formed || !specs_well_formed) {
    throw FormatError(path + ": not a SentencePiece model: malformed protobuf");
  }
  return found;
}

// Parses a byte piece "<0xXX>" (upper-case hex, as the library writes them).
std::optional<char> ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  int value = 0;
  for (char digit : piece.substr(3, 2)) {
    value *= 16;
    if (digit >= '0' && digit <= '9') {
      value += digit - '0';
    } else if (digit >= 'A' && digit <= 'F') {
      value += digit - 'A' + 10;
    } else {
      return std::nullopt;
    }
  }
  return static_cast<char>(value);
}

std::string ReplaceSpaceMarkers(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.substr(pos, kSpaceMarker.size()) == kSpaceMarker) {
      out += ' ';
      pos += kSpaceMarker.size();
    } else {
      out += piece[pos++];
    }
  }
  return out;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const std::string proto = ReadModelFile(path);
  const bool has_denormalizer = HasDenormalizer(path, proto);
  const sentencepiece::util::Status status = processor_->LoadFromSerializedProto(proto);
  if (!status.ok()) {
    throw FormatError(path + ": not a SentencePiece model: " + status.message());
  }
  if (has_denormalizer) {
    throw Unsupported(path + ": SentencePiece models with a denormalizer are not supported");
  }
  BuildTables(path);
  bos_id_ = processor_->bos_id();
  eos_id_ = processor_->eos_id();
  unk_id_ = processor_->unk_id();
  pad_id_ = processor_->pad_id();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::BuildTables(const std::string& path) {
  const int size = processor_->GetPieceSize();
  if (size <= 0) throw FormatError(path + ": not a SentencePiece model: no pieces");
  kinds_.resize(size);
  token_bytes_.resize(size);
  const auto decode = [&](std::vector<int> ids) {
    std::string text;
    const sentencepiece::util::Status status = processor_->Decode(ids, &text);
    if (!status.ok()) throw FormatError(path + ": cannot decode pieces: " + status.ToString());
    return text;
  };

  std::optional<int> marked;  // the first text piece beginning with U+2581
  for (int id = 0; id < size; ++id) {
    const std::string& piece = processor_->IdToPiece(id);
    // Valid UTF-8 pieces keep every decoded text and every kKeep piece valid UTF-8.
    if (piece.empty() || !IsValidUtf8(piece)) {
      throw FormatError(path + ": piece " + std::to_string(id) + " is empty or not UTF-8");
    }
    if (processor_->IsControl(id)) {
      kinds_[id] = PieceKind::kControl;
    } else if (processor_->IsUnknown(id)) {
      kinds_[id] = PieceKind::kUnknown;
      // The library writes the model's unk_surface (default " ⁇ ") for the unknown piece.
      token_bytes_[id] = decode({id});
      if (!IsValidUtf8(token_bytes_[id])) {
        throw FormatError(path + ": the unknown piece's surface is not UTF-8");
      }
    } else if (processor_->IsByte(id)) {
      const std::optional<char> byte = ParseBytePiece(piece);
      if (!byte) throw FormatError(path + ": byte piece " + std::to_string(id) + " is not <0xXX>");
      kinds_[id] = PieceKind::kByte;
      token_bytes_[id] = std::string(1, *byte);
    } else {
      kinds_[id] = PieceKind::kText;
      token_bytes_[id] = ReplaceSpaceMarkers(piece);
      if (!marked && piece.starts_with(kSpaceMarker)) marked = id;
    }
  }

  // Ask the library how it treats a leading U+2581 rather than trusting the normalizer flags:
  // add_dummy_prefix strips it from the first piece only; remove_extra_whitespaces would strip
  // it from every leading piece until text appears, which is not supported.
  if (!marked) return;  // no piece could ever be stripped
  const std::string& marked_bytes = token_bytes_[*marked];
  const std::string alone = decode({*marked});
  if (alone == marked_bytes.substr(1)) {
    strips_leading_space_ = true;
  } else if (alone != marked_bytes) {
    throw Unsupported(path + ": SentencePiece model decodes piece " + std::to_string(*marked) +
                      " in a way bora cannot stream");
  }
  const int space = processor_->PieceToId(kSpaceMarker);
  if (strips_leading_space_ && space >= 0 && space < size && kinds_[space] == PieceKind::kText &&
      processor_->IdToPiece(space) == kSpaceMarker && decode({space, *marked}) != marked_bytes) {
    throw Unsupported(path +
                      ": SentencePiece models with remove_extra_whitespaces are not supported");
  }
}

void SentencePieceTokenizer::CheckId(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw InvalidArgument("token id " + std::to_string(id) + " is out of range [0, " +
                          std::to_string(vocab_size()) + ")");
  }
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  const sentencepiece::util::Status status = processor_->Encode(text, &ids);
  // The library only fails on an uninitialised model or internal inconsistencies; neither can
  // happen after a successful load, but a failure must still not pass silently.
  if (!status.ok()) throw Error("SentencePiece encoding failed: " + status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::Decode(std::span<const int32_t> ids,
                                           SpecialTokenPolicy policy) const {
  // The library rejects bad ids with a status, but IsControl/IdToPiece would index out of
  // bounds, so every id is checked before anything else.
  for (int32_t id : ids) CheckId(id);
  if (policy == SpecialTokenPolicy::kKeep) {
    std::string text;
    for (int32_t id : ids) text += processor_->IdToPiece(id);
    return text;
  }
  if (policy == SpecialTokenPolicy::kRaise) {
    for (int32_t id : ids) {
      if (kinds_[id] == PieceKind::kControl) {
        throw InvalidArgument("cannot decode special token " + processor_->IdToPiece(id) + " (id " +
                              std::to_string(id) + ") under SpecialTokenPolicy::kRaise");
      }
    }
  }
  std::string text;
  const sentencepiece::util::Status status =
      processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) throw Error("SentencePiece decoding failed: " + status.ToString());
  return text;
}

std::string SentencePieceTokenizer::IdToPiece(int32_t id) const {
  CheckId(id);
  return processor_->IdToPiece(id);
}

bool SentencePieceTokenizer::IsSpecial(int32_t id) const {
  CheckId(id);
  return kinds_[id] == PieceKind::kControl;
}

std::optional<int32_t> SentencePieceTokenizer::FindSpecial(std::string_view name) const {
  // PieceToId answers <unk>'s id for names that are not pieces, hence the comparison.
  const int id = processor_->PieceToId(name);
  if (id < 0 || id >= vocab_size() || kinds_[id] != PieceKind::kControl) return std::nullopt;
  if (processor_->IdToPiece(id) != name) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::TokenBytes(int32_t id) const {
  CheckId(id);
  return token_bytes_[id];
}

std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace bora::tokenizer
