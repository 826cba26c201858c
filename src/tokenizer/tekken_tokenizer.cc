// Tekken JSON loading and validation, PCRE2 pre-tokenization, BPE encoding and decoding.
#include "tokenizer/tekken_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fcntl.h>
#include <pcre2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/error.h"
#include "base/sha256.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

using Json = nlohmann::json;

// Largest accepted default_num_special_tokens: real files use 1000; the cap keeps a corrupt
// value from allocating billions of `<SPECIAL_i>` names.
constexpr int64_t kMaxSpecialTokens = int64_t{1} << 20;
// Largest accepted default_vocab_size (real files: 131072), as the reliability rules' T2.
constexpr int64_t kMaxVocabSize = int64_t{1} << 20;
// Longest accepted token (real files: 76 bytes) and special token name.
constexpr size_t kMaxTokenBytes = size_t{4} << 10;
// Longest accepted config.pattern (real files: about 200 bytes).
constexpr size_t kMaxPatternBytes = size_t{4} << 10;
// SHA-256 of every pre-tokenizer pattern in a tokenizer Mistral has released (rule T3: a pattern
// runs on a backtracking engine, so file text is not compiled unless it is one of these).
// tekken_240718 (v3) and the later v7/v11/v13 files all use the same pattern.
constexpr std::array<std::string_view, 1> kKnownPatternSha256 = {
    "1d64a9a8eaf9f1bd80331984d81fdd514e7feafe8df83a525dd31472f275699a",
};
// Largest accepted file (real files: 13 to 20 MiB); JSON parsing needs several times as much.
constexpr int64_t kMaxFileBytes = int64_t{128} << 20;

// PCRE2 limits for one match, so that a pathological pattern fails with ResourceExhausted
// instead of running for minutes: the backtracking step count (PCRE2's default, also applied
// to JIT code) and the interpreter's backtracking memory (PCRE2's default is 20 GB).
constexpr uint32_t kMatchLimit = 10'000'000;
constexpr uint32_t kHeapLimitKib = 256u << 10;

// JIT stack for matches that overflow PCRE2's default 32 KiB one (sizes in bytes). Allocated per
// Encode call and only when needed; the memory is reserved, and touched only as it is used.
constexpr size_t kJitStackStart = size_t{64} << 10;
constexpr size_t kJitStackMax = size_t{256} << 20;

// Unicode White_Space, which `\s` means in Rust's regex crate (tiktoken). PCRE2's `\s` under
// PCRE2_UCP is \p{Z} plus \h and \v, which adds U+180E MONGOLIAN VOWEL SEPARATOR (general
// category Cf since Unicode 6.3); spelling the set out makes both engines split alike.
constexpr std::string_view kWhiteSpaceSet =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

// The special table mistral-common uses for files without `special_tokens` (ids 0..19).
constexpr std::array<std::string_view, 20> kDefaultSpecialTokens = {
    "<unk>",
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
};

// mistral-common's TokenizerVersion values that a Tekken file may carry, with their order.
constexpr std::array<std::pair<std::string_view, int>, 7> kVersions = {
    {{"v1", 1}, {"v2", 2}, {"v3", 3}, {"v7", 7}, {"v11", 11}, {"v13", 13}, {"v15", 15}}};

// The whole content of the regular file at `path`; IoError naming it otherwise.
std::string ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  std::string content;
  struct stat info {};
  const char* failure = nullptr;
  int saved_errno = 0;
  if (::fstat(fd, &info) != 0) {
    failure = "cannot stat";
    saved_errno = errno;
  } else if (!S_ISREG(info.st_mode)) {
    failure = "not a regular file";
  } else if (info.st_size > kMaxFileBytes) {
    ::close(fd);
    throw FormatError(path + ": " + std::to_string(info.st_size) +
                      " bytes is far larger than any Tekken tokenizer file (at most " +
                      std::to_string(kMaxFileBytes) + ")");
  } else {
    content.resize(static_cast<size_t>(info.st_size));
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t got = ::read(fd, content.data() + done, content.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        failure = "read error";
        saved_errno = errno;
        break;
      }
      if (got == 0) break;  // the file shrank while being read
      done += static_cast<size_t>(got);
    }
    content.resize(done);
  }
  ::close(fd);
  if (failure != nullptr) {
    throw IoError(path + ": " + failure +
                  (saved_errno != 0 ? std::string(": ") + std::strerror(saved_errno) : ""));
  }
  return content;
}

