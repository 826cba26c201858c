// SentencePiece backend: libsentencepiece for encoding and decoding, plus per-piece tables that
// let the streaming detokenizer reproduce the library's decoding one id at a time.
#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
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

// Most pieces a model may have (real files: 32768) and the longest piece, as the reliability
// rules' T2; the longest accepted precompiled_charsmap (nmt_nfkc's is about 240 KiB).
constexpr size_t kMaxPieces = size_t{1} << 20;
constexpr size_t kMaxPieceBytes = size_t{4} << 10;
constexpr size_t kMaxCharsMapBytes = size_t{4} << 20;
// The library's Normalizer collects at most this many prefix matches on the stack and then
// reads as many as the trie reports (normalizer.h's kMaxTrieResultsSize).
constexpr int kMaxCharsMapPrefixMatches = 32;

// Checks a precompiled_charsmap the way the library will use it, since it trusts it blindly:
// `<trie size: u32 LE><darts-clone double array><NUL-terminated replacement strings>`. Every
// node the library's commonPrefixSearch can reach must lie inside the array (it reads all 256
// children of a node's base), the nodes must form a DAG (darts-clone shares suffixes) with at
// most kMaxCharsMapPrefixMatches leaves on any path, and every leaf value must start a
// NUL-terminated string inside the replacement block. Returns the problem, or "" when the map
// is safe.
std::string CheckCharsMap(std::string_view blob) {
  if (blob.size() > kMaxCharsMapBytes) return "precompiled_charsmap is larger than 4 MiB";
  if (blob.size() <= 4) return "precompiled_charsmap is truncated";
  const uint32_t trie_bytes = static_cast<uint32_t>(static_cast<uint8_t>(blob[0])) |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[1])) << 8 |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[2])) << 16 |
                              static_cast<uint32_t>(static_cast<uint8_t>(blob[3])) << 24;
  // The library only checks trie_bytes < blob.size(), which lets the trie run up to three
  // bytes past the end of the map.
  if (trie_bytes > blob.size() - 4) return "precompiled_charsmap trie size exceeds the map";
  const std::string_view trie = blob.substr(4, trie_bytes);
  const std::string_view replacements = blob.substr(4 + trie_bytes);
  const size_t units = trie.size() / 4;
  if (units == 0) return "precompiled_charsmap has an empty trie";
  const auto unit = [&](size_t index) {
    uint32_t value;
    std::memcpy(&value, trie.data() + 4 * index, 4);
    return value;
  };
  // darts-clone's DoubleArrayUnit accessors.
  const auto offset = [](uint32_t u) -> size_t { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  const auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1) == 1; };
  const auto label = [](uint32_t u) { return u & ((1u << 31) | 0xFF); };
  const auto value = [](uint32_t u) { return u & ((1u << 31) - 1); };
  const char* const kOutside = "precompiled_charsmap trie jumps outside the array";

  // Depth-first over the reachable nodes: state 0 unvisited, 1 on the current path (reaching
  // it again is a cycle), 2 done with `leaves` = the most leaves on a path starting there.
  std::vector<uint8_t> state(units, 0);
  std::vector<int> leaves(units, 0);
  struct Frame {
    size_t position;
    size_t base;
    uint32_t next_label;  // the next child label to look at
    int best;             // the most leaves below, over the children done so far
  };
  std::vector<Frame> stack;
  const auto enter = [&](size_t position) -> const char* {
    const size_t base = position ^ offset(unit(position));
    if ((base | 0xFF) >= units) return kOutside;
    state[position] = 1;
    stack.push_back({position, base, 0, 0});
    return nullptr;
  };
  if (const char* problem = enter(0)) return problem;
  while (!stack.empty()) {
    Frame& frame = stack.back();
    if (frame.next_label == 256) {
      const size_t position = frame.position;
      // The root's own leaf flag is never read; every other node counts its own.
      leaves[position] = frame.best + (position != 0 && has_leaf(unit(position)) ? 1 : 0);
      state[position] = 2;
      stack.pop_back();
      if (leaves[position] > kMaxCharsMapPrefixMatches) {
        return "precompiled_charsmap has more than 32 rules sharing a prefix";
      }
      if (!stack.empty()) stack.back().best = std::max(stack.back().best, leaves[position]);
      continue;
    }
    const uint32_t c = frame.next_label++;
    const size_t child = frame.base ^ c;
    const uint32_t child_unit = unit(child);
    if (label(child_unit) != c) continue;
    if (has_leaf(child_unit)) {
      // The leaf is the unit at the child's base (checked to be inside when the child is
      // entered); its value must start a string in the replacement block.
      const size_t child_base = child ^ offset(child_unit);
      if ((child_base | 0xFF) >= units) return kOutside;
      const size_t start = value(unit(child_base));
      if (start >= replacements.size() ||
          replacements.find('\0', start) == std::string_view::npos) {
        return "precompiled_charsmap replacement is outside the map or not NUL-terminated";
      }
    }
    if (state[child] == 1) return "precompiled_charsmap trie has a cycle";
    if (state[child] == 2) {
      frame.best = std::max(frame.best, leaves[child]);
      continue;
    }
    if (const char* problem = enter(child)) return problem;
  }
  return "";
}

