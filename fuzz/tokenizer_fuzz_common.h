// Helpers shared by the tokenizer fuzz targets: property checks that abort, UTF-8 validity,
// a tiny synthetic Tekken file, and the tokenizers loaded once per process.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "tokenizer/load_tokenizer.h"
#include "tokenizer/streaming_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace bora::fuzz {

// Aborts (a libFuzzer finding) with `what` when `condition` is false; never compiled out.
inline void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

inline bool IsValidUtf8(std::string_view text) {
  uint32_t code_point;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = tokenizer::DecodeUtf8(text, pos, code_point);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

// Encodes `text` and checks T1/T5/T7: every id is in [0, vocab_size) and none is special.
inline std::vector<int32_t> EncodeChecked(const tokenizer::Tokenizer& tokenizer,
                                          std::string_view text) {
  std::vector<int32_t> ids = tokenizer.Encode(text);
  for (const int32_t id : ids) {
    Require(id >= 0 && id < tokenizer.vocab_size(), "Encode produced an out-of-range id");
    Require(!tokenizer.IsSpecial(id), "Encode produced a special id from text");
  }
  return ids;
}

// Pushes in-range `ids` through a StreamingDetokenizer in pieces whose sizes come from `plan`
// (1 to 8 ids each, cycling), and checks T6: every returned chunk is valid UTF-8 and their
// concatenation equals Decode(ids, policy). kRaise is checked to throw exactly when Decode does.
// `require_equal` false checks safety only (valid UTF-8, typed errors): crafted SentencePiece
// models can still make the streamed text differ from Decode (docs/RELIABILITY.md, known gaps).
inline void CheckStreaming(const tokenizer::Tokenizer& tokenizer, std::span<const int32_t> ids,
                           tokenizer::SpecialTokenPolicy policy, std::string_view plan,
                           bool require_equal = true) {
  std::string expected;
  bool decode_raised = false;
  try {
    expected = tokenizer.Decode(ids, policy);
  } catch (const Error& error) {
    Require(policy == tokenizer::SpecialTokenPolicy::kRaise &&
                dynamic_cast<const InvalidArgument*>(&error) != nullptr,
            "Decode of in-range ids threw");
    decode_raised = true;
  }
  Require(decode_raised || IsValidUtf8(expected), "Decode returned invalid UTF-8");
  tokenizer::StreamingDetokenizer stream(tokenizer, policy);
  std::string streamed;
  bool stream_raised = false;
  size_t next = 0;
  for (size_t piece = 0; next < ids.size() && !stream_raised; ++piece) {
    const size_t size = plan.empty() ? 1 : 1 + static_cast<uint8_t>(plan[piece % plan.size()]) % 8;
    for (size_t end = std::min(ids.size(), next + size); next < end; ++next) {
      try {
        const std::string chunk = stream.Push(ids[next]);
        Require(IsValidUtf8(chunk), "StreamingDetokenizer::Push returned invalid UTF-8");
        streamed += chunk;
      } catch (const Error& error) {
        Require(policy == tokenizer::SpecialTokenPolicy::kRaise &&
                    dynamic_cast<const InvalidArgument*>(&error) != nullptr,
                "Push of an in-range id threw");
        stream_raised = true;
        break;
      }
    }
  }
  if (require_equal)
    Require(stream_raised == decode_raised, "streaming and Decode disagree on kRaise");
  if (decode_raised || stream_raised) return;
  const std::string tail = stream.Finish();
  Require(IsValidUtf8(tail), "StreamingDetokenizer::Finish returned invalid UTF-8");
  streamed += tail;
  if (require_equal) Require(streamed == expected, "streamed text differs from Decode");
}

// A valid Tekken file: the 256 byte ranks, `merges` after them, a v13 special table (so the
// [ARGS]/[CALL_ID] tool-call forms exist) and the real files' pre-tokenizer pattern.
inline std::string SyntheticTekken(const std::vector<std::string>& merges) {
  using Json = nlohmann::ordered_json;
  static constexpr const char* kBase64 =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto base64 = [](std::string_view bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
      uint32_t group = static_cast<uint8_t>(bytes[i]) << 16;
      if (i + 1 < bytes.size()) group |= static_cast<uint8_t>(bytes[i + 1]) << 8;
      if (i + 2 < bytes.size()) group |= static_cast<uint8_t>(bytes[i + 2]);
      out += kBase64[(group >> 18) & 63];
      out += kBase64[(group >> 12) & 63];
      out += i + 1 < bytes.size() ? kBase64[(group >> 6) & 63] : '=';
      out += i + 2 < bytes.size() ? kBase64[group & 63] : '=';
    }
    return out;
  };
  const std::vector<std::string> specials = {"<unk>",
                                             "<s>",
                                             "</s>",
                                             "[INST]",
                                             "[/INST]",
                                             "[AVAILABLE_TOOLS]",
                                             "[/AVAILABLE_TOOLS]",
                                             "[TOOL_RESULTS]",
                                             "[/TOOL_RESULTS]",
                                             "[TOOL_CALLS]",
                                             "[IMG]",
                                             "<pad>",
                                             "[IMG_BREAK]",
                                             "[IMG_END]",
                                             "[PREFIX]",
                                             "[MIDDLE]",
                                             "[SUFFIX]",
                                             "[SYSTEM_PROMPT]",
                                             "[/SYSTEM_PROMPT]",
                                             "[TOOL_CONTENT]",
                                             "[ARGS]",
                                             "[CALL_ID]",
                                             "[THINK]",
                                             "[/THINK]"};
  constexpr int kNumSpecial = 32;
  Json vocab = Json::array();
  for (int i = 0; i < 256 + static_cast<int>(merges.size()); ++i) {
    const std::string bytes = i < 256 ? std::string(1, static_cast<char>(i)) : merges[i - 256];
    vocab.push_back({{"rank", i}, {"token_bytes", base64(bytes)}, {"token_str", nullptr}});
  }
  Json special_tokens = Json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    special_tokens.push_back({{"rank", i}, {"token_str", specials[i]}, {"is_control", true}});
  }
  Json file = {
      {"config",
       {{"pattern",
         R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|)"
         R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|)"
         R"( ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
        {"default_vocab_size", kNumSpecial + 256 + static_cast<int>(merges.size())},
        {"default_num_special_tokens", kNumSpecial},
        {"version", "v13"}}},
      {"vocab", vocab},
      {"special_tokens", special_tokens}};
  return file.dump();
}

