// Tests of the Tekken backend and the BPE merge: shared vectors, synthetic files, malformed input.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "testdata.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/tekken_tokenizer.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

using ::bora::testing::TempDir;
using ::bora::testing::WriteFile;
using Json = nlohmann::json;
using Ids = std::vector<int32_t>;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr const char* kTekkenFile = "tekken_240718-reconstructed.json";

// The pre-tokenization pattern of every known Tekken file.
constexpr const char* kTekkenPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|)"
    R"( ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// mistral-common's default special table (ids 0..19) for files without `special_tokens`.
const std::vector<std::string> kDefaultNames = {
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

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The real 130072-rank Tekken file, loaded once per process (it takes a moment).
const TekkenTokenizer& RealTekken(const std::string& shared) {
  static const std::unique_ptr<TekkenTokenizer> tokenizer =
      LoadTekkenTokenizer(shared + "/tokenizers/" + kTekkenFile);
  return *tokenizer;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t group = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                           (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(group >> shift) & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t group = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2) group |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += rest == 2 ? kAlphabet[(group >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Merges of the synthetic vocabulary, ranks 256.. in order.
const std::vector<std::string> kSyntheticMerges = {
    "aa",    // 256
    "bc",    // 257
    "ab",    // 258
    "aaaa",  // 259
    "cd",    // 260
    "bcd",   // 261
    "xyz",   // 262: reachable only as a whole piece (no "xy"/"yz")
};
constexpr int32_t kSyntheticSpecials = 40;

// A synthetic Tekken file: ranks 0..255 the bytes, then kSyntheticMerges, S = 40, version v11,
// special_tokens 0..33 with [ARGS] at 32 and [CALL_ID] at 33. Callers mutate it to break it.
Json SyntheticTekken() {
  Json vocab = Json::array();
  for (int i = 0; i < 256; ++i) {
    const std::string byte(1, static_cast<char>(i));
    vocab.push_back({{"rank", i},
                     {"token_bytes", Base64(byte)},
                     {"token_str", i < 128 ? Json(byte) : Json(nullptr)}});
  }
  for (const std::string& merge : kSyntheticMerges) {
    vocab.push_back({{"rank", vocab.size()}, {"token_bytes", Base64(merge)}, {"token_str", merge}});
  }
  // Beyond default_vocab_size - S: never used, never checked (mistral-common cuts first).
  vocab.push_back({{"rank", 12345}, {"token_bytes", "not base64!"}, {"token_str", 7}});

  Json specials = Json::array();
  for (int i = 0; i < 34; ++i) {
    std::string name = i < 20    ? kDefaultNames[static_cast<size_t>(i)]
                       : i == 32 ? "[ARGS]"
                       : i == 33 ? "[CALL_ID]"
                                 : "<SPECIAL_" + std::to_string(i) + ">";
    specials.push_back({{"rank", i}, {"token_str", name}, {"is_control", true}});
  }
  const int inner = 256 + static_cast<int>(kSyntheticMerges.size());
  return Json{{"config",
               {{"pattern", kTekkenPattern},
                {"num_vocab_tokens", inner + 1},
                {"default_vocab_size", inner + kSyntheticSpecials},
                {"default_num_special_tokens", kSyntheticSpecials},
                {"version", "v11"}}},
              {"vocab", vocab},
              {"special_tokens", specials}};
}

std::unique_ptr<TekkenTokenizer> LoadJson(const TempDir& dir, const Json& json,
                                          const std::string& name = "tekken.json") {
  WriteFile(dir.File(name), json.dump());
  return LoadTekkenTokenizer(dir.File(name));
}

// Synthetic ids of a rank sequence.
Ids Shift(Ids ranks) {
  for (int32_t& rank : ranks) rank += kSyntheticSpecials;
  return ranks;
}

// ---------------------------------------------------------------------------------------------
// bpe_merge

// The quadratic textbook algorithm, the specification BpeMerge must agree with.
Ids NaiveBpe(std::string_view piece, const std::map<std::string, int32_t, std::less<>>& ranks) {
  if (const auto whole = ranks.find(piece); whole != ranks.end()) return {whole->second};
  std::vector<std::string> parts;
  for (const char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int32_t best_rank = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto found = ranks.find(parts[i] + parts[i + 1]);
      if (found != ranks.end() && (best_rank < 0 || found->second < best_rank)) {
        best_rank = found->second;
        best = i;
      }
    }
    if (best_rank < 0) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  Ids out;
  for (const std::string& part : parts) out.push_back(ranks.at(part));
  return out;
}

ByteRankMap ByteVocab(const std::vector<std::string>& merges) {
  ByteRankMap map;
  for (int i = 0; i < 256; ++i) map.Add(std::string(1, static_cast<char>(i)));
  for (const std::string& merge : merges) map.Add(merge);
  return map;
}

TEST(BpeMergeTest, ByteRankMapAddFindBytes) {
  ByteRankMap map;
  EXPECT_EQ(map.Find("a"), -1);
  EXPECT_EQ(map.Add("a"), 0);
  EXPECT_EQ(map.Add("hello"), 1);
  EXPECT_EQ(map.Add(std::string("\0x", 2)), 2);
  EXPECT_EQ(map.Add("a"), -1);  // duplicate
  EXPECT_EQ(map.size(), 3);
  EXPECT_EQ(map.Find("hello"), 1);
  EXPECT_EQ(map.Find(std::string("\0x", 2)), 2);
  EXPECT_EQ(map.Find("hell"), -1);
  EXPECT_EQ(map.Bytes(1), "hello");
  EXPECT_EQ(map.ByteRank('a'), 0);
  EXPECT_EQ(map.ByteRank('b'), -1);
  auto key = [](int i) { return std::string("k").append(std::to_string(i)); };
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(map.Add(key(i)), 3 + i);
  for (int i = 0; i < 100000; i += 997) EXPECT_EQ(map.Find(key(i)), 3 + i);
  EXPECT_EQ(map.Find("k100000"), -1);
}

TEST(BpeMergeTest, HandComputedTieBreaking) {
  const ByteRankMap map = ByteVocab(kSyntheticMerges);
  EXPECT_EQ(BpeMerge("", map), Ids{});
  EXPECT_EQ(BpeMerge("q", map), Ids{'q'});
  // Two overlapping "aa" pairs of equal rank: the leftmost merges first.
  EXPECT_EQ(BpeMerge("aaa", map), (Ids{256, 'a'}));
  EXPECT_EQ(BpeMerge("aaaa", map), Ids{259});  // whole piece
  // aa@0, then aa@2 (leftmost remaining), then aa+aa = aaaa.
  EXPECT_EQ(BpeMerge("aaaaa", map), (Ids{259, 'a'}));
  // "bc" (257) beats "ab" (258) although "ab" is further left.
  EXPECT_EQ(BpeMerge("abc", map), (Ids{'a', 257}));
  // bc first; that invalidates cd (260) although it is ranked above bcd (261).
  EXPECT_EQ(BpeMerge("abcd", map), (Ids{'a', 261}));
  EXPECT_EQ(BpeMerge("xyz", map), Ids{262});                    // whole piece, no merge path
  EXPECT_EQ(BpeMerge("xyzz", map), (Ids{'x', 'y', 'z', 'z'}));  // no pair in the vocabulary
}

TEST(BpeMergeTest, MissingByteThrows) {
  ByteRankMap map;
  map.Add("a");
  EXPECT_THROW(BpeMerge("ab", map), InvalidArgument);
  std::vector<int32_t> out{7};
  BpeWorkspace workspace;
  EXPECT_THROW(BpeMerge("ab", map, workspace, out), InvalidArgument);
  EXPECT_EQ(out, Ids{7});  // nothing appended
}

TEST(BpeMergeTest, AgreesWithNaiveQuadraticReferenceOnRandomInputs) {
  std::mt19937 random(20240718);
  for (int trial = 0; trial < 40; ++trial) {
    // A small alphabet makes long merge chains and many equal-rank ties.
    const std::string alphabet = trial % 2 == 0 ? "ab" : "abcd";
    std::uniform_int_distribution<size_t> letter(0, alphabet.size() - 1);
    std::uniform_int_distribution<int> merge_length(2, 7);
    std::vector<std::string> merges;
    std::map<std::string, int32_t, std::less<>> reference;
    ByteRankMap map;
    for (int i = 0; i < 256; ++i) {
      const std::string byte(1, static_cast<char>(i));
      reference[byte] = map.Add(byte);
    }
    while (map.size() < 256 + 60) {
      std::string merge;
      for (int k = merge_length(random); k > 0; --k) merge += alphabet[letter(random)];
      const int32_t rank = map.Add(merge);
      if (rank >= 0) reference[merge] = rank;
    }
    BpeWorkspace workspace;  // reused across pieces, as Encode does
    for (int piece_index = 0; piece_index < 50; ++piece_index) {
      std::string piece;
      const int length = std::uniform_int_distribution<int>(1, 300)(random);
      for (int k = 0; k < length; ++k) piece += alphabet[letter(random)];
      Ids fast;
      BpeMerge(piece, map, workspace, fast);
      ASSERT_EQ(fast, NaiveBpe(piece, reference)) << "trial " << trial << " piece " << piece;
    }
  }
}

TEST(BpeMergeTest, LongPieceIsNotQuadratic) {
  // Powers of two of 'a': a 2^20-byte piece merges level by level into 16 tokens of 2^16.
  std::vector<std::string> merges;
  for (size_t length = 2; length <= (size_t{1} << 16); length *= 2)
    merges.emplace_back(length, 'a');
  const ByteRankMap map = ByteVocab(merges);
  const std::string piece(size_t{1} << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  const Ids ranks = BpeMerge(piece, map);
  const double seconds = SecondsSince(start);
  EXPECT_EQ(ranks, Ids(16, map.Find(std::string(size_t{1} << 16, 'a'))));
  // The quadratic rescan needs ~10^12 steps here; O(n log n) takes well under a second.
  if (!kSanitized) {
    EXPECT_LT(seconds, 3.0);
  }
}

// ---------------------------------------------------------------------------------------------
// The real file

TEST(TekkenRealTest, LoadsQuicklyWithDefaultSpecialTable) {
  BORA_REQUIRE_SHARED(shared);
  const auto start = std::chrono::steady_clock::now();
  const auto tokenizer = LoadTekkenTokenizer(shared + "/tokenizers/" + kTekkenFile);
  const double seconds = SecondsSince(start);
  std::printf("Tekken load: %.3f s\n", seconds);
  if (!kSanitized) {
    EXPECT_LT(seconds, 1.0);
  }
  EXPECT_EQ(tokenizer->backend(), Backend::kTekken);
  EXPECT_EQ(tokenizer->vocab_size(), 131072);
  EXPECT_EQ(tokenizer->num_special_tokens(), 1000);
  EXPECT_EQ(tokenizer->config_version(), "v3");
  EXPECT_FALSE(tokenizer->has_special_tokens_list());
  EXPECT_FALSE(tokenizer->StripsLeadingSpace());

  for (int32_t id = 0; id < 1000; ++id) {
    const std::string name =
        id < 20 ? kDefaultNames[static_cast<size_t>(id)] : "<SPECIAL_" + std::to_string(id) + ">";
    EXPECT_EQ(tokenizer->SpecialName(id), name);
    EXPECT_EQ(tokenizer->IdToPiece(id), name);
    EXPECT_EQ(tokenizer->FindSpecial(name), id);
    EXPECT_TRUE(tokenizer->IsSpecial(id));
    EXPECT_EQ(tokenizer->TokenBytes(id), "");
  }
  EXPECT_FALSE(tokenizer->IsSpecial(1000));
  EXPECT_FALSE(tokenizer->IsSpecial(-1));
  EXPECT_EQ(tokenizer->FindSpecial("[ARGS]"), std::nullopt);
  EXPECT_EQ(tokenizer->FindSpecial("Hello"), std::nullopt);
  EXPECT_EQ(tokenizer->unk_id(), 0);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->pad_id(), 11);
  EXPECT_THROW(tokenizer->SpecialName(1000), InvalidArgument);
}

TEST(TekkenRealTest, SharedExamplesJsonl) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  std::ifstream in(shared + "/tokenizers/examples.jsonl");
  ASSERT_TRUE(in) << "cannot read examples.jsonl";
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const Json example = Json::parse(line);
    if (example.at("tokenizer") != kTekkenFile) continue;
    const std::string text = example.at("text");
    const Ids ids = example.at("ids");
    EXPECT_EQ(tokenizer.Encode(text), ids) << "text: " << text;
    EXPECT_EQ(tokenizer.Decode(ids), text);
    ++checked;
  }
  EXPECT_EQ(checked, 25);
}

TEST(TekkenRealTest, SpecExampleTable) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  const std::vector<std::pair<std::string, Ids>> table = {
      {"a", {1097}},
      {"b", {1098}},
      {"c", {1099}},
      {"d", {1100}},
      {"SYSTEM\n\nc", {101289, 58343, 1267, 1099}},
      {"Hello", {22177}},
      {"world", {34049}},
      {"Hello world", {22177, 4304}},
      {"Hello, how are you?", {22177, 1044, 2606, 1584, 1636, 1063}},
      {"Plz tekkenize me", {4444, 1122, 16058, 3569, 2033, 1639}},
      {"123", {1049, 1050, 1051}},
      {" ", {1032}},
      {"\n", {1010}},
      {"  ", {1256}},
      {"\n\n", {1267}},
      {"  two leading spaces", {1032, 2295, 8924, 18971}},
      {"[INST] not a control token here [/INST]",
       {1091, 3174, 3074, 1093, 1605, 1261, 3119, 10835, 3226, 1766, 1047, 3174, 3074, 1093}},
      {"", {}},
  };
  for (const auto& [text, ids] : table) {
    EXPECT_EQ(tokenizer.Encode(text), ids) << "text: " << text;
    EXPECT_EQ(tokenizer.Decode(ids), text);
  }
}

TEST(TekkenRealTest, PreTokenizeFollowsThePattern) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  using Pieces = std::vector<std::string>;
  EXPECT_EQ(tokenizer.PreTokenize("  two leading spaces"),
            (Pieces{" ", " two", " leading", " spaces"}));
  EXPECT_EQ(tokenizer.PreTokenize("x = [1, 2]\nok"),
            (Pieces{"x", " =", " [", "1", ",", " ", "2", "]\n", "ok"}));
  EXPECT_EQ(tokenizer.PreTokenize("HTTPServer\r\n\r\n  end  "),
            (Pieces{"HTTPServer", "\r\n\r\n", " ", " end", "  "}));
  // U+180E is not White_Space for tiktoken's regex crate (PCRE2's \s includes it): it is
  // punctuation-like, so it joins the following '.', and a space before it joins it.
  EXPECT_EQ(tokenizer.PreTokenize("\xE1\xA0\x8E."), (Pieces{"\xE1\xA0\x8E."}));
  EXPECT_EQ(tokenizer.PreTokenize("a \xE1\xA0\x8E"), (Pieces{"a", " \xE1\xA0\x8E"}));
  // U+3000 and U+0085 are White_Space for both.
  EXPECT_EQ(tokenizer.PreTokenize("a\xE3\x80\x80\xE3\x80\x80"
                                  "b"),
            (Pieces{"a", "\xE3\x80\x80",
                    "\xE3\x80\x80"
                    "b"}));
  EXPECT_EQ(tokenizer.PreTokenize("\xC2\x85."), (Pieces{"\xC2\x85", "."}));
}

