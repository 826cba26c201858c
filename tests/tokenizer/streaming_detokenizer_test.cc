// Tests that streamed chunks are valid UTF-8 and add up to Decode, for both tokenizer backends.
#include "tokenizer/streaming_detokenizer.h"

#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "testdata.h"
#include "tokenizer/round_trip.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tekken_tokenizer.h"
#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

const std::string kFffd = "\xEF\xBF\xBD";
constexpr SpecialTokenPolicy kPolicies[] = {SpecialTokenPolicy::kIgnore, SpecialTokenPolicy::kKeep,
                                            SpecialTokenPolicy::kRaise};

const char* PolicyName(SpecialTokenPolicy policy) {
  switch (policy) {
    case SpecialTokenPolicy::kIgnore:
      return "IGNORE";
    case SpecialTokenPolicy::kKeep:
      return "KEEP";
    case SpecialTokenPolicy::kRaise:
      return "RAISE";
  }
  return "?";
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

std::string IdsText(const Ids& ids) {
  std::string out;
  for (int32_t id : ids) out += std::to_string(id) + ",";
  return out;
}

// A loaded tokenizer plus the ids the random generator draws from.
struct Subject {
  std::string name;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<int32_t> byte_ids;  // byte_ids[b]: the id whose bytes are the single byte b
  std::vector<int32_t> special_ids;
};

// Byte-valued ids: SentencePiece byte pieces "<0xXX>", Tekken ranks 0..255; empty when the
// model has no byte fallback.
std::vector<int32_t> FindByteIds(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids(256, -1);
  if (tokenizer.backend() == Backend::kTekken) {
    for (int byte = 0; byte < 256; ++byte) ids[byte] = tokenizer.num_special_tokens() + byte;
  } else {
    for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
      const std::string piece = tokenizer.IdToPiece(id);
      if (piece.size() == 6 && piece.starts_with("<0x") && piece.ends_with(">")) {
        ids[std::stoi(piece.substr(3, 2), nullptr, 16)] = id;
      }
    }
  }
  if (std::find(ids.begin(), ids.end(), -1) != ids.end()) return {};
  return ids;
}

Subject MakeSubject(std::string name, std::unique_ptr<Tokenizer> tokenizer) {
  Subject subject{std::move(name), std::move(tokenizer), {}, {}};
  subject.byte_ids = FindByteIds(*subject.tokenizer);
  for (int32_t id = 0; id < subject.tokenizer->vocab_size(); ++id) {
    if (subject.tokenizer->IsSpecial(id)) subject.special_ids.push_back(id);
  }
  return subject;
}

// The five SentencePiece files and the Tekken file, loaded once for the whole suite.
class StreamingDetokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string shared = testing::SharedDir();
    if (shared.empty()) return;
    subjects_ = new std::vector<Subject>;
    for (const char* name : {"tokenizer.model.v1", "mistral_instruct_tokenizer_240216.model.v2",
                             "mistral_instruct_tokenizer_240323.model.v3",
                             "mistral_instruct_tokenizer_241114.model.v7",
                             "mistral_instruct_tokenizer_241114.model.v7m1"}) {
      subjects_->push_back(
          MakeSubject(name, LoadSentencePieceTokenizer(shared + "/tokenizers/" + name)));
    }
    subjects_->push_back(MakeSubject(
        "tekken", LoadTekkenTokenizer(shared + "/tokenizers/tekken_240718-reconstructed.json")));
  }
  static void TearDownTestSuite() {
    delete subjects_;
    subjects_ = nullptr;
  }

  static const Subject& Find(std::string_view prefix) {
    for (const Subject& subject : *subjects_) {
      if (subject.name.starts_with(prefix)) return subject;
    }
    throw std::runtime_error("no subject " + std::string(prefix));
  }

  static std::vector<Subject>* subjects_;
};

std::vector<Subject>* StreamingDetokenizerTest::subjects_ = nullptr;

