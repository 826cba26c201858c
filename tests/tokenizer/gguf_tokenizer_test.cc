// Tokenizers rebuilt from GGUF metadata: the vocabulary-only GGUFs of Mistral's v3 SentencePiece
// and Tekken tokenizers are token-for-token the original files (ids of mistral-common's vectors,
// also where llama.cpp differs), pick the right instruct version, and bad metadata is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/load_tokenizer.h"
#include "testdata.h"

namespace bora::tokenizer {
namespace {

struct Pair {
  const char* gguf;
  const char* original;  // under ../shared/tokenizers
};
constexpr Pair kPairs[] = {
    {"mistral-v3-spm-vocab.gguf", "mistral_instruct_tokenizer_240323.model.v3"},
    {"mistral-tekken-240718-vocab.gguf", "tekken_240718-reconstructed.json"},
};

TEST(GgufTokenizerTest, VocabularyFilesEqualTheOriginalTokenizers) {
  BORA_REQUIRE_SHARED(shared);
  for (const Pair& pair : kPairs) {
    SCOPED_TRACE(pair.gguf);
    const LoadedTokenizer gguf = LoadTokenizer(shared + "/gguf/tokenizers/" + pair.gguf);
    const LoadedTokenizer original = LoadTokenizer(shared + "/tokenizers/" + pair.original);
    EXPECT_EQ(gguf.version.version, InstructVersion::kV3) << gguf.version.reason;
    ASSERT_EQ(gguf.tokenizer->vocab_size(), original.tokenizer->vocab_size());
    EXPECT_EQ(gguf.tokenizer->num_special_tokens(), original.tokenizer->num_special_tokens());
    EXPECT_EQ(gguf.tokenizer->bos_id(), original.tokenizer->bos_id());
    EXPECT_EQ(gguf.tokenizer->eos_id(), original.tokenizer->eos_id());
    EXPECT_EQ(gguf.tokenizer->unk_id(), original.tokenizer->unk_id());
    for (int32_t id = 0; id < gguf.tokenizer->vocab_size(); ++id) {
      ASSERT_EQ(gguf.tokenizer->TokenBytes(id), original.tokenizer->TokenBytes(id)) << id;
      ASSERT_EQ(gguf.tokenizer->IsSpecial(id), original.tokenizer->IsSpecial(id)) << id;
      ASSERT_EQ(gguf.tokenizer->IdToPiece(id), original.tokenizer->IdToPiece(id)) << id;
    }
  }
}

TEST(GgufTokenizerTest, ReproducesMistralCommonIds) {
  BORA_REQUIRE_SHARED(shared);
  std::map<std::string, LoadedTokenizer> loaded;
  for (const Pair& pair : kPairs) loaded[pair.original] = LoadTokenizer(shared + "/gguf/tokenizers/" + pair.gguf);
  std::ifstream in(shared + "/tokenizers/examples.jsonl");
  ASSERT_TRUE(in);
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json example = nlohmann::json::parse(line);
    auto it = loaded.find(example["tokenizer"].get<std::string>());
    if (it == loaded.end()) continue;
    const std::string text = example["text"];
    const std::vector<int32_t> ids = example["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(it->second.tokenizer->Encode(text), ids) << text;
    EXPECT_EQ(it->second.tokenizer->Decode(ids), text) << text;
    ++checked;
  }
  EXPECT_EQ(checked, 50);
  // Where llama.cpp differs (README): the v3 [REFERENCE_DOC_n] pieces are user-defined for
  // mistral-common, so raw text holding one encodes to that single piece.
  const LoadedTokenizer original = LoadTokenizer(shared + "/tokenizers/" + std::string(kPairs[0].original));
  const std::string text = "see [REFERENCE_DOC_3] here";
  EXPECT_EQ(loaded[kPairs[0].original].tokenizer->Encode(text), original.tokenizer->Encode(text));
  // Combining marks, which llama.cpp's tekken pre-tokenizer drops from its letter classes.
  const LoadedTokenizer tekken = LoadTokenizer(shared + "/tokenizers/" + std::string(kPairs[1].original));
  for (const std::string marks : {"नमस्ते दुनिया", "สวัสดีครับ", "e\xCC\x81t\xC3\xA9"}) {
    EXPECT_EQ(loaded[kPairs[1].original].tokenizer->Encode(marks), tekken.tokenizer->Encode(marks)) << marks;
  }
}

TEST(GgufTokenizerTest, WritesAnEquivalentTokenizerFile) {
  BORA_REQUIRE_SHARED(shared);
  for (const Pair& pair : kPairs) {
    const formats::GgufFile file = formats::GgufFile::Open(shared + "/gguf/tokenizers/" + pair.gguf);
    const GgufTokenizer gguf = LoadGgufTokenizer(file.header());
    const LoadedTokenizer again = ParseTokenizer(gguf.file_bytes, gguf.file_name);
    EXPECT_EQ(again.version.version, gguf.version.version) << gguf.file_name;
    for (const std::string text : {"Hello world", "  two  spaces\n\ttab", "émoji 🙂 123"}) {
      EXPECT_EQ(again.tokenizer->Encode(text), gguf.tokenizer->Encode(text)) << gguf.file_name;
    }
  }
  EXPECT_EQ(LoadGgufTokenizer(formats::GgufFile::Open(shared + "/gguf/tokenizers/" + kPairs[0].gguf).header()).file_name,
            "tokenizer.model.v3");
}

TEST(GgufTokenizerTest, ModelFileVersionAndOverride) {
  BORA_REQUIRE_SHARED(shared);
  const std::string model = shared + "/gguf/tiny-dense/tiny-dense-Q4_0.gguf";
  EXPECT_EQ(FindTokenizerFile(model), model);
  const LoadedTokenizer plain = LoadTokenizer(model);
  EXPECT_EQ(plain.version.version, InstructVersion::kV1) << plain.version.reason;  // truncated v1 vocabulary
  const LoadedTokenizer forced = LoadTokenizer(model, InstructVersion::kV3);
  EXPECT_EQ(forced.version.version, InstructVersion::kV3);
  EXPECT_NE(forced.version.reason.find("overrides"), std::string::npos);
}

// --- malformed metadata, in memory ---

class MiniGguf {
 public:
  void String(const std::string& key, const std::string& value) {
    Key(key, 8);
    Str(value);
    ++keys_;
  }
  void Strings(const std::string& key, const std::vector<std::string>& values) {
    Key(key, 9);
    U32(8);
    U64(values.size());
    for (const std::string& v : values) Str(v);
    ++keys_;
  }
  void Floats(const std::string& key, const std::vector<float>& values) {
    Key(key, 9);
    U32(6);
    U64(values.size());
    for (float v : values) body_.append(reinterpret_cast<const char*>(&v), 4);
    ++keys_;
  }
  void Ints(const std::string& key, const std::vector<int32_t>& values) {
    Key(key, 9);
    U32(5);
    U64(values.size());
    for (int32_t v : values) body_.append(reinterpret_cast<const char*>(&v), 4);
    ++keys_;
  }
  formats::GgufHeader Parse() {
    image_ = "GGUF";
    const uint32_t version = 3;
    image_.append(reinterpret_cast<const char*>(&version), 4);
    const uint64_t counts[2] = {0, keys_};
    image_.append(reinterpret_cast<const char*>(counts), 16);
    image_ += body_;
    return formats::ParseGgufHeader({reinterpret_cast<const uint8_t*>(image_.data()), image_.size()}, "mini.gguf");
  }