TEST(TekkenRealTest, DecodePolicies) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  const Ids ids = {1, 3, 22177, 4304, 4, 2};
  EXPECT_EQ(tokenizer.Decode(ids), "Hello world");
  EXPECT_EQ(tokenizer.Decode(ids, SpecialTokenPolicy::kIgnore), "Hello world");
  EXPECT_EQ(tokenizer.Decode(ids, SpecialTokenPolicy::kKeep), "<s>[INST]Hello world[/INST]</s>");
  EXPECT_THROW(tokenizer.Decode(ids, SpecialTokenPolicy::kRaise), InvalidArgument);
  EXPECT_EQ(tokenizer.Decode(Ids{22177, 4304}, SpecialTokenPolicy::kRaise), "Hello world");
  EXPECT_EQ(tokenizer.IdToPiece(22177), "Hello");
  EXPECT_EQ(tokenizer.IdToPiece(4304), " world");
  EXPECT_EQ(tokenizer.TokenBytes(4304), " world");
  EXPECT_EQ(tokenizer.Decode(Ids{}), "");
  for (const int32_t bad : {-1, 131072, 200000}) {
    EXPECT_THROW(tokenizer.Decode(Ids{22177, bad}), InvalidArgument) << bad;
    EXPECT_THROW(tokenizer.IdToPiece(bad), InvalidArgument) << bad;
    EXPECT_THROW(tokenizer.TokenBytes(bad), InvalidArgument) << bad;
  }
  EXPECT_EQ(tokenizer.Decode(Ids{131071}).empty(), false);  // the last id is a normal token
}