// Pushes `ids` one at a time and finishes; returns the chunks (the last one from Finish).
std::vector<std::string> StreamChunks(const Tokenizer& tokenizer, const Ids& ids,
                                      SpecialTokenPolicy policy) {
  StreamingDetokenizer detokenizer(tokenizer, policy);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(detokenizer.Push(id));
  chunks.push_back(detokenizer.Finish());
  return chunks;
}

std::string Join(const std::vector<std::string>& chunks) {
  std::string out;
  for (const std::string& chunk : chunks) out += chunk;
  return out;
}

// The invariant: concat(Push...) + Finish() == Decode, every chunk valid UTF-8; under kRaise a
// sequence with a special id makes Decode throw and the stream throw at that id.
void ExpectStreamEqualsDecode(const Subject& subject, const Ids& ids, SpecialTokenPolicy policy,
                              const std::string& context) {
  const Tokenizer& tokenizer = *subject.tokenizer;
  SCOPED_TRACE(subject.name + " " + PolicyName(policy) + " " + context + " ids=" + IdsText(ids));
  const auto first_special =
      std::find_if(ids.begin(), ids.end(), [&](int32_t id) { return tokenizer.IsSpecial(id); });
  if (policy == SpecialTokenPolicy::kRaise && first_special != ids.end()) {
    EXPECT_THROW(tokenizer.Decode(ids, policy), InvalidArgument);
    StreamingDetokenizer detokenizer(tokenizer, policy);
    for (auto it = ids.begin(); it != first_special; ++it) {
      EXPECT_TRUE(IsValidUtf8(detokenizer.Push(*it)));
    }
    EXPECT_THROW(detokenizer.Push(*first_special), InvalidArgument);
    return;
  }
  const std::string decoded = tokenizer.Decode(ids, policy);
  EXPECT_TRUE(IsValidUtf8(decoded));
  const std::vector<std::string> chunks = StreamChunks(tokenizer, ids, policy);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_TRUE(IsValidUtf8(chunks[i])) << "chunk " << i;
  }
  EXPECT_EQ(Join(chunks), decoded);
}

// Text exercising CJK, ZWJ emoji, flags, combining marks, NUL, a literal U+FFFD, malformed
// bytes, U+2581, control-token names, other whitespace and a run of 10 000 spaces.
std::string TortureText() {
  std::string text = "Hello, world! 这是一个测试。日本語のテキスト、한국어 텍스트. ";
  text += "👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇫🇷🇯🇵 ❤️ ";
  text += "e\u0301 a\u0308\u0323 Z\u0334\u0327\u031b\u0353a\u0337l\u0336g\u0335o\u0338 ";
  text += std::string("nul:\0:end ", 10);
  text += "\xEF\xBF\xBD literal replacement, ";
  text +=
      "invalid: \xFF \xC0\x80 \xED\xA0\x80 \xF0\x9F\x98 \xE2\x96 \x80\x80 \xF4\x90\x80\x80 \xFE";
  text +=
      "\xE2\x82"
      "A";
  text += " \xE2\x96\x81 lower block \xE2\x96\x81\xE2\x96\x81, ";
  text += "<s>[INST] [/INST]</s> [REF] [/REF] [REFERENCE_DOC_3] [IMG] <unk> ";
  text += "tabs\t\tand\r\nnewlines\n\n\u00A0nbsp\u3000ideographic ";
  text += std::string(10000, ' ');
  text += "עברית العربية हिन्दी ";
  text += "\u200B\u200D\uFEFF zero-width \U0001F600\U0010FFFF end.";
  return text;
}

// decode(encode(text)) per backend: sentencepiece repairs each malformed byte to U+FFFD and
// reads U+2581 back as a space; Tekken repairs each maximal invalid subsequence (as Python's
// errors="replace") and is otherwise lossless.
std::string ExpectedRoundTrip(const Tokenizer& tokenizer, std::string_view text) {
  if (tokenizer.backend() == Backend::kTekken) return ReplaceInvalidUtf8(text);
  return SentencePieceRoundTrip(text);
}

