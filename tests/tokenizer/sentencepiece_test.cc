// Tests the SentencePiece backend against mistral-common/sentencepiece ids and decode rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "testdata.h"
#include "tokenizer/round_trip.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

constexpr char kV1[] = "tokenizer.model.v1";
constexpr char kV2[] = "mistral_instruct_tokenizer_240216.model.v2";
constexpr char kV3[] = "mistral_instruct_tokenizer_240323.model.v3";
constexpr char kV7[] = "mistral_instruct_tokenizer_241114.model.v7";
constexpr char kV7m1[] = "mistral_instruct_tokenizer_241114.model.v7m1";

const std::string kFffd = "\xEF\xBF\xBD";
const std::string kUnkSurface = " \xE2\x81\x87 ";  // " ⁇ "

std::string TokenizerPath(const std::string& shared, const std::string& name) {
  return shared + "/tokenizers/" + name;
}

// Decode with a null-free std::string comparison helper for readable failures.
std::string Dec(const Tokenizer& tokenizer, const Ids& ids,
                SpecialTokenPolicy policy = SpecialTokenPolicy::kIgnore) {
  return tokenizer.Decode(ids, policy);
}

// Id of a byte piece "<0xXX>", found by scanning the pieces (the layout differs per file).
int32_t ByteId(const Tokenizer& tokenizer, uint8_t byte) {
  char piece[8];
  std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IdToPiece(id) == piece) return id;
  }
  ADD_FAILURE() << "no byte piece " << piece;
  return -1;
}

TEST(SentencePieceTokenizerTest, EncodesAndDecodesEveryExampleLine) {
  BORA_REQUIRE_SHARED(shared);
  std::ifstream in(shared + "/tokenizers/examples.jsonl");
  ASSERT_TRUE(in) << "examples.jsonl missing";
  std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json example = nlohmann::json::parse(line);
    const std::string name = example["tokenizer"];
    if (name.find(".model") == std::string::npos) continue;  // Tekken lines
    auto& tokenizer = loaded[name];
    if (!tokenizer) tokenizer = LoadSentencePieceTokenizer(TokenizerPath(shared, name));
    const std::string text = example["text"];
    const Ids expected = example["ids"].get<Ids>();
    EXPECT_EQ(tokenizer->Encode(text), expected) << name << ": " << text;
    EXPECT_EQ(tokenizer->Decode(expected), text) << name << ": " << text;
    ++checked;
  }
  EXPECT_EQ(loaded.size(), 5u);
  EXPECT_EQ(checked, 125);
}

struct TableExample {
  std::string text;
  Ids v1;
  Ids v2;  // also v3 and v7
};

TEST(SentencePieceTokenizerTest, EncodesTheFormatDocumentTable) {
  BORA_REQUIRE_SHARED(shared);
  const std::vector<TableExample> kTable = {
      {"Hello", {22557}, {23325}},
      {"Hello world", {22557, 1526}, {23325, 2294}},
      {"123", {28705, 28740, 28750, 28770}, {29473, 29508, 29518, 29538}},
      {" \n", {259, 13}, {1027, 781}},
      {"  two leading spaces", {259, 989, 5374, 10599}, {1027, 1757, 6142, 11367}},
      {"[INST] not a control token here [/INST]",
       {733, 16289, 28793, 459, 264, 2602, 6029, 1236, 733, 28748, 16289, 28793},
       {1501, 17057, 29561, 1227, 1032, 3370, 6797, 2004, 1501, 29516, 17057, 29561}},
  };
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  for (const TableExample& example : kTable) {
    EXPECT_EQ(v1->Encode(example.text), example.v1) << example.text;
    EXPECT_EQ(v1->Decode(example.v1), example.text);
  }
  for (const char* name : {kV2, kV3, kV7, kV7m1}) {
    const auto tokenizer = LoadSentencePieceTokenizer(TokenizerPath(shared, name));
    for (const TableExample& example : kTable) {
      EXPECT_EQ(tokenizer->Encode(example.text), example.v2) << name << ": " << example.text;
      EXPECT_EQ(tokenizer->Decode(example.v2), example.text) << name;
    }
  }
  EXPECT_TRUE(v1->Encode("").empty());
}