TEST(TekkenRealTest, DecodeInvalidUtf8LikePython) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  const auto byte = [](int value) { return 1000 + value; };
  const std::string fffd = "\xEF\xBF\xBD";
  // bytes([0xff]).decode(errors="replace") == "\ufffd", etc.
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xFF)}), fffd);
  EXPECT_EQ(tokenizer.TokenBytes(byte(0xFF)), "\xFF");
  EXPECT_EQ(tokenizer.IdToPiece(byte(0xE2)), fffd);
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xE2), byte(0x82)}), fffd);  // truncated: one U+FFFD
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xE2), byte(0x82), byte('a')}), fffd + "a");
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xED), byte(0xA0), byte(0x80)}), fffd + fffd + fffd);
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xC0), byte(0xAF)}), fffd + fffd);
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xF0), byte(0x9F), byte(0x98), byte(0x80)}),
            "\xF0\x9F\x98\x80");  // split across tokens, joined within a group
  // A special id splits the groups: each half is decoded on its own, as _decode_all does.
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xF0), byte(0x9F), 1, byte(0x98), byte(0x80)},
                             SpecialTokenPolicy::kKeep),
            fffd + "<s>" + fffd + fffd);
  EXPECT_EQ(tokenizer.Decode(Ids{byte(0xF0), byte(0x9F), 1, byte(0x98), byte(0x80)}),
            fffd + fffd + fffd);
}