TEST_F(StreamingDetokenizerTest, TortureTextRoundTripsAndStreams) {
  BORA_REQUIRE_SHARED(shared);
  const std::string text = TortureText();
  ASSERT_FALSE(IsValidUtf8(text));
  for (const Subject& subject : *subjects_) {
    const Tokenizer& tokenizer = *subject.tokenizer;
    const Ids ids = tokenizer.Encode(text);
    ASSERT_FALSE(ids.empty());
    for (int32_t id : ids) ASSERT_FALSE(tokenizer.IsSpecial(id)) << subject.name;
    const std::string expected = ExpectedRoundTrip(tokenizer, text);
    EXPECT_EQ(tokenizer.Decode(ids), expected) << subject.name;
    for (SpecialTokenPolicy policy : kPolicies) {
      ExpectStreamEqualsDecode(subject, ids, policy, "torture");
    }
    // The valid parts alone round-trip exactly, apart from U+2581 in SentencePiece.
    const std::string valid = ReplaceInvalidUtf8(text);
    EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(valid)), ExpectedRoundTrip(tokenizer, valid));
  }
}

TEST_F(StreamingDetokenizerTest, ExampleLinesStreamLikeDecode) {
  BORA_REQUIRE_SHARED(shared);
  const std::vector<std::string> texts = {" \n",
                                          "\t\n",
                                          "Hello world",
                                          "Je suis très content de vous voir.",
                                          "这是一个测试。",
                                          "Emoji: 🚀🌍",
                                          "x = [1, 2, 3]\nprint(sum(x))",
                                          "  two leading spaces",
                                          "SYSTEM\n\nc"};
  for (const Subject& subject : *subjects_) {
    for (const std::string& text : texts) {
      const Ids ids = subject.tokenizer->Encode(text);
      EXPECT_EQ(Join(StreamChunks(*subject.tokenizer, ids, SpecialTokenPolicy::kIgnore)), text)
          << subject.name;
      Ids chat = {subject.tokenizer->bos_id()};
      chat.insert(chat.end(), ids.begin(), ids.end());
      chat.push_back(subject.tokenizer->eos_id());
      for (SpecialTokenPolicy policy : kPolicies) {
        ExpectStreamEqualsDecode(subject, chat, policy, text);
      }
    }
  }
}

// Appends the byte ids of a random code point's UTF-8, sometimes cut short.
void AppendRandomCharacterBytes(const Subject& subject, std::mt19937& random, Ids& ids) {
  static constexpr uint32_t kRanges[][2] = {
      {0x20, 0x7F}, {0x80, 0x800}, {0x800, 0xD800}, {0xE000, 0x10000}, {0x10000, 0x110000}};
  const auto& range = kRanges[random() % 5];
  std::string bytes;
  AppendUtf8(range[0] + random() % (range[1] - range[0]), bytes);
  if (bytes.size() > 1 && random() % 3 == 0) bytes.resize(1 + random() % (bytes.size() - 1));
  for (char byte : bytes) ids.push_back(subject.byte_ids[static_cast<uint8_t>(byte)]);
}

Ids RandomIds(const Subject& subject, std::mt19937& random) {
  const Tokenizer& tokenizer = *subject.tokenizer;
  static const std::vector<std::string> kWords = {"Hello", " world", "\n",     "日本", "🚀",
                                                  "  ",    "é",      "[INST]", "x"};
  Ids ids;
  const size_t length = random() % 24;
  while (ids.size() < length) {
    switch (random() % 9) {
      case 0:
        ids.push_back(static_cast<int32_t>(random() % tokenizer.vocab_size()));
        break;
      case 1:
        if (!subject.special_ids.empty()) {
          ids.push_back(subject.special_ids[random() % subject.special_ids.size()]);
        }
        break;
      case 2:
        ids.push_back(tokenizer.unk_id());
        break;
      case 3:
      case 4:
        if (!subject.byte_ids.empty()) AppendRandomCharacterBytes(subject, random, ids);
        break;
      case 5:
        if (!subject.byte_ids.empty()) ids.push_back(subject.byte_ids[random() % 256]);
        break;
      case 6: {
        const int32_t id = static_cast<int32_t>(random() % tokenizer.vocab_size());
        if (!tokenizer.IsSpecial(id)) ids.push_back(id);
        break;
      }
      default: {
        const Ids word = tokenizer.Encode(kWords[random() % kWords.size()]);
        ids.insert(ids.end(), word.begin(), word.end());
      }
    }
  }
  return ids;
}