TEST(SentencePieceTokenizerTest, MatchesUserDefinedPiecesOnlyWhereTheFileHasThem) {
  BORA_REQUIRE_SHARED(shared);
  const std::string text = "[REFERENCE_DOC_0] and [REFERENCE_DOC_19]";
  const Ids with_pieces = {29473, 770, 1072, 29473, 751};
  for (const char* name : {kV3, kV7, kV7m1}) {
    const auto tokenizer = LoadSentencePieceTokenizer(TokenizerPath(shared, name));
    EXPECT_EQ(tokenizer->Encode(text), with_pieces) << name;
    EXPECT_EQ(tokenizer->Decode(with_pieces), text) << name;
    EXPECT_EQ(tokenizer->Encode("[REFERENCE_DOC_5]"), (Ids{29473, 765})) << name;
    EXPECT_FALSE(tokenizer->IsSpecial(770));
  }
  // v7 adds [REF] (750) and [/REF] (749), matched inside words too.
  const auto v7 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV7));
  EXPECT_EQ(v7->Encode("[REF][/REF][REFERENCE_DOC_0]"), (Ids{29473, 750, 749, 770}));
  const Ids inside = v7->Encode("x[REF]y");
  EXPECT_NE(std::find(inside.begin(), inside.end(), 750), inside.end());
  EXPECT_EQ(v7->Decode(inside), "x[REF]y");
  EXPECT_EQ(v7->IdToPiece(750), "[REF]");
  // v3 has no [REF]; v2 and v1 have no user-defined pieces at all.
  const auto v3 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV3));
  for (int32_t id : v3->Encode("[REF][/REF]")) EXPECT_GE(id, 771) << "v3 [REF]";
  const auto v2 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV2));
  const Ids v2_ids = v2->Encode(text);
  EXPECT_GT(v2_ids.size(), 10u);
  for (int32_t id : v2_ids) EXPECT_GE(id, 771) << "v2 encodes reference markers as text";
  EXPECT_EQ(v2->Decode(v2_ids), text);
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  EXPECT_EQ(v1->Decode(v1->Encode(text)), text);
}

TEST(SentencePieceTokenizerTest, NeverParsesControlPiecesFromText) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* name : {kV1, kV2, kV3, kV7}) {
    const auto tokenizer = LoadSentencePieceTokenizer(TokenizerPath(shared, name));
    for (const std::string text :
         {"<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<s>[INST] hi [/INST]</s>", "[IMG]",
          "[TOOL_CALLS]", "[SYSTEM_PROMPT]", "[control_8]", "[PREFIX]x[SUFFIX]"}) {
      const Ids ids = tokenizer->Encode(text);
      ASSERT_FALSE(ids.empty()) << name << ": " << text;
      for (int32_t id : ids) {
        EXPECT_FALSE(tokenizer->IsSpecial(id)) << name << ": " << text << " gave " << id;
        EXPECT_NE(id, tokenizer->unk_id()) << name << ": " << text;
      }
      EXPECT_EQ(tokenizer->Decode(ids), text) << name;
    }
  }
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  EXPECT_EQ(v1->Encode("<s>"), (Ids{523, 28713, 28767}));
}

