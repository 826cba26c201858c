// GGUF tokenizer metadata -> SentencePiece ModelProto / Tekken JSON, then bora's own parsers
// (which validate everything again), and the instruct-version rule for GGUF files.
#include "tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <array>
#include <optional>
#include <cmath>
#include <cstring>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tekken_tokenizer.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

// llama_token_type values (= SentencePiece's ModelProto.SentencePiece.Type).
constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;  // 5: UNUSED

// mistral-common's Tekken pre-tokenizer pattern: what llama.cpp's pre "tekken" stands for.
constexpr std::string_view kTekkenPattern =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?"
    "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// --- protobuf wire format (the subset ModelProto needs) ---
void Varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void Tag(std::string& out, int field, int wire) { Varint(out, static_cast<uint64_t>(field) << 3 | wire); }
void Bytes(std::string& out, int field, std::string_view bytes) {
  Tag(out, field, 2);
  Varint(out, bytes.size());
  out.append(bytes);
}
void Int(std::string& out, int field, int64_t value) {
  Tag(out, field, 0);
  Varint(out, static_cast<uint64_t>(value));  // negative int32: ten-byte two's complement, as protobuf
}
void Float(std::string& out, int field, float value) {
  Tag(out, field, 5);
  char bytes[4];
  std::memcpy(bytes, &value, 4);
  out.append(bytes, 4);
}

struct Vocab {
  std::vector<std::string_view> tokens;
  std::vector<double> scores;
  std::vector<int> types;
};

Vocab ReadVocab(const formats::GgufHeader& h) {
  Vocab vocab;
  vocab.tokens = h.GetStringArray("tokenizer.ggml.tokens");
  if (vocab.tokens.empty()) throw FormatError(h.file_name + ": tokenizer.ggml.tokens is missing or empty");
  if (vocab.tokens.size() > (size_t{1} << 22)) throw FormatError(h.file_name + ": more than 2^22 tokens");
  vocab.scores = h.GetNumberArray("tokenizer.ggml.scores");
  if (vocab.scores.empty()) vocab.scores.assign(vocab.tokens.size(), 0.0);
  const std::vector<double> types = h.GetNumberArray("tokenizer.ggml.token_type");
  vocab.types.assign(vocab.tokens.size(), kNormal);
  if (!types.empty()) {
    if (types.size() != vocab.tokens.size()) {
      throw FormatError(h.file_name + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                        " entries for " + std::to_string(vocab.tokens.size()) + " tokens");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (!(types[i] >= 0 && types[i] <= kByte) || types[i] != std::floor(types[i])) {
        throw FormatError(h.file_name + ": token " + std::to_string(i) + " has unknown token type " +
                          std::to_string(types[i]));
      }
      const int type = static_cast<int>(types[i]);
      vocab.types[i] = type == 0 ? kNormal : type;
    }
  }
  for (size_t i = 0; i < vocab.scores.size(); ++i) {
    if (!std::isfinite(vocab.scores[i]) || std::fabs(vocab.scores[i]) > 3.0e38) {
      throw FormatError(h.file_name + ": token " + std::to_string(i) + " has a score that is not a finite float");
    }
  }
  if (vocab.scores.size() != vocab.tokens.size()) {
    throw FormatError(h.file_name + ": tokenizer.ggml.scores has " + std::to_string(vocab.scores.size()) +
                      " entries for " + std::to_string(vocab.tokens.size()) + " tokens");
  }
  return vocab;
}

// An optional special id that must name a token.
int64_t SpecialId(const formats::GgufHeader& h, const char* key, int64_t fallback, size_t vocab_size) {
  const std::optional<uint64_t> id = h.GetUint(key);
  if (!id) return fallback;
  if (*id >= vocab_size) throw FormatError(h.file_name + ": " + key + " " + std::to_string(*id) + " is not a token id");
  return static_cast<int64_t>(*id);
}