TEST_F(StreamingDetokenizerTest, RandomSequencesStreamLikeDecode) {
  BORA_REQUIRE_SHARED(shared);
  for (const Subject& subject : *subjects_) {
    ASSERT_EQ(subject.byte_ids.size(), 256u) << subject.name;
    for (int byte = 0; byte < 256; ++byte) {
      ASSERT_EQ(subject.tokenizer->TokenBytes(subject.byte_ids[byte]),
                std::string(1, static_cast<char>(byte)))
          << subject.name;
    }
    ASSERT_FALSE(subject.special_ids.empty());
    for (uint32_t seed = 0; seed < 400; ++seed) {
      std::mt19937 random(seed);
      const Ids ids = RandomIds(subject, random);
      for (SpecialTokenPolicy policy : kPolicies) {
        ExpectStreamEqualsDecode(subject, ids, policy, "seed " + std::to_string(seed));
      }
      if (HasFailure()) return;
    }
  }
}

TEST_F(StreamingDetokenizerTest, HoldsBackSplitCharacters) {
  BORA_REQUIRE_SHARED(shared);
  for (const Subject& subject : *subjects_) {
    const auto& b = subject.byte_ids;
    SCOPED_TRACE(subject.name);
    // "€" = E2 82 AC and "😀" = F0 9F 98 80, one byte per id.
    EXPECT_EQ(
        StreamChunks(*subject.tokenizer, {b[0xE2], b[0x82], b[0xAC]}, SpecialTokenPolicy::kIgnore),
        (std::vector<std::string>{"", "", "\xE2\x82\xAC", ""}));
    EXPECT_EQ(StreamChunks(*subject.tokenizer, {b[0xF0], b[0x9F], b[0x98], b[0x80], b['!']},
                           SpecialTokenPolicy::kIgnore),
              (std::vector<std::string>{"", "", "", "\xF0\x9F\x98\x80", "!", ""}));
    // Bytes that can no longer complete are replaced when that becomes certain.
    const bool per_byte = subject.tokenizer->backend() == Backend::kSentencePiece;
    const std::string two = per_byte ? kFffd + kFffd : kFffd;
    EXPECT_EQ(StreamChunks(*subject.tokenizer, {b[0xE2], b[0x82]}, SpecialTokenPolicy::kIgnore),
              (std::vector<std::string>{"", "", two}));
    EXPECT_EQ(
        StreamChunks(*subject.tokenizer, {b[0xE2], b[0x82], b['A']}, SpecialTokenPolicy::kIgnore),
        (std::vector<std::string>{"", "", two + "A", ""}));
    EXPECT_EQ(StreamChunks(*subject.tokenizer, {b[0xFF], b[0xE2], b[0xE2], b[0x82], b[0xAC]},
                           SpecialTokenPolicy::kIgnore),
              (std::vector<std::string>{kFffd, "", kFffd, "", "\xE2\x82\xAC", ""}));
    // A special id ends the byte run, even when it is ignored.
    const int32_t bos = subject.tokenizer->bos_id();
    const std::vector<std::string> split = StreamChunks(
        *subject.tokenizer, {b[0xE2], bos, b[0x82], b[0xAC]}, SpecialTokenPolicy::kIgnore);
    EXPECT_EQ(split[1], kFffd);
    EXPECT_EQ(Join(split), subject.tokenizer->Decode(Ids{b[0xE2], bos, b[0x82], b[0xAC]}));
  }
}