TEST(TekkenRealTest, InvalidUtf8InputIsRepairedFirst) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  EXPECT_EQ(tokenizer.Encode("a\xFF"
                             "b"),
            tokenizer.Encode("a\xEF\xBF\xBD"
                             "b"));
  EXPECT_EQ(tokenizer.Encode("x\xE2\x82"), tokenizer.Encode("x\xEF\xBF\xBD"));
  EXPECT_EQ(tokenizer.Decode(tokenizer.Encode("\xC0\xAF")), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TekkenRealTest, RoundTripsUtf8TortureText) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  std::string text =
      "English, Français, Deutsch: Grüße! 日本語のテキスト、中文文本。한국어 텍스트.\n"
      "Emoji ZWJ: \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
      "flags \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 skin \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\n"
      "Combining: e\xCC\x81 a\xCC\x8A\xCC\x81 Z\xCD\x91\xCD\x97\xCD\x8B\n"
      "Arabic: \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 Hebrew: \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D\n"
      "Replacement char: \xEF\xBF\xBD; BOM \xEF\xBB\xBF; U+180E \xE1\xA0\x8E; U+2028 \xE2\x80\xA8;"
      " max \xF4\x8F\xBF\xBF; nbsp\xC2\xA0here\r\n\t\ttabs\x0B\x0C"
      "code: for (int i = 0; i < n; ++i) { sum += a[i] * 3.14e-5; }\n";
  text += std::string("NUL:\0:end", 9);
  text += std::string(10000, ' ');
  text += "after spaces\n\n\n";
  text += std::string(10000, ' ');
  const Ids ids = tokenizer.Encode(text);
  for (const int32_t id : ids) ASSERT_GE(id, 1000);
  EXPECT_EQ(tokenizer.Decode(ids), text);
  std::string streamed;
  for (const int32_t id : ids) streamed += tokenizer.TokenBytes(id);
  EXPECT_EQ(streamed, text);
}

