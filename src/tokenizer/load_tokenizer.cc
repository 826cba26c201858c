// Tokenizer file dispatch and instruct-version selection (file suffix, Tekken config, pieces).
#include "tokenizer/load_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <vector>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/model_folder.h"
#include "formats/tokenizer_file.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tekken_tokenizer.h"

namespace bora::tokenizer {
namespace {

bool IsTekkenFileName(const std::string& name) {
  return name.find("tekken") != std::string::npos && name.size() >= 5 &&
         name.compare(name.size() - 5, 5, ".json") == 0;
}

// Version of a SentencePiece file from its name: ".vN" or ".vNmM" after the last '.'.
std::optional<InstructVersion> VersionFromSuffix(const std::string& name) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  static const std::regex kSuffix(R"(v(\d+)(m\d+)?)");
  std::smatch match;
  std::string suffix = name.substr(dot + 1);
  if (!std::regex_match(suffix, match, kSuffix)) return std::nullopt;
  std::string version_name = suffix.substr(0, 1 + match[1].length());  // "v" and its digits
  return ParseInstructVersion(version_name);
}

VersionChoice InferFromPieces(const Tokenizer& tokenizer) {
  if (tokenizer.FindSpecial("[SYSTEM_PROMPT]")) {
    return {InstructVersion::kV7,
            "the file has no version suffix; it defines [SYSTEM_PROMPT] as a control piece, so v7"};
  }
  if (tokenizer.FindSpecial("[PREFIX]")) {
    return {InstructVersion::kV3,
            "the file has no version suffix; it defines [PREFIX] but not [SYSTEM_PROMPT] as "
            "control pieces, so v3"};
  }
  if (tokenizer.FindSpecial("[INST]")) {
    return {InstructVersion::kV2,
            "the file has no version suffix; it defines [INST] but not [PREFIX] as control pieces, "
            "so v2"};
  }
  return {
      InstructVersion::kV1,
      "the file has no version suffix and no [INST] control piece, so v1 ([INST] as plain text)"};
}

}  // namespace

namespace {

// LoadTokenizer and ParseTokenizer: `read_tekken`/`read_sentencepiece` build the backend the
// file name `path` selects.
template <typename ReadTekken, typename ReadSentencePiece>
LoadedTokenizer LoadNamed(const std::string& path, std::optional<InstructVersion> override_version,
                          ReadTekken read_tekken, ReadSentencePiece read_sentencepiece) {
  LoadedTokenizer loaded;
  loaded.path = path;
  const std::string name = std::filesystem::path(path).filename().string();
  if (IsTekkenFileName(name)) {
    std::unique_ptr<TekkenTokenizer> tekken = read_tekken();
    loaded.version = {ParseInstructVersion(tekken->config_version()),
                      "Tekken file whose config.version is \"" + tekken->config_version() + "\""};
    loaded.tokenizer = std::move(tekken);
  } else if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
    throw Unsupported(path +
                      ": Hugging Face tokenizer.json files are not read; point bora at the "
                      "folder's tokenizer.model* or tekken.json (Mistral ships one of them)");
  } else {
    loaded.tokenizer = read_sentencepiece();
    // mistral-common's MultiModalVersion: a "vNmM" suffix gives image settings (m1: patch 16,
    // images up to 1024 pixels a side).
    static const std::regex kMultimodal(R"(.*\.v\d+(m\d+))");
    std::smatch multimodal;
    if (std::regex_match(name, multimodal, kMultimodal)) {
      if (multimodal[1].str() != "m1") {
        throw Unsupported(path + ": multimodal version " + multimodal[1].str() + " is not known (bora knows m1)");
      }
      loaded.tokenizer->SetImageConfig(16, 1024, 1, path);
    }
    if (auto version = VersionFromSuffix(name)) {
      loaded.version = {
          *version, "SentencePiece file name suffix \"" + name.substr(name.rfind('.') + 1) + "\""};
    } else {
      loaded.version = InferFromPieces(*loaded.tokenizer);
    }
  }
  if (override_version) {
    loaded.version = {*override_version, "--version " + InstructVersionName(*override_version) +
                                             " overrides the file's own (" + loaded.version.reason +
                                             ")"};
  }
  return loaded;
}

}  // namespace

namespace {

bool HasGgufName(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

LoadedTokenizer FromGguf(const formats::GgufHeader& header, const std::string& path,
                         std::optional<InstructVersion> override_version) {
  GgufTokenizer gguf = LoadGgufTokenizer(header);
  LoadedTokenizer loaded;
  loaded.path = path;
  loaded.tokenizer = std::move(gguf.tokenizer);
  loaded.version = std::move(gguf.version);
  if (override_version) {
    loaded.version = {*override_version, "--version " + InstructVersionName(*override_version) +
                                             " overrides the file's own (" + loaded.version.reason + ")"};
  }
  return loaded;
}

}  // namespace

LoadedTokenizer LoadTokenizer(const std::string& path,
                              std::optional<InstructVersion> override_version) {
  if (HasGgufName(path) || formats::LooksLikeGguf(path)) {
    const formats::GgufFile file = formats::GgufFile::Open(path);
    return FromGguf(file.header(), path, override_version);
  }
  return LoadNamed(
      path, override_version, [&] { return LoadTekkenTokenizer(path); },
      [&] { return LoadSentencePieceTokenizer(path); });
}

LoadedTokenizer ParseTokenizer(std::string_view bytes, const std::string& path,
                               std::optional<InstructVersion> override_version) {
  if (HasGgufName(path)) {
    const formats::GgufHeader header = formats::ParseGgufHeader(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path);
    return FromGguf(header, path, override_version);
  }
  return LoadNamed(
      path, override_version, [&] { return ParseTekkenTokenizer(bytes, path); },
      [&] { return ParseSentencePieceTokenizer(bytes, path); });
}

std::string FindTokenizerFile(const std::string& folder) {
  formats::CheckModelFolderPath(folder);  // a missing path or a file says so, not "no tokenizer"
  if (!std::filesystem::is_directory(folder)) {
    // A GGUF model file carries its own tokenizer (or none: the caller then asks for --tokenizer).
    return GgufHasTokenizer(formats::GgufFile::Open(folder).header()) ? folder : "";
  }
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    if (formats::IsTokenizerFileName(name)) names.push_back(name);
  }
  if (names.empty()) return "";
  // Preference: Tekken, then the highest-versioned SentencePiece name, then tokenizer.model.
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    bool a_tekken = IsTekkenFileName(a), b_tekken = IsTekkenFileName(b);
    if (a_tekken != b_tekken) return a_tekken;
    auto a_version = VersionFromSuffix(a), b_version = VersionFromSuffix(b);
    if (a_version.has_value() != b_version.has_value()) return a_version.has_value();
    if (a_version && *a_version != *b_version) return *a_version > *b_version;
    return a < b;
  });
  return (std::filesystem::path(folder) / names.front()).string();
}

}  // namespace bora::tokenizer