TEST(SentencePieceTokenizerTest, ReportsVocabularyAndSpecialIds) {
  BORA_REQUIRE_SHARED(shared);
  struct Expected {
    const char* name;
    int32_t vocab_size;
    int32_t control_count;
  };
  for (const Expected& file :
       {Expected{kV1, 32000, 2}, Expected{kV2, 32768, 770}, Expected{kV3, 32768, 750},
        Expected{kV7, 32768, 748}, Expected{kV7m1, 32768, 748}}) {
    const auto tokenizer = LoadSentencePieceTokenizer(TokenizerPath(shared, file.name));
    EXPECT_EQ(tokenizer->backend(), Backend::kSentencePiece);
    EXPECT_EQ(tokenizer->vocab_size(), file.vocab_size) << file.name;
    EXPECT_EQ(tokenizer->num_special_tokens(), 0);
    EXPECT_EQ(tokenizer->bos_id(), 1);
    EXPECT_EQ(tokenizer->eos_id(), 2);
    EXPECT_EQ(tokenizer->unk_id(), 0);
    EXPECT_EQ(tokenizer->pad_id(), -1);
    EXPECT_TRUE(tokenizer->StripsLeadingSpace());
    // Control pieces are exactly 1..count (§2.2); <unk> is not special.
    int32_t controls = 0;
    for (int32_t id = 0; id < tokenizer->vocab_size(); ++id) {
      if (tokenizer->IsSpecial(id)) {
        ++controls;
        EXPECT_TRUE(id >= 1 && id <= file.control_count) << file.name << " id " << id;
        EXPECT_TRUE(tokenizer->TokenBytes(id).empty());
      }
    }
    EXPECT_EQ(controls, file.control_count) << file.name;
    EXPECT_EQ(tokenizer->FindSpecial("<s>"), 1);
    EXPECT_EQ(tokenizer->FindSpecial("</s>"), 2);
    EXPECT_EQ(tokenizer->FindSpecial("<unk>"), std::nullopt) << "<unk> is not a control piece";
    EXPECT_EQ(tokenizer->FindSpecial("[NOT_A_PIECE]"), std::nullopt);
    EXPECT_EQ(tokenizer->FindSpecial(""), std::nullopt);
    EXPECT_EQ(tokenizer->FindSpecial("\xE2\x96\x81Hello"), std::nullopt) << "a normal piece";
    EXPECT_EQ(tokenizer->FindSpecial("<0x0A>"), std::nullopt) << "a byte piece";
  }
}

using SpecialTable = std::vector<std::pair<std::string, std::optional<int32_t>>>;

void ExpectSpecials(const Tokenizer& tokenizer, const SpecialTable& table, const char* name) {
  for (const auto& [piece, id] : table) {
    EXPECT_EQ(tokenizer.FindSpecial(piece), id) << name << ": " << piece;
    if (id) {
      EXPECT_EQ(tokenizer.IdToPiece(*id), piece) << name;
    }
  }
}

TEST(SentencePieceTokenizerTest, FindsTheControlPiecesOfEachFile) {
  BORA_REQUIRE_SHARED(shared);
  const SpecialTable v1 = {
      {"[INST]", std::nullopt}, {"[/INST]", std::nullopt}, {"[TOOL_CALLS]", std::nullopt}};
  const SpecialTable common = {{"[INST]", 3},
                               {"[/INST]", 4},
                               {"[TOOL_CALLS]", 5},
                               {"[AVAILABLE_TOOLS]", 6},
                               {"[/AVAILABLE_TOOLS]", 7},
                               {"[TOOL_RESULTS]", 8},
                               {"[/TOOL_RESULTS]", 9}};
  SpecialTable v2 = common;
  v2.insert(v2.end(), {{"[control_8]", 10},
                       {"[control_11]", 13},
                       {"[control_768]", 770},
                       {"[IMG]", std::nullopt},
                       {"[PREFIX]", std::nullopt},
                       {"[SUFFIX]", std::nullopt},
                       {"[REFERENCE_DOC_0]", std::nullopt}});
  SpecialTable v3 = common;
  v3.insert(v3.end(), {{"[IMG]", 10},
                       {"[PREFIX]", 11},
                       {"[MIDDLE]", 12},
                       {"[SUFFIX]", 13},
                       {"[control_12]", 14},
                       {"[control_748]", 750},
                       {"[control_8]", std::nullopt},
                       {"[IMG_BREAK]", std::nullopt},
                       {"[REFERENCE_DOC_0]", std::nullopt},
                       {"[REFERENCE_DOC_19]", std::nullopt}});
  SpecialTable v7 = common;
  v7.insert(v7.end(), {{"[IMG]", 10},
                       {"[PREFIX]", 11},
                       {"[MIDDLE]", 12},
                       {"[SUFFIX]", 13},
                       {"[IMG_BREAK]", 14},
                       {"[IMG_END]", 15},
                       {"[SYSTEM_PROMPT]", 16},
                       {"[/SYSTEM_PROMPT]", 17},
                       {"[TOOL_CONTENT]", 18},
                       {"[control_17]", 19},
                       {"[control_746]", 748},
                       {"[control_12]", std::nullopt},
                       {"[REF]", std::nullopt},
                       {"[/REF]", std::nullopt},
                       {"[REFERENCE_DOC_0]", std::nullopt}});
  ExpectSpecials(*LoadSentencePieceTokenizer(TokenizerPath(shared, kV1)), v1, kV1);
  ExpectSpecials(*LoadSentencePieceTokenizer(TokenizerPath(shared, kV2)), v2, kV2);
  ExpectSpecials(*LoadSentencePieceTokenizer(TokenizerPath(shared, kV3)), v3, kV3);
  ExpectSpecials(*LoadSentencePieceTokenizer(TokenizerPath(shared, kV7)), v7, kV7);
  ExpectSpecials(*LoadSentencePieceTokenizer(TokenizerPath(shared, kV7m1)), v7, kV7m1);
}