TEST(TekkenRealTest, AdversarialInputsCompleteInLinearishTime) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  // ~100 KB of CJK without spaces: one giant pre-tokenized piece.
  std::string cjk;
  for (uint32_t i = 0; cjk.size() < 100000; ++i) AppendUtf8(0x4E00 + (i * 7919) % 20000, cjk);
  const std::vector<std::string> inputs = {
      cjk,
      std::string(100000, 'a'),
      std::string(100000, 'A'),
      std::string(100000, '.'),
      std::string(100000, '7'),
      std::string(10000, ' '),
      std::string(10000, ' ') + "x",
      std::string(100000, '\n'),
      [] {
        std::string same;
        while (same.size() < 100000) same += "\xE4\xB8\xAD";  // 中 repeated
        return same;
      }(),
  };
  for (const std::string& input : inputs) {
    const auto start = std::chrono::steady_clock::now();
    const Ids ids = tokenizer.Encode(input);
    const double seconds = SecondsSince(start);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tokenizer.Decode(ids), input) << input.substr(0, 12);
    if (!kSanitized) {
      EXPECT_LT(seconds, 1.0) << input.substr(0, 12);
    }
  }
  EXPECT_EQ(tokenizer.PreTokenize(cjk).size(), 1u);
}

TEST(TekkenRealTest, ConcurrentEncodeAgrees) {
  BORA_REQUIRE_SHARED(shared);
  const TekkenTokenizer& tokenizer = RealTekken(shared);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Line " + std::to_string(i) + ": 東京 café résumé!\n";
  text += std::string(5000, ' ') + "end";
  const Ids expected = tokenizer.Encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 5; ++repeat) results[t] = tokenizer.Encode(text);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Ids& result : results) EXPECT_EQ(result, expected);
}

// ---------------------------------------------------------------------------------------------
// Synthetic files

TEST(TekkenSyntheticTest, SpecialTokensListAndPadding) {
  TempDir dir;
  const auto tokenizer = LoadJson(dir, SyntheticTekken());
  EXPECT_EQ(tokenizer->config_version(), "v11");
  EXPECT_TRUE(tokenizer->has_special_tokens_list());
  EXPECT_EQ(tokenizer->num_special_tokens(), 40);
  EXPECT_EQ(tokenizer->vocab_size(), 40 + 263);
  EXPECT_EQ(tokenizer->FindSpecial("[ARGS]"), 32);
  EXPECT_EQ(tokenizer->FindSpecial("[CALL_ID]"), 33);
  EXPECT_EQ(tokenizer->FindSpecial("<SPECIAL_31>"), 31);
  EXPECT_EQ(tokenizer->FindSpecial("<SPECIAL_34>"), 34);  // padding
  EXPECT_EQ(tokenizer->FindSpecial("<SPECIAL_39>"), 39);
  EXPECT_EQ(tokenizer->FindSpecial("<SPECIAL_40>"), std::nullopt);
  EXPECT_EQ(tokenizer->SpecialName(34), "<SPECIAL_34>");
  EXPECT_EQ(tokenizer->IdToPiece(32), "[ARGS]");
  EXPECT_EQ(tokenizer->IdToPiece(39), "<SPECIAL_39>");
  EXPECT_TRUE(tokenizer->IsSpecial(39));
  EXPECT_FALSE(tokenizer->IsSpecial(40));
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->pad_id(), 11);
  EXPECT_EQ(tokenizer->Decode(Ids{32, 40 + 'h', 40 + 'i', 33}, SpecialTokenPolicy::kKeep),
            "[ARGS]hi[CALL_ID]");
  EXPECT_THROW(tokenizer->Decode(Ids{40 + 263}), InvalidArgument);
}