std::unique_ptr<Tokenizer> BuildSentencePiece(const formats::GgufHeader& h, std::string& proto_out) {
  const Vocab vocab = ReadVocab(h);
  // llama.cpp's MistralVocab writes the USER_DEFINED [REFERENCE_DOC_n] pieces of Mistral's v3+
  // files as NORMAL; mistral-common (SentencePiece) matches them in raw text as user-defined
  // pieces, so they get that type back.
  static const std::regex kReferenceDoc(R"(\[REFERENCE_DOC_\d{1,4}\])");
  std::string proto;
  bool has_bytes = false;
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    int type = vocab.types[i];
    const std::string piece(vocab.tokens[i]);
    if (type == kNormal && vocab.scores[i] == 0 && std::regex_match(piece, kReferenceDoc)) type = kUserDefined;
    has_bytes = has_bytes || type == kByte;
    std::string entry;
    Bytes(entry, 1, piece);
    Float(entry, 2, static_cast<float>(vocab.scores[i]));
    if (type != kNormal) Int(entry, 3, type);
    Bytes(proto, 1, entry);
  }
  const size_t n = vocab.tokens.size();
  int64_t unk = -1;
  for (size_t i = 0; i < n && unk < 0; ++i) unk = vocab.types[i] == kUnknown ? static_cast<int64_t>(i) : -1;
  unk = SpecialId(h, "tokenizer.ggml.unknown_token_id", unk < 0 ? 0 : unk, n);
  const int64_t bos = SpecialId(h, "tokenizer.ggml.bos_token_id", 1, n);
  const int64_t eos = SpecialId(h, "tokenizer.ggml.eos_token_id", 2, n);
  // A pad id equal to eos (llama.cpp's converter fills it in) is not a pad piece of the model.
  int64_t pad = SpecialId(h, "tokenizer.ggml.padding_token_id", -1, n);
  if (pad == eos || pad == bos || pad == unk) pad = -1;
  std::string trainer;
  Int(trainer, 3, 2);  // model_type BPE: merge by piece score, as llama.cpp's SPM tokenizer
  Int(trainer, 4, static_cast<int64_t>(n));
  Int(trainer, 35, has_bytes ? 1 : 0);  // byte_fallback
  Int(trainer, 40, unk);
  Int(trainer, 41, bos);
  Int(trainer, 42, eos);
  Int(trainer, 43, pad);
  Bytes(proto, 2, trainer);
  std::string normalizer;
  Bytes(normalizer, 1, "identity");
  Int(normalizer, 3, h.GetBool("tokenizer.ggml.add_space_prefix").value_or(true) ? 1 : 0);  // add_dummy_prefix
  Int(normalizer, 4, 0);  // remove_extra_whitespaces: llama.cpp never does
  Int(normalizer, 5, 1);  // escape_whitespaces
  Bytes(proto, 3, normalizer);
  std::unique_ptr<Tokenizer> tokenizer = ParseSentencePieceTokenizer(proto, h.file_name);
  proto_out = std::move(proto);
  return tokenizer;
}

// GPT-2's bytes_to_unicode, inverted: code point -> byte, -1 for code points no byte maps to.
std::array<int, 324> UnicodeToByte() {
  std::array<int, 324> table;
  table.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[printable ? b : 256 + extra++] = b;
  }
  return table;
}