// Validates what libsentencepiece would otherwise trust (it parses the protobuf, but indexes the
// normalizer's trie and builds tries from the pieces without checks): the wire format, the
// piece count and each piece's text, and the normalizer and denormalizer charsmaps. Runs before
// the library sees the bytes, so malformed files get a FormatError naming `source`. Returns
// whether ModelProto.denormalizer_spec (field 5) has a non-empty precompiled_charsmap (field
// 2): the library then rewrites the decoded text as a whole, which no per-token table can
// reproduce.
bool ValidateModelProto(const std::string& source, std::string_view proto) {
  const auto fail = [&](const std::string& problem) {
    return FormatError(source + ": not a SentencePiece model: " + problem);
  };
  bool has_denormalizer = false;
  size_t pieces = 0;
  std::string problem;
  const bool well_formed = ForEachLengthDelimited(proto, [&](uint64_t field,
                                                             std::string_view message) {
    if (!problem.empty()) return;
    if (field == 1) {  // SentencePiece { piece = 1; score = 2; type = 3; }
      if (++pieces > kMaxPieces) {
        problem = "more than " + std::to_string(kMaxPieces) + " pieces";
        return;
      }
      const bool ok = ForEachLengthDelimited(message, [&](uint64_t inner, std::string_view text) {
        if (inner != 1 || !problem.empty()) return;
        if (text.empty() || text.size() > kMaxPieceBytes ||
            text.find('\0') != std::string_view::npos || !IsValidUtf8(text)) {
          problem = "piece " + std::to_string(pieces - 1) +
                    " is empty, longer than 4 KiB, or not NUL-free UTF-8";
        }
      });
      if (!ok && problem.empty()) problem = "malformed piece " + std::to_string(pieces - 1);
    } else if (field == 3 || field == 5) {  // normalizer_spec, denormalizer_spec
      const bool ok = ForEachLengthDelimited(message, [&](uint64_t inner, std::string_view map) {
        if (inner != 2 || map.empty() || !problem.empty()) return;
        problem = CheckCharsMap(map);
        if (field == 5) has_denormalizer = true;
      });
      if (!ok && problem.empty()) problem = "malformed normalizer spec";
    }
  });
  if (!problem.empty()) throw fail(problem);
  if (!well_formed) throw fail("malformed protobuf");
  return has_denormalizer;
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

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path) {
  Load(ReadModelFile(path), path);
}

SentencePieceTokenizer::SentencePieceTokenizer(std::string_view proto, const std::string& source) {
  Load(proto, source);
}

void SentencePieceTokenizer::Load(std::string_view proto, const std::string& source) {
  if (proto.size() > kMaxModelBytes) {
    throw FormatError(source + ": not a SentencePiece model: " + std::to_string(proto.size()) +
                      " bytes is far larger than any tokenizer model");
  }
  const bool has_denormalizer = ValidateModelProto(source, proto);
  processor_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status =
      processor_->LoadFromSerializedProto({proto.data(), proto.size()});
  if (!status.ok()) {
    throw FormatError(source + ": not a SentencePiece model: " + status.message());
  }
  if (has_denormalizer) {
    throw Unsupported(source + ": SentencePiece models with a denormalizer are not supported");
  }
  BuildTables(source);
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
    // The library looks pieces up by text (control and user-defined ones first), so a second
    // piece with the same text would decode as the first one, not as its own table entry.
    if (const int owner = processor_->PieceToId(piece); owner != id) {
      throw FormatError(path + ": piece " + std::to_string(id) + " repeats the text of piece " +
                        std::to_string(owner));
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
  // it from every leading piece until text appears (remove_extra_whitespaces).
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
      processor_->IdToPiece(space) == kSpaceMarker) {
    const std::string after_space = decode({space, *marked});
    if (after_space == marked_bytes.substr(1)) {
      strips_repeated_leading_space_ = true;
    } else if (after_space != marked_bytes) {
      throw Unsupported(path + ": SentencePiece model decodes leading spaces in a way bora cannot stream");
    }
  }
  // Without a lone U+2581 piece no piece decodes to nothing after the strip, so the repeated
  // rule could never apply.
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

std::unique_ptr<Tokenizer> ParseSentencePieceTokenizer(std::string_view proto,
                                                       const std::string& source) {
  return std::make_unique<SentencePieceTokenizer>(proto, source);
}

}  // namespace bora::tokenizer