// The tokenizers the encode and id targets use, loaded once: the shared SentencePiece v3 and
// Tekken files when found ($BORA_SHARED/tokenizers, else ../shared/tokenizers from the current
// folder or the source tree), and always a synthetic v13 Tekken file.
struct FuzzTokenizers {
  std::vector<tokenizer::LoadedTokenizer> loaded;
};

inline std::string FindSharedTokenizers() {
  std::vector<std::filesystem::path> candidates;
  if (const char* env = std::getenv("BORA_SHARED"); env != nullptr && *env != '\0') {
    candidates.push_back(std::filesystem::path(env) / "tokenizers");
  }
  candidates.push_back(std::filesystem::path("../shared/tokenizers"));
#ifdef BORA_SOURCE_DIR
  candidates.push_back(std::filesystem::path(BORA_SOURCE_DIR).parent_path() / "shared" /
                       "tokenizers");
#endif
  for (const auto& candidate : candidates) {
    std::error_code error;
    if (std::filesystem::is_directory(candidate, error)) return candidate.string();
  }
  return "";
}

inline FuzzTokenizers LoadAllFuzzTokenizers() {
  FuzzTokenizers result;
  const std::string shared = FindSharedTokenizers();
  for (const char* name :
       {"mistral_instruct_tokenizer_240323.model.v3", "tekken_240718-reconstructed.json"}) {
    const std::string path = shared.empty() ? std::string() : shared + "/" + name;
    std::error_code error;
    if (path.empty() || !std::filesystem::is_regular_file(path, error)) {
      std::fprintf(stderr, "fuzz: %s not found; it is left out\n", name);
      continue;
    }
    result.loaded.push_back(tokenizer::LoadTokenizer(path));
  }
  result.loaded.push_back(
      tokenizer::ParseTokenizer(SyntheticTekken({"ab", "th", "the", " t", " the", "in", "ing",
                                                 "\xC3\xA9", "\xE2\x96", "  ", "\n\n", "12"}),
                                "synthetic-tekken.json"));
  return result;
}

// Loaded on first use and kept (read-only) for the life of the process.
inline const FuzzTokenizers& LoadFuzzTokenizers() {
  static const FuzzTokenizers tokenizers = LoadAllFuzzTokenizers();
  return tokenizers;
}

}  // namespace bora::fuzz