// The bytes a GPT-2-style token string stands for; false when it is not one.
bool TokenBytes(std::string_view text, const std::array<int, 324>& table, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    size_t length;
    if (c < 0x80) {
      cp = c, length = 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size()) {
      cp = (c & 0x1Fu) << 6 | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu), length = 2;
    } else {
      return false;  // every code point of the table is below U+0800
    }
    if (cp >= table.size() || table[cp] < 0) return false;
    out.push_back(static_cast<char>(table[cp]));
    i += length;
  }
  return !out.empty();
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[chunk >> 18 & 63]);
    out.push_back(kAlphabet[chunk >> 12 & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[chunk >> 6 & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=');
  }
  return out;
}

// The version a template hint ends in ("..., so v7"), if any.
std::optional<InstructVersion> HintVersion(const std::string& hint) {
  const size_t at = hint.rfind(", so v");
  if (at == std::string::npos) return std::nullopt;
  return ParseInstructVersion(hint.substr(at + 5));
}

// The instruct version of a Tekken vocabulary: its special names say v11 / v13; v3 and v7 share
// their first specials and only the chat template tells them apart.
VersionChoice TekkenVersion(const std::vector<std::string>& specials, const std::string& template_hint) {
  auto has = [&](const char* name) { return std::find(specials.begin(), specials.end(), name) != specials.end(); };
  if (has("[THINK]")) return {InstructVersion::kV13, "the GGUF's Tekken vocabulary defines [THINK], so v13"};
  if (has("[ARGS]") || has("[CALL_ID]")) {
    return {InstructVersion::kV11, "the GGUF's Tekken vocabulary defines [ARGS]/[CALL_ID] but not [THINK], so v11"};
  }
  if (const std::optional<InstructVersion> hinted = HintVersion(template_hint);
      hinted && (*hinted == InstructVersion::kV3 || *hinted == InstructVersion::kV7)) {
    return {*hinted, "the GGUF's Tekken vocabulary has no [ARGS]/[THINK]; " + template_hint};
  }
  return {InstructVersion::kV3,
          "the GGUF's Tekken vocabulary has no [ARGS]/[THINK] and no chat template names a version, so v3"};
}

// What the chat template says about the version: llama.cpp's built-in names, or "" for Jinja
// text that does not identify one. Returns a reason sentence ending in the version.
std::string TemplateHint(const formats::GgufHeader& h) {
  const std::optional<std::string> text = h.GetString("tokenizer.chat_template");
  if (!text) return "";
  static const std::pair<const char*, const char*> kNames[] = {
      {"mistral-v1", "v1"}, {"mistral-v3", "v3"}, {"mistral-v3-tekken", "v3"}, {"mistral-v7", "v7"},
      {"mistral-v7-tekken", "v7"}};
  for (const auto& [name, version] : kNames) {
    if (*text == name) return std::string("its chat template is llama.cpp's built-in \"") + name + "\", so " + version;
  }
  if (text->find("[SYSTEM_PROMPT]") != std::string::npos) {
    return "its Jinja chat template writes [SYSTEM_PROMPT], so v7";
  }
  return "";
}

GgufTokenizer BuildTekken(const formats::GgufHeader& h) {
  const Vocab vocab = ReadVocab(h);
  const size_t n = vocab.tokens.size();
  size_t specials = 0;
  while (specials < n && vocab.types[specials] == kControl) ++specials;
  for (size_t i = specials; i < n; ++i) {
    if (vocab.types[i] == kControl) {
      throw Unsupported(h.file_name + ": control token " + std::to_string(i) + " after the first normal token; a "
                        "Tekken vocabulary has its special tokens first");
    }
  }
  if (specials == 0) throw FormatError(h.file_name + ": the Tekken vocabulary has no special tokens");
  const std::array<int, 324> table = UnicodeToByte();
  nlohmann::json root;
  std::vector<std::string> special_names;
  nlohmann::json special_list = nlohmann::json::array();
  for (size_t i = 0; i < specials; ++i) {
    if (ReplaceInvalidUtf8(vocab.tokens[i]) != vocab.tokens[i]) {
      throw FormatError(h.file_name + ": special token " + std::to_string(i) + " is not valid UTF-8");
    }
    special_names.emplace_back(vocab.tokens[i]);
    special_list.push_back({{"rank", i}, {"token_str", special_names.back()}, {"is_control", true}});
  }
  nlohmann::json vocab_list = nlohmann::json::array();
  std::unordered_map<std::string, size_t> rank_of;
  std::string bytes;
  for (size_t i = specials; i < n; ++i) {
    if (!TokenBytes(vocab.tokens[i], table, bytes)) {
      throw FormatError(h.file_name + ": token " + std::to_string(i) + " is not a byte-level (GPT-2) token string");
    }
    rank_of.emplace(bytes, i - specials);
    vocab_list.push_back({{"rank", i - specials}, {"token_bytes", Base64(bytes)}, {"token_str", nullptr}});
  }
  // Merges are not needed (Tekken merges by rank) but must agree with the vocabulary: both
  // halves tokens and their concatenation a token (llama.cpp's converter lists every such split,
  // so a half may rank after the whole).
  const std::vector<std::string_view> merges = h.GetStringArray("tokenizer.ggml.merges");
  std::string left, right;
  for (size_t m = 0; m < merges.size(); ++m) {
    const size_t space = merges[m].find(' ');
    auto fail = [&] {
      return FormatError(h.file_name + ": merge " + std::to_string(m) + " \"" + std::string(merges[m]) +
                         "\" is not two tokens whose concatenation is a token");
    };
    if (space == std::string_view::npos || !TokenBytes(merges[m].substr(0, space), table, left) ||
        !TokenBytes(merges[m].substr(space + 1), table, right)) {
      throw fail();
    }
    auto a = rank_of.find(left), b = rank_of.find(right), both = rank_of.find(left + right);
    if (a == rank_of.end() || b == rank_of.end() || both == rank_of.end()) throw fail();
  }
  GgufTokenizer result;
  result.version = TekkenVersion(special_names, TemplateHint(h));
  root["config"] = {{"pattern", kTekkenPattern},
                    {"num_vocab_tokens", n - specials},
                    {"default_vocab_size", n},
                    {"default_num_special_tokens", specials},
                    {"version", InstructVersionName(result.version.version)}};
  root["vocab"] = std::move(vocab_list);
  root["special_tokens"] = std::move(special_list);
  result.file_name = "tekken.json";
  result.file_bytes = root.dump();
  result.tokenizer = ParseTekkenTokenizer(result.file_bytes, h.file_name);
  return result;
}

// The chat template's version when the vocabulary has the control tokens it needs, else the
// rule bora uses for a suffix-less tokenizer.model.
VersionChoice SentencePieceVersion(const Tokenizer& tokenizer, const std::string& template_hint) {
  if (const std::optional<InstructVersion> hinted = HintVersion(template_hint)) {
    const bool fits = *hinted == InstructVersion::kV1 ||
                      (*hinted == InstructVersion::kV3 && tokenizer.FindSpecial("[PREFIX]")) ||
                      (*hinted == InstructVersion::kV7 && tokenizer.FindSpecial("[SYSTEM_PROMPT]"));
    if (fits) return {*hinted, template_hint};
  }
  if (tokenizer.FindSpecial("[SYSTEM_PROMPT]")) {
    return {InstructVersion::kV7, "the GGUF's vocabulary defines [SYSTEM_PROMPT] as a control token, so v7"};
  }
  if (tokenizer.FindSpecial("[PREFIX]")) {
    return {InstructVersion::kV3, "the GGUF's vocabulary defines [PREFIX] but not [SYSTEM_PROMPT] as control tokens, so v3"};
  }
  if (tokenizer.FindSpecial("[INST]")) {
    return {InstructVersion::kV2, "the GGUF's vocabulary defines [INST] but not [PREFIX] as control tokens, so v2"};
  }
  return {InstructVersion::kV1, "the GGUF's vocabulary has no [INST] control token, so v1 ([INST] as plain text)"};
}

}  // namespace