TEST_F(StreamingDetokenizerTest, SentencePieceLeadingSpaceAndPolicies) {
  BORA_REQUIRE_SHARED(shared);
  const Subject& v1 = Find("tokenizer.model.v1");
  const Tokenizer& t = *v1.tokenizer;
  const int32_t hello = 22557;  // "▁Hello"
  using Chunks = std::vector<std::string>;
  EXPECT_EQ(StreamChunks(t, {1, hello, hello, 2}, SpecialTokenPolicy::kIgnore),
            (Chunks{"", "Hello", " Hello", "", ""}));
  EXPECT_EQ(StreamChunks(t, {28705, hello}, SpecialTokenPolicy::kIgnore),
            (Chunks{"", " Hello", ""}));
  EXPECT_EQ(StreamChunks(t, {v1.byte_ids[' '], hello}, SpecialTokenPolicy::kIgnore),
            (Chunks{" ", " Hello", ""}));
  EXPECT_EQ(StreamChunks(t, {0, hello}, SpecialTokenPolicy::kIgnore),
            (Chunks{" \xE2\x81\x87 ", " Hello", ""}));
  EXPECT_EQ(StreamChunks(t, {1, hello, 13, 2}, SpecialTokenPolicy::kKeep),
            (Chunks{"<s>", "\xE2\x96\x81Hello", "<0x0A>", "</s>", ""}));

  // Finish ends the sequence: the next one strips its dummy prefix again.
  StreamingDetokenizer detokenizer(t);
  EXPECT_EQ(detokenizer.Push(hello), "Hello");
  EXPECT_EQ(detokenizer.Push(v1.byte_ids[0xE2]), "");
  EXPECT_EQ(detokenizer.Finish(), kFffd);
  EXPECT_EQ(detokenizer.Push(hello), "Hello");
  EXPECT_EQ(detokenizer.Push(v1.byte_ids[0xE2]), "");
  detokenizer.Reset();  // drops the held byte
  EXPECT_EQ(detokenizer.Push(hello), "Hello");
  EXPECT_EQ(detokenizer.Finish(), "");
}

TEST_F(StreamingDetokenizerTest, RaiseAndBadIdsLeaveTheStateUnchanged) {
  BORA_REQUIRE_SHARED(shared);
  for (const Subject& subject : *subjects_) {
    SCOPED_TRACE(subject.name);
    const auto& b = subject.byte_ids;
    StreamingDetokenizer detokenizer(*subject.tokenizer, SpecialTokenPolicy::kRaise);
    EXPECT_EQ(detokenizer.Push(b[0xE2]), "");
    EXPECT_THROW(detokenizer.Push(subject.tokenizer->bos_id()), InvalidArgument);
    EXPECT_THROW(detokenizer.Push(-1), InvalidArgument);
    EXPECT_THROW(detokenizer.Push(subject.tokenizer->vocab_size()), InvalidArgument);
    EXPECT_EQ(detokenizer.Push(b[0x82]), "");
    EXPECT_EQ(detokenizer.Push(b[0xAC]), "\xE2\x82\xAC");
    EXPECT_EQ(detokenizer.Finish(), "");
  }
  const Subject& tekken = Find("tekken");
  EXPECT_EQ(StreamChunks(*tekken.tokenizer, {1, 3}, SpecialTokenPolicy::kKeep),
            (std::vector<std::string>{"<s>", "[INST]", ""}));
}

// Trains a small SentencePiece model on a fixed corpus in `dir`; returns the model path.
std::string TrainModel(const testing::TempDir& dir, const std::string& name,
                       const std::string& options) {
  const std::string corpus = dir.File("corpus.txt");
  if (!std::filesystem::exists(corpus)) {
    const std::vector<std::string> words = {"hello", "world", "abc",  "test",  "tokenizer", "Alpha",
                                            "Beta",  "héllo", "日本", "naïve", "x=1;"};
    std::mt19937 random(7);
    std::string text;
    for (int line = 0; line < 200; ++line) {
      for (int word = 0; word < 8; ++word) text += words[random() % words.size()] + " ";
      text += "\n";
    }
    testing::WriteFile(corpus, text);
  }
  const std::string prefix = dir.File(name);
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + corpus + " --model_prefix=" + prefix + " --minloglevel=2 " + options);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return prefix + ".model";
}