TEST(TekkenSyntheticTest, EncodeIdsAndTieBreaking) {
  TempDir dir;
  const auto tokenizer = LoadJson(dir, SyntheticTekken());
  EXPECT_EQ(tokenizer->Encode("a"), Shift({'a'}));
  EXPECT_EQ(tokenizer->Encode("aaa"), Shift({256, 'a'}));
  EXPECT_EQ(tokenizer->Encode("aaaa"), Shift({259}));
  EXPECT_EQ(tokenizer->Encode("aaaaa"), Shift({259, 'a'}));
  EXPECT_EQ(tokenizer->Encode("abc"), Shift({'a', 257}));
  EXPECT_EQ(tokenizer->Encode("abcd"), Shift({'a', 261}));
  EXPECT_EQ(tokenizer->Encode("xyz"), Shift({262}));
  // Pieces are merged separately: " aaa" is one piece (space + letters), "1", "2" digits.
  EXPECT_EQ(tokenizer->Encode("aaa aaa12"), Shift({256, 'a', ' ', 256, 'a', '1', '2'}));
  EXPECT_EQ(tokenizer->Encode("[ARGS]"), Shift({'[', 'A', 'R', 'G', 'S', ']'}));
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode("abcd xyz")), "abcd xyz");
}

TEST(TekkenSyntheticTest, DefaultTableWithoutListUpToV7) {
  TempDir dir;
  Json json = SyntheticTekken();
  json.erase("special_tokens");
  json["config"]["version"] = "v7";
  auto tokenizer = LoadJson(dir, json);
  EXPECT_FALSE(tokenizer->has_special_tokens_list());
  EXPECT_EQ(tokenizer->FindSpecial("[TOOL_CONTENT]"), 19);
  EXPECT_EQ(tokenizer->FindSpecial("<SPECIAL_20>"), 20);
  EXPECT_EQ(tokenizer->FindSpecial("[ARGS]"), std::nullopt);
  EXPECT_EQ(tokenizer->pad_id(), 11);

  json["special_tokens"] = nullptr;  // null means absent, as untyped.get() in mistral-common
  tokenizer = LoadJson(dir, json);
  EXPECT_FALSE(tokenizer->has_special_tokens_list());

  // A list without <pad>/<unk>: those ids are -1.
  json["special_tokens"] =
      Json::array({{{"rank", 0}, {"token_str", "<s>"}, {"is_control", true}},
                   {{"rank", 1}, {"token_str", "</s>"}, {"is_control", true}}});
  tokenizer = LoadJson(dir, json);
  EXPECT_EQ(tokenizer->bos_id(), 0);
  EXPECT_EQ(tokenizer->eos_id(), 1);
  EXPECT_EQ(tokenizer->unk_id(), -1);
  EXPECT_EQ(tokenizer->pad_id(), -1);
  EXPECT_EQ(tokenizer->SpecialName(2), "<SPECIAL_2>");
}

TEST(TekkenSyntheticTest, WhiteSpaceEscapesMeanUnicodeWhiteSpace) {
  // U+180E (Cf) is not White_Space: tiktoken's \S matches it, PCRE2's own \S would not.
  using Pieces = std::vector<std::string>;
  const std::string text =
      "\\sa\xE1\xA0\x8E"
      "b\xE2\x80\x83"
      "c";  // \s a U+180E b U+2003 c
  for (const char* pattern : {R"(\Q\s\E|\S+|\s+)", R"(\Q\s\E|[^\s]+|[\s]+)",
                              R"(\Q\s\E|[^[:cntrl:]\s]+|[\s[:cntrl:]]+)"}) {
    Json json = SyntheticTekken();
    json["config"]["pattern"] = pattern;
    const auto tokenizer =
        ParseTekkenTokenizer(json.dump(), pattern, TekkenPatternPolicy::kTrustFile);
    EXPECT_EQ(tokenizer->PreTokenize(text), (Pieces{"\\s",
                                                    "a\xE1\xA0\x8E"
                                                    "b",
                                                    "\xE2\x80\x83", "c"}))
        << pattern;
  }
}

TEST(TekkenSyntheticTest, PatternNeedingDeepBacktrackingStillEncodes) {
  // An alternation inside a repeat overflows PCRE2's default JIT stack after a few thousand
  // repetitions; Encode must switch to a larger stack (or the interpreter), not fail.
  Json json = SyntheticTekken();
  json["config"]["pattern"] = "(?:a|b)+|[^ab]+";
  const auto tokenizer =
      ParseTekkenTokenizer(json.dump(), "deep-backtracking", TekkenPatternPolicy::kTrustFile);
  const std::string text = std::string(1 << 20, 'a') + "xyz" + std::string(5000, 'b');
  const Ids ids = tokenizer->Encode(text);
  ASSERT_EQ(tokenizer->PreTokenize(text).size(), 3u);
  EXPECT_EQ(ids.size(), (size_t{1} << 18) + 1 + 5000);  // aaaa x 2^18, xyz, b x 5000
  EXPECT_EQ(tokenizer->Decode(ids), text);
}

TEST(TekkenSyntheticTest, ParseFromMemoryNamesTheSource) {
  const auto tokenizer = ParseTekkenTokenizer(SyntheticTekken().dump(), "in-memory");
  EXPECT_EQ(tokenizer->Encode("abcd"), Shift({'a', 261}));
  try {
    ParseTekkenTokenizer("{", "in-memory");
    FAIL() << "no FormatError";
  } catch (const FormatError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("in-memory: ", 0), 0u) << error.what();
  }
}