bool GgufHasTokenizer(const formats::GgufHeader& header) { return header.Find("tokenizer.ggml.model") != nullptr; }

GgufTokenizer LoadGgufTokenizer(const formats::GgufHeader& h) {
  const std::optional<std::string> model = h.GetString("tokenizer.ggml.model");
  if (!model) throw FormatError(h.file_name + ": the GGUF has no tokenizer (tokenizer.ggml.model is missing); pass --tokenizer");
  if (*model == "llama") {
    GgufTokenizer result;
    result.tokenizer = BuildSentencePiece(h, result.file_bytes);
    result.version = SentencePieceVersion(*result.tokenizer, TemplateHint(h));
    result.file_name = "tokenizer.model." + InstructVersionName(result.version.version);
    return result;
  }
  if (*model == "gpt2") {
    const std::string pre = h.GetString("tokenizer.ggml.pre").value_or("");
    if (pre != "tekken") {
      throw Unsupported(h.file_name + ": byte-level BPE tokenizer with pre-tokenizer \"" + pre +
                        "\"; bora reads Mistral's Tekken (pre \"tekken\") and SentencePiece (\"llama\") vocabularies");
    }
    return BuildTekken(h);
  }
  throw Unsupported(h.file_name + ": tokenizer model \"" + *model +
                    "\" is not a Mistral tokenizer (bora reads \"llama\" = SentencePiece and \"gpt2\" with pre \"tekken\")");
}

}  // namespace bora::tokenizer