// Decodes standard base64 (RFC 4648 alphabet, '=' padding, length a multiple of 4) into `out`;
// false on any other character or layout.
bool DecodeBase64(std::string_view text, std::string& out) {
  static constexpr auto kValues = [] {
    std::array<int8_t, 256> values{};
    values.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) values[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return values;
  }();
  out.clear();
  if (text.size() % 4 != 0) return false;
  for (size_t pos = 0; pos < text.size(); pos += 4) {
    const bool last = pos + 4 == text.size();
    int padding = 0;
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[pos + k];
      int value;
      if (c == '=' && last && k >= 2) {
        ++padding;
        value = 0;
      } else {
        if (padding > 0) return false;  // data after '='
        value = kValues[static_cast<uint8_t>(c)];
        if (value < 0) return false;
      }
      group = (group << 6) | static_cast<uint32_t>(value);
    }
    out += static_cast<char>(group >> 16);
    if (padding < 2) out += static_cast<char>((group >> 8) & 0xFF);
    if (padding < 1) out += static_cast<char>(group & 0xFF);
  }
  return true;
}

bool IsValidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    uint32_t code_point;
    const size_t length = DecodeUtf8(text, pos, code_point);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

// `pattern` with every `\s` (and `\S` outside character classes) replaced by kWhiteSpaceSet, so
// PCRE2 matches white space as Rust's regex crate does. \Q...\E quotes and [:posix:] classes are
// copied unchanged; `\S` inside a class has no such spelling and is left as is.
std::string RewriteWhiteSpaceEscapes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[i + 1];
      size_t length = 2;
      if (escaped == 'Q') {
        const size_t stop = pattern.find("\\E", i + 2);
        length = (stop == std::string_view::npos ? pattern.size() : stop + 2) - i;
      } else if (escaped == 's') {
        if (!in_class) out += '[';
        out += kWhiteSpaceSet;
        if (!in_class) out += ']';
        i += 2;
        continue;
      } else if (escaped == 'S' && !in_class) {
        out += "[^";
        out += kWhiteSpaceSet;
        out += ']';
        i += 2;
        continue;
      } else if (escaped == 'c' && i + 2 < pattern.size()) {
        length = 3;  // \cX: X is a literal, even '[' or ']'
      }
      out.append(pattern.substr(i, length));
      i += length;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < pattern.size() && pattern[i] == '^') out += pattern[i++];
      if (i < pattern.size() && pattern[i] == ']') out += pattern[i++];  // literal ']'
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t stop = pattern.find(":]", i + 2);
      if (stop != std::string_view::npos) {
        out.append(pattern.substr(i, stop + 2 - i));
        i = stop + 2;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

std::string Pcre2Message(int error_code) {
  std::array<PCRE2_UCHAR, 256> buffer{};
  if (pcre2_get_error_message(error_code, buffer.data(), buffer.size()) < 0) {
    return "PCRE2 error " + std::to_string(error_code);
  }
  return reinterpret_cast<const char*>(buffer.data());
}

// Integer value of `value`, or nullopt when it is not a JSON integer (floats and booleans are
// not integers; unsigned values above INT64_MAX saturate).
std::optional<int64_t> AsInteger(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return std::nullopt;
}

// `value` as JSON text for a message: numbers and short strings in full, anything else by its
// type (dumping an arbitrary value could recurse as deep as the file nests).
std::string ShortDump(const Json& value) {
  if (value.is_number() || value.is_boolean() || value.is_null() ||
      (value.is_string() && value.get_ref<const std::string&>().size() <= 64)) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return std::string("a JSON ") + value.type_name();
}

// Per-call matching state: match data and, once a match overflows the default 32 KiB JIT stack
// (patterns with alternations inside repeats need stack per repetition), a match context with
// a larger one; beyond that, the interpreter.
class MatchState {
 public:
  explicit MatchState(const pcre2_code* code)
      : code_(code),
        data_(pcre2_match_data_create_from_pattern(code, nullptr)),
        context_(pcre2_match_context_create(nullptr)) {
    if (data_ == nullptr || context_ == nullptr) {
      pcre2_match_data_free(data_);
      pcre2_match_context_free(context_);
      throw ResourceExhausted("Tekken encode: out of memory for match data");
    }
    pcre2_set_match_limit(context_, kMatchLimit);
    pcre2_set_heap_limit(context_, kHeapLimitKib);
  }
  ~MatchState() {
    pcre2_match_data_free(data_);
    pcre2_match_context_free(context_);
    pcre2_jit_stack_free(jit_stack_);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;

  // Finds the first match that starts at or after byte `start` of `text`; false when none.
  bool Find(std::string_view text, size_t start, size_t& match_begin, size_t& match_end) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    int rc = pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data_, context_);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit_stack_ == nullptr && AttachLargeJitStack()) {
      rc = pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data_, context_);
    }
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Even kJitStackMax is too small (or could not be had): the interpreter keeps its
      // backtracking state on the heap (bounded by PCRE2's heap limit, 20 GB by default).
      rc = pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data_,
                       context_);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      throw ResourceExhausted("Tekken encode: pre-tokenizer regex failed at byte " +
                              std::to_string(start) + ": " + Pcre2Message(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data_);
    match_begin = ovector[0];
    match_end = ovector[1];
    return true;
  }

 private:
  // Gives later matches of this call a kJitStackMax JIT stack; false when it cannot be had.
  bool AttachLargeJitStack() {
    jit_stack_ = pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr);
    if (jit_stack_ == nullptr) return false;
    pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
    return true;
  }

  const pcre2_code* code_;
  pcre2_match_data* data_;
  pcre2_match_context* context_;  // the limits, and the large JIT stack once attached
  pcre2_jit_stack* jit_stack_ = nullptr;
};

}  // namespace