TEST(SentencePieceTokenizerTest, ExposesPiecesAndTokenBytes) {
  BORA_REQUIRE_SHARED(shared);
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  EXPECT_EQ(v1->IdToPiece(22557), "\xE2\x96\x81Hello");
  EXPECT_EQ(v1->IdToPiece(13), "<0x0A>");
  EXPECT_EQ(v1->IdToPiece(0), "<unk>");
  EXPECT_EQ(v1->IdToPiece(1), "<s>");
  EXPECT_EQ(v1->TokenBytes(22557), " Hello");
  EXPECT_EQ(v1->TokenBytes(259), "  ");  // "▁▁"
  EXPECT_EQ(v1->TokenBytes(13), "\n");
  EXPECT_EQ(v1->TokenBytes(3), std::string(1, '\0'));
  EXPECT_EQ(v1->TokenBytes(258), "\xFF");
  EXPECT_EQ(v1->TokenBytes(0), kUnkSurface);
  EXPECT_EQ(v1->TokenBytes(1), "");
  EXPECT_EQ(v1->TokenBytes(16230), "Hello");
  const auto v7 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV7));
  EXPECT_EQ(v7->IdToPiece(3), "[INST]");
  EXPECT_EQ(v7->TokenBytes(3), "");
  EXPECT_EQ(v7->TokenBytes(750), "[REF]");
  EXPECT_EQ(v7->TokenBytes(781), "\n");
  EXPECT_EQ(v7->TokenBytes(23325), " Hello");
}

TEST(SentencePieceTokenizerTest, DecodesLikeTheLibrary) {
  BORA_REQUIRE_SHARED(shared);
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  const Tokenizer& t = *v1;
  const int32_t hello = 22557;  // "▁Hello"
  const int32_t space = 28705;  // "▁"
  const int32_t bare = 16230;   // "Hello"
  const int32_t b20 = ByteId(t, 0x20);
  const int32_t e2 = ByteId(t, 0xE2), x96 = ByteId(t, 0x96), x81 = ByteId(t, 0x81);
  // The dummy-prefix space is dropped from the first non-control piece only.
  EXPECT_EQ(Dec(t, {hello}), "Hello");
  EXPECT_EQ(Dec(t, {1, hello}), "Hello");
  EXPECT_EQ(Dec(t, {1, 2, hello, hello}), "Hello Hello");
  EXPECT_EQ(Dec(t, {space, hello}), " Hello");
  EXPECT_EQ(Dec(t, {space, 1, hello}), " Hello");
  EXPECT_EQ(Dec(t, {space, space}), " ");
  EXPECT_EQ(Dec(t, {space}), "");
  EXPECT_EQ(Dec(t, {259, hello}), "  Hello");
  EXPECT_EQ(Dec(t, {bare, hello}), "Hello Hello");
  // Byte pieces and <unk> keep their leading space and end the leading-space window.
  EXPECT_EQ(Dec(t, {b20, hello}), "  Hello");
  EXPECT_EQ(Dec(t, {1, b20, hello}), "  Hello");
  EXPECT_EQ(Dec(t, {0, hello}), kUnkSurface + " Hello");
  EXPECT_EQ(Dec(t, {0}), kUnkSurface);
  EXPECT_EQ(Dec(t, {0, 0}), kUnkSurface + kUnkSurface);
  EXPECT_EQ(Dec(t, {hello, 0, hello}), "Hello" + kUnkSurface + " Hello");
  EXPECT_EQ(Dec(t, {}), "");
  EXPECT_EQ(Dec(t, {1, 2}), "");
  // Byte runs are assembled; U+2581 from bytes stays U+2581; every byte of an invalid or
  // truncated sequence becomes its own U+FFFD; a control piece ends a run.
  EXPECT_EQ(Dec(t, {e2, x96, x81}), "\xE2\x96\x81");
  EXPECT_EQ(Dec(t, {e2, x96, x81, hello}), "\xE2\x96\x81 Hello");
  EXPECT_EQ(Dec(t, {e2, x96}), kFffd + kFffd);
  EXPECT_EQ(Dec(t, {e2, x96, hello}), kFffd + kFffd + " Hello");
  EXPECT_EQ(Dec(t, {e2, 1, x96, x81}), kFffd + kFffd + kFffd);
  EXPECT_EQ(Dec(t, {e2, x96, 0}), kFffd + kFffd + kUnkSurface);
  EXPECT_EQ(Dec(t, {ByteId(t, 0xC0), ByteId(t, 0x80)}), kFffd + kFffd);
  EXPECT_EQ(Dec(t, {ByteId(t, 0xED), ByteId(t, 0xA0), ByteId(t, 0x80)}), kFffd + kFffd + kFffd);
  EXPECT_EQ(Dec(t, {ByteId(t, 0xF0), ByteId(t, 0x9F), ByteId(t, 0x98)}), kFffd + kFffd + kFffd);
  EXPECT_EQ(Dec(t, {ByteId(t, 0xF0), ByteId(t, 0x9F), ByteId(t, 0x98), ByteId(t, 0x80)}),
            "\xF0\x9F\x98\x80");
  EXPECT_EQ(Dec(t, {ByteId(t, 0xFF)}), kFffd);
  EXPECT_EQ(Dec(t, {ByteId(t, 0x00)}), std::string(1, '\0'));
}