 private:
  void U32(uint32_t v) { body_.append(reinterpret_cast<const char*>(&v), 4); }
  void U64(uint64_t v) { body_.append(reinterpret_cast<const char*>(&v), 8); }
  void Str(const std::string& s) {
    U64(s.size());
    body_ += s;
  }
  void Key(const std::string& key, uint32_t type) {
    Str(key);
    U32(type);
  }
  std::string body_, image_;
  uint64_t keys_ = 0;
};

// A tiny SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte pieces, "▁a".
void SpmVocab(MiniGguf& g, size_t types_count) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  char piece[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    tokens.push_back(piece);
    types.push_back(6);
  }
  tokens.push_back("\xE2\x96\x81" "a");
  types.push_back(1);
  g.String("tokenizer.ggml.model", "llama");
  g.Strings("tokenizer.ggml.tokens", tokens);
  g.Floats("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  types.resize(types_count == 0 ? types.size() : types_count, 1);
  g.Ints("tokenizer.ggml.token_type", types);
}

TEST(GgufTokenizerTest, BuildsASmallSentencePieceVocabulary) {
  MiniGguf g;
  SpmVocab(g, 0);
  const formats::GgufHeader header = g.Parse();
  const GgufTokenizer tokenizer = LoadGgufTokenizer(header);
  EXPECT_EQ(tokenizer.tokenizer->vocab_size(), 260);
  EXPECT_EQ(tokenizer.tokenizer->Encode("a"), std::vector<int32_t>({259}));
  // "▁b" is no piece: byte fallback on U+2581's three bytes and "b".
  EXPECT_EQ(tokenizer.tokenizer->Encode("b"), std::vector<int32_t>({3 + 0xE2, 3 + 0x96, 3 + 0x81, 3 + 0x62}));
}

TEST(GgufTokenizerTest, RefusesBadMetadata) {
  {
    MiniGguf g;
    SpmVocab(g, 7);  // token_type shorter than tokens
    const formats::GgufHeader header = g.Parse();
    EXPECT_THROW(LoadGgufTokenizer(header), FormatError);
  }
  {
    MiniGguf g;
    g.String("tokenizer.ggml.model", "bert");
    const formats::GgufHeader header = g.Parse();
    EXPECT_THROW(LoadGgufTokenizer(header), Unsupported);
  }
  {
    MiniGguf g;
    g.String("tokenizer.ggml.model", "gpt2");
    g.String("tokenizer.ggml.pre", "llama-bpe");
    const formats::GgufHeader header = g.Parse();
    try {
      LoadGgufTokenizer(header);
      FAIL();
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("llama-bpe"), std::string::npos);
    }
  }
  {
    MiniGguf g;
    const formats::GgufHeader header = g.Parse();
    EXPECT_FALSE(GgufHasTokenizer(header));
    EXPECT_THROW(LoadGgufTokenizer(header), FormatError);
  }
}

TEST(GgufTokenizerTest, TekkenMergesMustBeTokens) {
  BORA_REQUIRE_SHARED(shared);
  // The real file's merges pass; a Tekken vocabulary whose merge names a missing token fails.
  MiniGguf g;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {3, 3, 3};
  // GPT-2 byte-to-unicode strings of the 256 single bytes.
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + static_cast<uint32_t>(extra++);
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    tokens.push_back(s);
    types.push_back(1);
  }
  g.String("tokenizer.ggml.model", "gpt2");
  g.String("tokenizer.ggml.pre", "tekken");
  g.Strings("tokenizer.ggml.tokens", tokens);
  g.Ints("tokenizer.ggml.token_type", types);
  g.Strings("tokenizer.ggml.merges", {"a b"});  // "ab" is not a token
  const formats::GgufHeader header = g.Parse();
  EXPECT_THROW(LoadGgufTokenizer(header), FormatError);
}

}  // namespace
}  // namespace bora::tokenizer