// The compiled pattern: immutable after construction and shared by all Encode calls.
struct TekkenTokenizer::Regex {
  pcre2_code* code = nullptr;

  ~Regex() { pcre2_code_free(code); }
};

TekkenTokenizer::TekkenTokenizer() = default;
TekkenTokenizer::~TekkenTokenizer() = default;

void TekkenTokenizer::CheckId(int32_t id) const {
  if (id < 0 || id >= vocab_size_) {
    throw InvalidArgument("token id " + std::to_string(id) +
                          " is outside the Tekken vocabulary [0, " + std::to_string(vocab_size_) +
                          ")");
  }
}

template <typename OnPiece>
void TekkenTokenizer::SplitPieces(std::string_view text, OnPiece&& on_piece) const {
  MatchState state(regex_->code);
  size_t pos = 0;
  size_t begin = 0;
  size_t end = 0;
  while (pos < text.size() && state.Find(text, pos, begin, end)) {
    if (end == begin) {
      // An empty match (impossible with real Tekken patterns): skip one character, as the
      // regex crate's find_iter does.
      if (end >= text.size()) break;
      uint32_t code_point;
      pos = end + std::max<size_t>(1, DecodeUtf8(text, end, code_point));
      continue;
    }
    on_piece(text.substr(begin, end - begin));
    pos = end;
  }
}