TEST(SentencePieceTokenizerTest, KeepAndRaisePoliciesFollowMistralCommon) {
  BORA_REQUIRE_SHARED(shared);
  const auto v2 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV2));
  const Ids ids = {1, 3, 23325, 781, 4, 0, 2};
  // KEEP: every id as its piece text, control or not (mistral-common's newest
  // _decode_with_special_tokens).
  EXPECT_EQ(v2->Decode(ids, SpecialTokenPolicy::kKeep),
            "<s>[INST]\xE2\x96\x81Hello<0x0A>[/INST]<unk></s>");
  EXPECT_EQ(v2->Decode(ids, SpecialTokenPolicy::kIgnore), "Hello\n" + kUnkSurface);
  EXPECT_THROW(v2->Decode(ids, SpecialTokenPolicy::kRaise), InvalidArgument);
  EXPECT_THROW(v2->Decode(Ids{23325, 2}, SpecialTokenPolicy::kRaise), InvalidArgument);
  // RAISE without control ids decodes like IGNORE; <unk> is not special.
  EXPECT_EQ(v2->Decode(Ids{23325, 781, 0}, SpecialTokenPolicy::kRaise), "Hello\n" + kUnkSurface);
  EXPECT_EQ(v2->Decode(Ids{}, SpecialTokenPolicy::kKeep), "");
}

TEST(SentencePieceTokenizerTest, RejectsOutOfRangeIds) {
  BORA_REQUIRE_SHARED(shared);
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  for (int32_t bad : {-1, 32000, 32768, INT32_MAX, INT32_MIN}) {
    for (SpecialTokenPolicy policy :
         {SpecialTokenPolicy::kIgnore, SpecialTokenPolicy::kKeep, SpecialTokenPolicy::kRaise}) {
      EXPECT_THROW(v1->Decode(Ids{22557, bad}, policy), InvalidArgument) << bad;
    }
    EXPECT_THROW(v1->IdToPiece(bad), InvalidArgument);
    EXPECT_THROW(v1->IsSpecial(bad), InvalidArgument);
    EXPECT_THROW(v1->TokenBytes(bad), InvalidArgument);
  }
  EXPECT_NO_THROW(v1->Decode(Ids{31999}));
}

