// Token-level matcher tests on the real SentencePiece v3 and Tekken vocabularies: masks equal
// the one-token-at-a-time check for every id, the tokenizer's own encoding is always allowed,
// EOS comes only at the end, and the leading-space rule follows the decoder.
#include "runtime/constraint/matcher.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/constraint/json_schema.h"
#include "testdata.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::runtime::constraint {
namespace {

struct Vocab {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::shared_ptr<const TokenVocabulary> vocabulary;
};

Vocab Load(const std::string& path) {
  tokenizer::LoadedTokenizer loaded = tokenizer::LoadTokenizer(path);
  Vocab vocab;
  vocab.vocabulary = std::make_shared<const TokenVocabulary>(*loaded.tokenizer);
  vocab.tokenizer = std::move(loaded.tokenizer);
  return vocab;
}

bool Bit(const std::vector<uint64_t>& mask, int32_t id) { return (mask[id / 64] >> (id % 64)) & 1; }

constexpr const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string","maxLength":12},
  "tags":{"type":"array","items":{"type":"string","minLength":1,"maxLength":4},"maxItems":4},
  "score":{"type":"number"},
  "count":{"type":"integer","minimum":0,"maximum":500},
  "note":{"type":"string"},
  "extra":{"type":"object"}},
  "required":["name","tags","score","count","note"],"additionalProperties":false})";

constexpr const char* kDocument =
    "{\"name\":\"Ada Lovelace\",\"tags\":[\"x\",\"\xc3\xbcnic\",\"a\\\"b\"],\"score\":-12.5e3,"
    "\"count\":407,\"note\":\"caf\xc3\xa9 \\u00e9 \\n \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 "
    "end.\",\"extra\":{\"k\":[1,{\"z\":null}],\"t\":true}}";

// Walks the tokenizer's own encoding of kDocument: every token must be in the mask, the mask
// must equal IsAllowed for every id on `check_every`-th steps, EOS only at the end.
void WalkDocument(const Vocab& vocab, int check_every) {
  const auto grammar = CompileJsonSchemaText(kSchema);
  Matcher matcher(grammar, vocab.vocabulary);
  Matcher reference(grammar, vocab.vocabulary);  // advanced in step; answers IsAllowed
  const std::vector<int32_t> ids = vocab.tokenizer->Encode(kDocument);
  ASSERT_EQ(vocab.tokenizer->Decode(ids), kDocument);
  std::vector<uint64_t> mask(MaskWords(vocab.vocabulary->size()) + 3, ~uint64_t{0});
  const int32_t eos = vocab.tokenizer->eos_id();
  for (size_t step = 0; step <= ids.size(); ++step) {
    matcher.FillMask(mask);
    EXPECT_EQ(mask.back(), 0u) << "FillMask clears the whole span";
    if (step == ids.size()) {
      EXPECT_TRUE(Bit(mask, eos));
      break;
    }
    EXPECT_FALSE(Bit(mask, eos)) << "step " << step;
    ASSERT_TRUE(Bit(mask, ids[step]))
        << "step " << step << " token '" << vocab.tokenizer->IdToPiece(ids[step]) << "'";
    if (step % check_every == 0) {
      int32_t mismatches = 0, allowed = 0;
      for (int32_t id = 0; id < vocab.vocabulary->size(); ++id) {
        const bool expected = reference.IsAllowed(id);
        allowed += expected;
        if (Bit(mask, id) != expected && ++mismatches <= 3) {
          ADD_FAILURE() << "step " << step << " token " << id << " '"
                        << vocab.tokenizer->IdToPiece(id) << "': mask " << Bit(mask, id)
                        << ", check " << expected;
        }
      }
      EXPECT_EQ(mismatches, 0) << "step " << step << " (" << allowed << " allowed)";
    }
    matcher.Accept(ids[step]);
    reference.Accept(ids[step]);
  }
  EXPECT_TRUE(matcher.Complete());
  matcher.Accept(eos);
  EXPECT_TRUE(matcher.Finished());
  matcher.FillMask(mask);
  for (uint64_t word : mask) EXPECT_EQ(word, 0u);
  EXPECT_THROW(matcher.Accept(ids[0]), InvalidArgument);
}

TEST(MatcherTest, SentencePieceMasksMatchTokenChecks) {
  BORA_REQUIRE_SHARED(shared);
  WalkDocument(Load(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3"), 3);
}

TEST(MatcherTest, TekkenMasksMatchTokenChecks) {
  BORA_REQUIRE_SHARED(shared);
  WalkDocument(Load(shared + "/tokenizers/tekken_240718-reconstructed.json"), 4);
}

TEST(MatcherTest, RejectsWrongTokensAndKeepsState) {
  BORA_REQUIRE_SHARED(shared);
  const Vocab vocab = Load(shared + "/tokenizers/tekken_240718-reconstructed.json");
  Matcher matcher(JsonObjectGrammar(), vocab.vocabulary);
  const std::vector<int32_t> bad = vocab.tokenizer->Encode("[");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_FALSE(matcher.IsAllowed(bad[0]));
  EXPECT_THROW(matcher.Accept(bad[0]), InvalidArgument);
  EXPECT_THROW(matcher.Accept(vocab.tokenizer->eos_id()), InvalidArgument);
  EXPECT_THROW(matcher.Accept(vocab.tokenizer->bos_id()), InvalidArgument);
  for (int32_t id : vocab.tokenizer->Encode("{\"a\":1}")) matcher.Accept(id);
  EXPECT_TRUE(matcher.Complete());
}

TEST(MatcherTest, SentencePieceLeadingSpaceIsDropped) {
  BORA_REQUIRE_SHARED(shared);
  const Vocab vocab = Load(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3");
  ASSERT_TRUE(vocab.vocabulary->strips_leading_space());
  Matcher matcher(CompileJsonSchemaText(R"({"type":"integer"})"), vocab.vocabulary);
  const std::vector<int32_t> ids = vocab.tokenizer->Encode("42");  // "▁" + "4" "2" or "▁4"...
  for (int32_t id : ids) matcher.Accept(id);
  EXPECT_TRUE(matcher.Complete());
  EXPECT_EQ(vocab.tokenizer->Decode(ids), "42");
  // The space is dropped only once: " 4 2" is not an integer.
  Matcher second(CompileJsonSchemaText(R"({"type":"integer"})"), vocab.vocabulary);
  const std::vector<int32_t> spaced = vocab.tokenizer->Encode("4 2");
  bool rejected = false;
  for (int32_t id : spaced) {
    if (!second.IsAllowed(id)) {
      rejected = true;
      break;
    }
    second.Accept(id);
  }
  EXPECT_TRUE(rejected);
}

}  // namespace
}  // namespace bora::runtime::constraint