// Models unlike Mistral's (no dummy prefix, no byte fallback, unigram, other user-defined and
// control pieces) stream exactly; settings whose decoding cannot be streamed are rejected.
TEST_F(StreamingDetokenizerTest, OtherSentencePieceModelsStreamOrAreRejected) {
  testing::TempDir dir;
  const std::string kKeepSpaces = " --remove_extra_whitespaces=false";
  std::vector<Subject> trained;
  trained.push_back(
      MakeSubject("no-dummy-prefix",
                  LoadSentencePieceTokenizer(TrainModel(
                      dir, "plain",
                      "--model_type=bpe --vocab_size=80 --add_dummy_prefix=false" + kKeepSpaces))));
  trained.push_back(
      MakeSubject("bpe-bytes", LoadSentencePieceTokenizer(TrainModel(
                                   dir, "bytes",
                                   "--model_type=bpe --vocab_size=320 --byte_fallback=true "
                                   "--user_defined_symbols=[X] --control_symbols=[C]" +
                                       kKeepSpaces))));
  trained.push_back(MakeSubject(
      "unigram-bytes",
      LoadSentencePieceTokenizer(
          TrainModel(dir, "unigram",
                     "--model_type=unigram --vocab_size=290 --byte_fallback=true" + kKeepSpaces))));
  const Tokenizer& plain = *trained[0].tokenizer;
  EXPECT_FALSE(plain.StripsLeadingSpace());
  EXPECT_TRUE(trained[1].tokenizer->StripsLeadingSpace());
  EXPECT_EQ(plain.Decode(plain.Encode(" hello  world")), " hello  world");
  // Without byte fallback an unseen character encodes as <unk>, which decodes as " ⁇ ".
  const Ids with_unk = plain.Encode("hello \u2603");
  EXPECT_NE(std::find(with_unk.begin(), with_unk.end(), plain.unk_id()), with_unk.end());
  EXPECT_EQ(plain.Decode(with_unk), "hello  \xE2\x81\x87 ");
  EXPECT_EQ(trained[1].tokenizer->FindSpecial("[C]"), 3);
  EXPECT_EQ(trained[1].tokenizer->FindSpecial("[X]"), std::nullopt);

  const std::string torture = TortureText();
  for (const Subject& subject : trained) {
    const Ids ids = subject.tokenizer->Encode(torture);
    for (SpecialTokenPolicy policy : kPolicies) {
      ExpectStreamEqualsDecode(subject, ids, policy, "torture");
    }
    for (uint32_t seed = 0; seed < 300; ++seed) {
      std::mt19937 random(seed);
      const Ids random_ids = RandomIds(subject, random);
      for (SpecialTokenPolicy policy : kPolicies) {
        ExpectStreamEqualsDecode(subject, random_ids, policy, "seed " + std::to_string(seed));
      }
      if (HasFailure()) return;
    }
  }

  // The trainer's default remove_extra_whitespaces=true strips every leading "▁" piece until
  // text appears; streaming follows the library there too.
  {
    const Subject extra =
        MakeSubject("extra", LoadSentencePieceTokenizer(TrainModel(dir, "extra", "--model_type=bpe --vocab_size=80")));
    ExpectStreamEqualsDecode(extra, extra.tokenizer->Encode(torture), SpecialTokenPolicy::kIgnore, "extra torture");
    for (uint32_t seed = 0; seed < 300; ++seed) {
      std::mt19937 random(seed);
      const Ids random_ids = RandomIds(extra, random);
      for (SpecialTokenPolicy policy : kPolicies) {
        ExpectStreamEqualsDecode(extra, random_ids, policy, "extra seed " + std::to_string(seed));
      }
      if (HasFailure()) return;
    }
  }
  const std::string rules = dir.File("denormalize.tsv");
  testing::WriteFile(rules, "41\t61\n");  // A -> a
  EXPECT_THROW(
      LoadSentencePieceTokenizer(TrainModel(
          dir, "denormalized",
          "--model_type=bpe --vocab_size=80 --denormalization_rule_tsv=" + rules + kKeepSpaces)),
      Unsupported);
}

}  // namespace
}  // namespace bora::tokenizer