// One malformed variant of the synthetic file and the phrase its message must contain.
struct Malformed {
  std::string name;
  std::string phrase;
  std::function<void(Json&)> mutate;
  std::string raw;  // when set, written instead of the JSON
};

TEST(TekkenSyntheticTest, MalformedFilesThrowFormatErrorNamingTheFile) {
  const auto first_merge = [](Json& json) -> Json& { return json["vocab"][256]; };
  const std::vector<Malformed> cases = {
      {"not_json", "not valid JSON", nullptr, "{\"config\": "},
      {"not_object", "not a JSON object", nullptr, "[1, 2]"},
      {"empty_file", "not valid JSON", nullptr, " "},
      {"no_config", "config", [](Json& j) { j.erase("config"); }, ""},
      {"no_pattern", "config.pattern", [](Json& j) { j["config"].erase("pattern"); }, ""},
      {"pattern_not_string", "config.pattern", [](Json& j) { j["config"]["pattern"] = 5; }, ""},
      {"vocab_size_string", "config.default_vocab_size",
       [](Json& j) { j["config"]["default_vocab_size"] = "303"; }, ""},
      {"num_special_float", "config.default_num_special_tokens",
       [](Json& j) { j["config"]["default_num_special_tokens"] = 40.0; }, ""},
      {"num_special_missing", "config.default_num_special_tokens",
       [](Json& j) { j["config"].erase("default_num_special_tokens"); }, ""},
      {"no_version", "config.version", [](Json& j) { j["config"].erase("version"); }, ""},
      {"bad_version", "v4", [](Json& j) { j["config"]["version"] = "v4"; }, ""},
      {"negative_specials", "default_num_special_tokens",
       [](Json& j) { j["config"]["default_num_special_tokens"] = -1; }, ""},
      {"no_vocab", "vocab", [](Json& j) { j.erase("vocab"); }, ""},
      {"wrong_rank", "rank 300, expected 256", [&](Json& j) { first_merge(j)["rank"] = 300; }, ""},
      {"rank_as_string", "vocab[256] has rank", [&](Json& j) { first_merge(j)["rank"] = "256"; },
       ""},
      {"bad_base64", "not valid base64", [&](Json& j) { first_merge(j)["token_bytes"] = "YW="; },
       ""},
      {"bad_base64_char", "not valid base64",
       [&](Json& j) { first_merge(j)["token_bytes"] = "Y!E="; }, ""},
      {"extra_key", "exactly the keys", [&](Json& j) { first_merge(j)["extra"] = 1; }, ""},
      {"token_str_number", "token_str", [&](Json& j) { first_merge(j)["token_str"] = 1; }, ""},
      {"byte_rank_wrong_byte", "single byte 65",
       [](Json& j) { j["vocab"][65]["token_bytes"] = Base64("B"); }, ""},
      {"byte_rank_two_bytes", "single byte 0",
       [](Json& j) { j["vocab"][0]["token_bytes"] = Base64("ab"); }, ""},
      {"vocab_too_short", "fewer than",
       [](Json& j) { j["config"]["default_vocab_size"] = 40 + 264 + 1; }, ""},
      {"too_few_byte_ranks", "at least 256",
       [](Json& j) { j["config"]["default_vocab_size"] = 40 + 255; }, ""},
      {"duplicate_bytes", "repeats the bytes of rank 256",
       [](Json& j) { j["vocab"][262]["token_bytes"] = Base64("aa"); }, ""},
      {"duplicate_special", "appears twice",
       [](Json& j) { j["special_tokens"][32]["token_str"] = "[INST]"; }, ""},
      {"special_collides_with_filler", "<SPECIAL_35>",
       [](Json& j) { j["special_tokens"][33]["token_str"] = "<SPECIAL_35>"; }, ""},
      {"too_many_specials", "more than default_num_special_tokens",
       [](Json& j) {
         for (int i = 34; i < 41; ++i) {
           j["special_tokens"].push_back(
               {{"rank", i}, {"token_str", "[X" + std::to_string(i) + "]"}, {"is_control", true}});
         }
       },
       ""},
      {"default_table_exceeds_specials", "more than default_num_special_tokens",
       [](Json& j) {
         j.erase("special_tokens");
         j["config"]["version"] = "v3";
         j["config"]["default_num_special_tokens"] = 10;
         j["config"]["default_vocab_size"] = 10 + 263;
       },
       ""},
      {"no_special_tokens_v11", "requires", [](Json& j) { j.erase("special_tokens"); }, ""},
      {"no_special_tokens_v13", "requires",
       [](Json& j) {
         j.erase("special_tokens");
         j["config"]["version"] = "v13";
       },
       ""},
      {"special_rank_mismatch", "special_tokens[5].rank must be 5",
       [](Json& j) { j["special_tokens"][5]["rank"] = 6; }, ""},
      {"special_not_list", "not a list", [](Json& j) { j["special_tokens"] = Json::object(); }, ""},
      {"special_no_str", "token_str", [](Json& j) { j["special_tokens"][3].erase("token_str"); },
       ""},
      {"is_control_not_bool", "is_control",
       [](Json& j) { j["special_tokens"][3]["is_control"] = "yes"; }, ""},
      {"unknown_pattern", "not the pre-tokenizer pattern of a released Mistral tokenizer",
       [](Json& j) { j["config"]["pattern"] = "\\S+|\\s+"; }, ""},
      {"catastrophic_pattern", "sha256 ", [](Json& j) { j["config"]["pattern"] = "(a+)+$"; }, ""},
      {"pattern_with_a_trailing_space", "bora compiles only known patterns",
       [](Json& j) { j["config"]["pattern"] = std::string(kTekkenPattern) + " "; }, ""},
      {"multimodal_after_v11", "\"image\"",
       [](Json& j) {
         j["config"]["version"] = "v13";
         j["multimodal"] = {{"image_patch_size", 16}};
       },
       ""},
  };
  TempDir dir;
  for (const Malformed& c : cases) {
    const std::string path = dir.File("tekken_" + c.name + ".json");
    if (c.mutate) {
      Json json = SyntheticTekken();
      c.mutate(json);
      WriteFile(path, json.dump());
    } else {
      WriteFile(path, c.raw);
    }
    try {
      LoadTekkenTokenizer(path);
      ADD_FAILURE() << c.name << ": loaded without error";
    } catch (const FormatError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << c.name << ": " << message;
      EXPECT_NE(message.find(c.phrase), std::string::npos) << c.name << ": " << message;
    } catch (const std::exception& error) {
      ADD_FAILURE() << c.name << ": wrong exception type: " << error.what();
    }
  }
}