std::vector<int32_t> TekkenTokenizer::Encode(std::string_view text) const {
  std::string repaired;
  if (!IsValidUtf8(text)) {
    repaired = ReplaceInvalidUtf8(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  BpeWorkspace workspace;
  SplitPieces(text, [&](std::string_view piece) {
    const size_t first = ids.size();
    BpeMerge(piece, ranks_, workspace, ids);
    for (size_t i = first; i < ids.size(); ++i) ids[i] += num_special_;
  });
  return ids;
}

std::vector<std::string> TekkenTokenizer::PreTokenize(std::string_view text) const {
  std::string repaired;
  if (!IsValidUtf8(text)) {
    repaired = ReplaceInvalidUtf8(text);
    text = repaired;
  }
  std::vector<std::string> pieces;
  SplitPieces(text, [&](std::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

std::string TekkenTokenizer::Decode(std::span<const int32_t> ids, SpecialTokenPolicy policy) const {
  for (const int32_t id : ids) CheckId(id);
  std::string out;
  std::string run;  // bytes of the current group of normal ids
  const auto flush = [&] {
    if (run.empty()) return;
    out += IsValidUtf8(run) ? run : ReplaceInvalidUtf8(run);
    run.clear();
  };
  for (const int32_t id : ids) {
    if (id >= num_special_) {
      run += ranks_.Bytes(id - num_special_);
      continue;
    }
    flush();
    switch (policy) {
      case SpecialTokenPolicy::kIgnore:
        break;
      case SpecialTokenPolicy::kKeep:
        out += specials_[static_cast<size_t>(id)];
        break;
      case SpecialTokenPolicy::kRaise:
        throw InvalidArgument("decoding special token " + std::to_string(id) + " (" +
                              specials_[static_cast<size_t>(id)] +
                              ") is not allowed with policy RAISE");
    }
  }
  flush();
  return out;
}

std::string TekkenTokenizer::IdToPiece(int32_t id) const {
  return Decode(std::span<const int32_t>(&id, 1), SpecialTokenPolicy::kKeep);
}

std::optional<int32_t> TekkenTokenizer::FindSpecial(std::string_view name) const {
  const auto found = special_ids_.find(name);
  if (found == special_ids_.end()) return std::nullopt;
  return found->second;
}

std::string TekkenTokenizer::TokenBytes(int32_t id) const {
  CheckId(id);
  if (id < num_special_) return {};
  return std::string(ranks_.Bytes(id - num_special_));
}

const std::string& TekkenTokenizer::SpecialName(int32_t id) const {
  if (id < 0 || id >= num_special_) {
    throw InvalidArgument("token id " + std::to_string(id) + " is not a Tekken special id [0, " +
                          std::to_string(num_special_) + ")");
  }
  return specials_[static_cast<size_t>(id)];
}

bool IsKnownTekkenPattern(std::string_view pattern) {
  const std::string digest = Sha256Hex(pattern);
  return std::find(kKnownPatternSha256.begin(), kKnownPatternSha256.end(), digest) !=
         kKnownPatternSha256.end();
}

std::unique_ptr<TekkenTokenizer> ParseTekkenTokenizer(std::string_view json_text,
                                                      const std::string& source,
                                                      TekkenPatternPolicy pattern_policy) {
  const auto fail = [&](const std::string& problem) -> FormatError {
    return FormatError(source + ": " + problem);
  };

  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& error) {
    throw fail(std::string("not valid JSON: ") + error.what());
  }
  if (!root.is_object()) throw fail("top level is not a JSON object");

  // config
  const auto config_it = root.find("config");
  if (config_it == root.end() || !config_it->is_object()) throw fail("missing object \"config\"");
  const Json& config = *config_it;
  const auto config_string = [&](const char* key) -> std::string {
    const auto it = config.find(key);
    if (it == config.end() || !it->is_string()) {
      throw fail(std::string("config.") + key + " is missing or not a string");
    }
    return it->get<std::string>();
  };
  const auto config_integer = [&](const char* key) -> int64_t {
    const auto it = config.find(key);
    const std::optional<int64_t> value = it == config.end() ? std::nullopt : AsInteger(*it);
    if (!value) throw fail(std::string("config.") + key + " is missing or not an integer");
    return *value;
  };
  const std::string pattern = config_string("pattern");
  const int64_t vocab_size = config_integer("default_vocab_size");
  const int64_t num_special = config_integer("default_num_special_tokens");
  const std::string version = config_string("version");

  int version_number = 0;
  for (const auto& [name, number] : kVersions) {
    if (version == name) version_number = number;
  }
  if (version_number == 0) {
    throw fail("config.version \"" + version + "\" is not one of v1 v2 v3 v7 v11 v13 v15");
  }
  if (num_special < 0 || num_special > kMaxSpecialTokens) {
    throw fail("config.default_num_special_tokens " + std::to_string(num_special) +
               " is outside [0, " + std::to_string(kMaxSpecialTokens) + "]");
  }
  if (vocab_size > kMaxVocabSize || vocab_size - num_special < 256) {
    throw fail("config.default_vocab_size " + std::to_string(vocab_size) +
               " must exceed default_num_special_tokens by at least 256 (the byte ranks) and "
               "be at most " +
               std::to_string(kMaxVocabSize));
  }
  if (pattern.size() > kMaxPatternBytes) {
    throw fail("config.pattern is longer than " + std::to_string(kMaxPatternBytes) + " bytes");
  }
  if (pattern_policy == TekkenPatternPolicy::kKnownOnly && !IsKnownTekkenPattern(pattern)) {
    throw fail(
        "config.pattern is not the pre-tokenizer pattern of a released Mistral tokenizer "
        "(sha256 " +
        Sha256Hex(pattern) +
        "); bora compiles only known patterns, so use the tekken.json that came with "
        "the model");
  }
  const int64_t inner_size = vocab_size - num_special;

  // multimodal (deprecated name of `image`): only allowed up to v11, as mistral-common.
  if (const auto it = root.find("multimodal");
      it != root.end() && !it->is_null() && !it->empty() && version_number > 11) {
    throw fail("the image config must be called \"image\" for version " + version);
  }

  // vocab: entry i has rank i; only the first inner_size entries are used (and checked).
  const auto vocab_it = root.find("vocab");
  if (vocab_it == root.end() || !vocab_it->is_array()) throw fail("missing array \"vocab\"");
  const Json& vocab = *vocab_it;
  if (static_cast<int64_t>(vocab.size()) < inner_size) {
    throw fail("vocab has " + std::to_string(vocab.size()) + " entries, fewer than " +
               "default_vocab_size - default_num_special_tokens = " + std::to_string(inner_size));
  }
  auto tokenizer = std::unique_ptr<TekkenTokenizer>(new TekkenTokenizer());
  size_t encoded_bytes = 0;
  for (int64_t i = 0; i < inner_size; ++i) {
    const Json& entry = vocab[static_cast<size_t>(i)];
    if (entry.is_object()) {
      const auto it = entry.find("token_bytes");
      if (it != entry.end() && it->is_string())
        encoded_bytes += it->get_ref<const std::string&>().size();
    }
  }
  tokenizer->ranks_.Reserve(static_cast<size_t>(inner_size), encoded_bytes / 4 * 3);
  std::string bytes;
  for (int64_t i = 0; i < inner_size; ++i) {
    const Json& entry = vocab[static_cast<size_t>(i)];
    const std::string where = "vocab[" + std::to_string(i) + "]";
    if (!entry.is_object()) throw fail(where + " is not an object");
    const auto rank_it = entry.find("rank");
    const auto bytes_it = entry.find("token_bytes");
    const auto str_it = entry.find("token_str");
    if (rank_it == entry.end() || bytes_it == entry.end() || str_it == entry.end() ||
        entry.size() != 3) {
      throw fail(where + " must have exactly the keys rank, token_bytes, token_str");
    }
    if (AsInteger(*rank_it) != std::optional<int64_t>(i)) {
      throw fail(where + " has rank " + ShortDump(*rank_it) + ", expected " + std::to_string(i));
    }
    if (!str_it->is_string() && !str_it->is_null()) {
      throw fail(where + ".token_str is neither a string nor null");
    }
    if (!bytes_it->is_string() || !DecodeBase64(bytes_it->get_ref<const std::string&>(), bytes)) {
      throw fail(where + ".token_bytes is not valid base64");
    }
    if (bytes.empty()) throw fail(where + ".token_bytes is empty");
    if (bytes.size() > kMaxTokenBytes) {
      throw fail(where + ".token_bytes holds " + std::to_string(bytes.size()) +
                 " bytes, more than " + std::to_string(kMaxTokenBytes));
    }
    if (i < 256 && (bytes.size() != 1 || static_cast<uint8_t>(bytes[0]) != i)) {
      throw fail(where + " must be the single byte " + std::to_string(i));
    }
    if (tokenizer->ranks_.Add(bytes) < 0) {
      throw fail(where + " repeats the bytes of rank " +
                 std::to_string(tokenizer->ranks_.Find(bytes)));
    }
  }

  // special_tokens: a missing key or null means the built-in table (only up to v7).
  std::vector<std::string>& specials = tokenizer->specials_;
  const auto special_it = root.find("special_tokens");
  if (special_it == root.end() || special_it->is_null()) {
    if (version_number > 7) {
      throw fail("no \"special_tokens\" list, which version " + version + " requires");
    }
    specials.assign(kDefaultSpecialTokens.begin(), kDefaultSpecialTokens.end());
  } else {
    if (!special_it->is_array()) throw fail("\"special_tokens\" is not a list");
    tokenizer->has_special_tokens_list_ = true;
    for (size_t i = 0; i < special_it->size(); ++i) {
      const Json& entry = (*special_it)[i];
      const std::string where = "special_tokens[" + std::to_string(i) + "]";
      if (!entry.is_object()) throw fail(where + " is not an object");
      const auto rank_it = entry.find("rank");
      const auto str_it = entry.find("token_str");
      const auto control_it = entry.find("is_control");
      if (rank_it == entry.end() ||
          AsInteger(*rank_it) != std::optional<int64_t>(static_cast<int64_t>(i))) {
        throw fail(where + ".rank must be " + std::to_string(i));
      }
      if (str_it == entry.end() || !str_it->is_string()) {
        throw fail(where + ".token_str is missing or not a string");
      }
      if (str_it->get_ref<const std::string&>().size() > kMaxTokenBytes) {
        throw fail(where + ".token_str is longer than " + std::to_string(kMaxTokenBytes) +
                   " bytes");
      }
      if (control_it != entry.end() && !control_it->is_boolean()) {
        throw fail(where + ".is_control is not a boolean");
      }
      specials.push_back(str_it->get<std::string>());
    }
  }
  if (static_cast<int64_t>(specials.size()) > num_special) {
    throw fail(std::to_string(specials.size()) + " special tokens, more than " +
               "default_num_special_tokens = " + std::to_string(num_special));
  }
  const size_t defined = specials.size();
  for (int64_t i = static_cast<int64_t>(defined); i < num_special; ++i) {
    specials.push_back("<SPECIAL_" + std::to_string(i) + ">");
  }
  tokenizer->special_ids_.reserve(specials.size());
  for (size_t i = 0; i < specials.size(); ++i) {
    if (!tokenizer->special_ids_.emplace(specials[i], static_cast<int32_t>(i)).second) {
      throw fail("special token \"" + specials[i] + "\" appears twice (ids " +
                 std::to_string(tokenizer->special_ids_.at(specials[i])) + " and " +
                 std::to_string(i) + (i >= defined ? ", the latter a <SPECIAL_i> filler)" : ")"));
    }
  }

  // The pre-tokenizer: the white-space-normalised pattern, or the file's own when the rewrite
  // does not compile (it only touches escapes, so that should not happen).
  auto regex = std::make_unique<TekkenTokenizer::Regex>();
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string rewritten = RewriteWhiteSpaceEscapes(pattern);
  regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                              options, &error_code, &error_offset, nullptr);
  if (regex->code == nullptr) {
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                options, &error_code, &error_offset, nullptr);
  }
  if (regex->code == nullptr) {
    throw fail("config.pattern does not compile (PCRE2, at offset " + std::to_string(error_offset) +
               "): " + Pcre2Message(error_code));
  }
  // JIT is an optimisation: when it is unavailable or fails (no executable memory),
  // pcre2_match runs the interpreter instead, so the result is deliberately ignored.
  (void)pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);

  tokenizer->vocab_size_ = static_cast<int32_t>(vocab_size);
  tokenizer->num_special_ = static_cast<int32_t>(num_special);
  tokenizer->version_ = version;
  tokenizer->pattern_ = pattern;
  tokenizer->regex_ = std::move(regex);
  const auto lookup = [&](std::string_view name) {
    const auto found = tokenizer->special_ids_.find(name);
    return found == tokenizer->special_ids_.end() ? -1 : found->second;
  };
  tokenizer->bos_id_ = lookup("<s>");
  tokenizer->eos_id_ = lookup("</s>");
  tokenizer->unk_id_ = lookup("<unk>");
  tokenizer->pad_id_ = lookup("<pad>");

  // Image settings (mistral-common ImageConfig): image_patch_size, max_image_size,
  // spatial_merge_size (default 1); any other key is refused.
  const auto image_it = root.find("image") != root.end() && !root.find("image")->is_null() ? root.find("image")
                                                                                          : root.find("multimodal");
  if (image_it != root.end() && !image_it->is_null() && !image_it->empty()) {
    const Json& image = *image_it;
    if (!image.is_object()) throw fail("the image config must be an object");
    for (const auto& [key, value] : image.items()) {
      if (key != "image_patch_size" && key != "max_image_size" && key != "spatial_merge_size") {
        throw fail("image config key \"" + key + "\" is not understood (bora knows image_patch_size, "
                   "max_image_size, spatial_merge_size)");
      }
      if (!value.is_number_integer() || value.get<int64_t>() <= 0 || value.get<int64_t>() > (1 << 16)) {
        throw fail("image config " + key + " must be a positive integer");
      }
    }
    if (!image.contains("image_patch_size") || !image.contains("max_image_size")) {
      throw fail("the image config needs image_patch_size and max_image_size");
    }
    tokenizer->SetImageConfig(image.at("image_patch_size").get<int64_t>(), image.at("max_image_size").get<int64_t>(),
                              image.value("spatial_merge_size", int64_t{1}), source);
  }
  return tokenizer;
}

std::unique_ptr<TekkenTokenizer> LoadTekkenTokenizer(const std::string& path,
                                                     TekkenPatternPolicy pattern_policy) {
  return ParseTekkenTokenizer(ReadWholeFile(path), path, pattern_policy);
}

}  // namespace bora::tokenizer