TEST(SentencePieceTokenizerTest, EncodesInvalidUtf8AsReplacementCharacters) {
  BORA_REQUIRE_SHARED(shared);
  const auto v1 = LoadSentencePieceTokenizer(TokenizerPath(shared, kV1));
  // U+FFFD is piece 29137 in v1; each malformed byte becomes one of them.
  EXPECT_EQ(v1->Encode("a\xFF"
                       "b"),
            (Ids{264, 29137, 28726}));
  EXPECT_EQ(v1->Encode("\xE2\x96"), (Ids{28705, 29137, 29137}));
  EXPECT_EQ(v1->Encode("\xEF\xBF\xBD"), (Ids{28705, 29137}));
  EXPECT_EQ(v1->Encode(std::string("a\0b", 3)), (Ids{264, 3, 28726}));
  for (const std::string& text :
       {std::string("a\xFF"
                    "b"),
        std::string("\xE2\x96"), std::string("\xC0\x80"), std::string("\xED\xA0\x80"),
        std::string("\xF4\x90\x80\x80"), std::string("\x80"), std::string("\xF0\x9F\x98"),
        std::string("x\xE2\x96\x81y")}) {
    EXPECT_EQ(v1->Decode(v1->Encode(text)), SentencePieceRoundTrip(text));
  }
  // Random bytes: never throws, never aborts, ids in range, decode gives the repaired text.
  std::mt19937 random(1234);
  for (int round = 0; round < 20; ++round) {
    std::string bytes(1 + random() % 3000, '\0');
    for (char& byte : bytes) byte = static_cast<char>(random() % 256);
    const Ids ids = v1->Encode(bytes);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < v1->vocab_size());
    EXPECT_EQ(v1->Decode(ids), SentencePieceRoundTrip(bytes)) << "round " << round;
  }
}

TEST(SentencePieceTokenizerTest, LoadErrorsAreTyped) {
  BORA_REQUIRE_SHARED(shared);
  testing::TempDir dir;
  const std::string missing = dir.File("missing.model.v3");
  try {
    LoadSentencePieceTokenizer(missing);
    FAIL() << "loaded a missing file";
  } catch (const IoError& error) {
    EXPECT_NE(std::string(error.what()).find(missing), std::string::npos) << error.what();
  }
  EXPECT_THROW(LoadSentencePieceTokenizer(dir.path()), IoError);

  std::ifstream in(TokenizerPath(shared, kV3), std::ios::binary);
  const std::string model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(model.size(), 100000u);
  const std::vector<std::pair<std::string, std::string>> kBad = {
      {"empty.model", ""},
      {"text.model", "{\"config\": {\"version\": \"v3\"}}\n"},
      {"random.model", std::string("\x12\x34\xff\xfe\x00\x01 garbage \x8f", 16)},
      {"truncated.model", model.substr(0, model.size() / 2)},
      {"short.model", model.substr(0, 100)},
  };
  for (const auto& [name, bytes] : kBad) {
    const std::string path = dir.File(name);
    testing::WriteFile(path, bytes);
    try {
      LoadSentencePieceTokenizer(path);
      ADD_FAILURE() << name << " loaded";
    } catch (const FormatError& error) {
      EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
    }
  }
  // A byte-identical copy under another name loads and behaves the same.
  const std::string copy = dir.File("copy.model");
  testing::WriteFile(copy, model);
  EXPECT_EQ(LoadSentencePieceTokenizer(copy)->Encode("Hello world"), (Ids{23325, 2294}));
}

TEST(SentencePieceTokenizerTest, SurvivesCorruptedModels) {
  BORA_REQUIRE_SHARED(shared);
  std::ifstream in(TokenizerPath(shared, kV1), std::ios::binary);
  const std::string model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  testing::TempDir dir;
  std::mt19937 random(99);
  // Flipped bytes must either load (and then work) or throw a bora error; never crash.
  for (int round = 0; round < 30; ++round) {
    std::string corrupted = model;
    for (int flips = 0; flips < 4; ++flips) {
      corrupted[random() % corrupted.size()] = static_cast<char>(random() % 256);
    }
    const std::string path = dir.File("corrupt" + std::to_string(round) + ".model");
    testing::WriteFile(path, corrupted);
    try {
      const auto tokenizer = LoadSentencePieceTokenizer(path);
      const Ids ids = tokenizer->Encode("Hello world, 123 \xF0\x9F\x9A\x80");
      EXPECT_NO_THROW(tokenizer->Decode(ids));
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace bora::tokenizer