TEST(TekkenSyntheticTest, TrustedPatternThatDoesNotCompileIsFormatError) {
  Json json = SyntheticTekken();
  json["config"]["pattern"] = "(\\p{L}+";
  try {
    ParseTekkenTokenizer(json.dump(), "trusted", TekkenPatternPolicy::kTrustFile);
    FAIL() << "no FormatError";
  } catch (const FormatError& error) {
    EXPECT_NE(std::string(error.what()).find("does not compile"), std::string::npos)
        << error.what();
  }
}

TEST(TekkenSyntheticTest, OnlyTheReleasedPatternIsKnown) {
  EXPECT_TRUE(IsKnownTekkenPattern(kTekkenPattern));
  EXPECT_FALSE(IsKnownTekkenPattern(""));
  EXPECT_FALSE(IsKnownTekkenPattern(std::string(kTekkenPattern).substr(1)));
}

TEST(TekkenSyntheticTest, ImageBlockIsReadOrRefusedByName) {
  TempDir dir;
  Json json = SyntheticTekken();
  json["image"] = {{"image_patch_size", 14}, {"max_image_size", 1540}, {"spatial_merge_size", 2}};
  const auto tokenizer = LoadJson(dir, json);
  ASSERT_TRUE(tokenizer->image_config().has_value());
  EXPECT_EQ(tokenizer->image_config()->patch_size, 14);
  EXPECT_EQ(tokenizer->image_config()->max_image_size, 1540);
  EXPECT_EQ(tokenizer->image_config()->spatial_merge_size, 2);
  json["image"] = {{"image_patch_size", 14}};  // mistral-common's ImageConfig needs max_image_size
  EXPECT_THROW(LoadJson(dir, json), FormatError);
  json["image"] = {{"image_patch_size", 14}, {"max_image_size", 1540}, {"resample", "bicubic"}};
  try {
    LoadJson(dir, json);
    FAIL() << "an unknown image key was accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("resample"), std::string::npos) << e.what();
  }
}

TEST(TekkenSyntheticTest, ValidVariantsLoad) {
  TempDir dir;
  Json json = SyntheticTekken();
  json["multimodal"] = {{"image_patch_size", 16}, {"max_image_size", 1024}};  // allowed up to v11
  EXPECT_NO_THROW(LoadJson(dir, json));
  json = SyntheticTekken();
  json["special_tokens"][3].erase("is_control");  // optional
  EXPECT_NO_THROW(LoadJson(dir, json));
  for (const char* version : {"v1", "v2", "v3", "v7", "v11", "v13", "v15"}) {
    json = SyntheticTekken();
    json["config"]["version"] = version;
    EXPECT_EQ(LoadJson(dir, json)->config_version(), version);
  }
}

TEST(TekkenSyntheticTest, UnreadableFileIsIoError) {
  TempDir dir;
  EXPECT_THROW(LoadTekkenTokenizer(dir.File("missing-tekken.json")), IoError);
  EXPECT_THROW(LoadTekkenTokenizer(dir.path()), IoError);  // a directory
}

}  // namespace
}  // namespace bora::tokenizer
