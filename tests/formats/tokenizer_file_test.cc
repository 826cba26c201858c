// Tests recognition of Mistral tokenizer file names and reading their vocabulary sizes.
#include "formats/tokenizer_file.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "testdata.h"

namespace bora::formats {
namespace {

TEST(IsTokenizerFileNameTest, RecognisesMistralTokenizerNames) {
  const char* kPositive[] = {
      "tekken.json",
      "tekken_240718.json",
      "tekken_240718-reconstructed.json",
      "tokenizer.model",
      "tokenizer.model.v1",
      "tokenizer.model.v3",
      "tokenizer.model.v7m1",
      "mistral_instruct_tokenizer_240323.model.v3",
      "mistral_instruct_tokenizer_241114.model.v7m1",
  };
  for (const char* name : kPositive) EXPECT_TRUE(IsTokenizerFileName(name)) << name;
}

TEST(IsTokenizerFileNameTest, RejectsOtherFiles) {
  const char* kNegative[] = {
      "params.json",         "model.safetensors",
      "config.json",         "consolidated.safetensors",
      "tokenizer.model.bak", "tokenizer.model.v",
      "tokenizer.model.vx",  "tekken.json.partial",
      "mytekken.json",       "",
  };
  for (const char* name : kNegative) EXPECT_FALSE(IsTokenizerFileName(name)) << name;
}

// Protobuf helpers: a length-delimited field and a varint field.
std::string Bytes(uint8_t tag, const std::string& payload) {
  return std::string(1, static_cast<char>(tag)) + static_cast<char>(payload.size()) + payload;
}

// A SentencePiece piece message: piece string (field 1), score float (field 2, fixed32).
std::string Piece(const std::string& text) {
  return Bytes(0x0a, text) + std::string("\x15\x00\x00\x80\x3f", 5);
}

class TokenizerVocabSizeTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_.File(name);
    bora::testing::WriteFile(path, bytes);
    return path;
  }

  bora::testing::TempDir dir_;
};

TEST_F(TokenizerVocabSizeTest, CountsTopLevelPiecesOfAHandBuiltModel) {
  // Three `pieces` (field 1, length-delimited) plus a trainer_spec (field 2) and, to exercise the
  // skipping of the other wire types, a varint field 3, a fixed64 field 4 and a fixed32 field 5.
  std::string proto = Bytes(0x0a, Piece("<unk>")) + Bytes(0x0a, Piece("a")) +
                      Bytes(0x12, std::string("\x08\x01", 2)) + Bytes(0x0a, Piece("bc")) +
                      std::string("\x18\xac\x02", 3) +  // field 3 varint 300
                      std::string("\x21\x01\x02\x03\x04\x05\x06\x07\x08", 9) +  // field 4 fixed64
                      std::string("\x2d\x01\x02\x03\x04", 5);                   // field 5 fixed32
  EXPECT_EQ(TokenizerVocabSize(Write("tokenizer.model", proto)), 3);
}

TEST_F(TokenizerVocabSizeTest, RejectsTruncatedOrInvalidProtobuf) {
  const std::string piece = Bytes(0x0a, Piece("a"));
  const std::pair<const char*, std::string> kBad[] = {
      {"length past the end", piece + std::string("\x0a\x05xy", 4)},
      {"truncated tag varint", piece + std::string("\x80", 1)},
      {"truncated length varint", piece + std::string("\x0a\x80", 2)},
      {"truncated value varint", piece + std::string("\x18\xff", 2)},
      {"truncated fixed32", piece + std::string("\x2d\x01\x02", 3)},
      {"truncated fixed64", piece + std::string("\x21\x01\x02\x03", 4)},
      {"unknown wire type 3", piece + std::string("\x0b", 1)},
      {"unknown wire type 7", piece + std::string("\x0f", 1)},
      {"varint over 64 bits",
       piece + std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11)},
      {"no pieces", Bytes(0x12, std::string("\x08\x01", 2))},
      {"empty file", ""},
      {"text", "this is not a protobuf"},
  };
  for (const auto& [what, bytes] : kBad) {
    SCOPED_TRACE(what);
    std::string path = Write("tokenizer.model.v3", bytes);
    EXPECT_THROW(TokenizerVocabSize(path), bora::FormatError);
    try {
      TokenizerVocabSize(path);
    } catch (const bora::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

TEST_F(TokenizerVocabSizeTest, ReadsTekkenDefaultVocabSize) {
  EXPECT_EQ(TokenizerVocabSize(
                Write("tekken.json",
                      R"({"config": {"default_vocab_size": 1000, "version": "v3"}, "vocab": []})")),
            1000);
  const char* kBad[] = {
      R"({"vocab": []})",
      R"({"config": {}})",
      R"({"config": {"default_vocab_size": -1}})",
      R"({"config": {"default_vocab_size": "1000"}})",
      R"({"config": {"default_vocab_size": 1000.5}})",
      R"({"config": [1000]})",
      R"([1000])",
      R"({"config": {"default_vocab_size": 1000})",  // truncated
      "",
  };
  for (const char* bad : kBad) {
    std::string path = Write("tekken.json", bad);
    EXPECT_THROW(TokenizerVocabSize(path), bora::FormatError) << bad;
  }
}

TEST_F(TokenizerVocabSizeTest, MissingFilesAreIoErrors) {
  EXPECT_THROW(TokenizerVocabSize(dir_.File("tekken.json")), bora::IoError);
  EXPECT_THROW(TokenizerVocabSize(dir_.File("tokenizer.model")), bora::IoError);
}

TEST(TokenizerVocabSizeSharedTest, RealTokenizerFiles) {
  BORA_REQUIRE_SHARED(shared);
  const std::string dir = shared + "/tokenizers/";
  EXPECT_EQ(TokenizerVocabSize(dir + "tokenizer.model.v1"), 32000);
  EXPECT_EQ(TokenizerVocabSize(dir + "mistral_instruct_tokenizer_240216.model.v2"), 32768);
  EXPECT_EQ(TokenizerVocabSize(dir + "mistral_instruct_tokenizer_240323.model.v3"), 32768);
  EXPECT_EQ(TokenizerVocabSize(dir + "mistral_instruct_tokenizer_241114.model.v7m1"), 32768);
  EXPECT_EQ(TokenizerVocabSize(dir + "tekken_240718-reconstructed.json"), 131072);
  for (const char* name :
       {"tokenizer.model.v1", "mistral_instruct_tokenizer_240323.model.v3",
        "mistral_instruct_tokenizer_241114.model.v7m1", "tekken_240718-reconstructed.json"}) {
    EXPECT_TRUE(IsTokenizerFileName(name)) << name;
  }
}

}  // namespace
}  // namespace bora::formats
