// The acceptance test for constrained decoding: a random-weight tiny model whose vocab
// matches the tokenizer samples 100 outputs (temperature 1, different seeds) under each of 10
// schemas through Transformer + SequenceSampler; every output that ends with EOS decodes to
// JSON that validates, and under schemas that bound every string and array all 100 end with EOS
// within 512 tokens. Run with the SentencePiece v3 and the Tekken vocabularies.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/cpu_features.h"
#include "base/thread_pool.h"
#include "formats/tokenizer_file.h"
#include "kernels/kernel_set.h"
#include "model/random_model.h"
#include "model/transformer.h"
#include "runtime/constraint/json_schema.h"
#include "runtime/constraint/matcher.h"
#include "runtime/sampler.h"
#include "schema_validator.h"
#include "testdata.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::runtime {
namespace {

using constraint::SchemaJson;

constexpr int kSamples = 100;
constexpr int kMaxTokens = 512;

struct SchemaCase {
  const char* file;  // in tests/runtime/constraint/schemas
  bool bounded;      // every string has maxLength and every array maxItems (or none at all)
};

const SchemaCase kCases[] = {
    {"bounded_everything", true},
    {"sentiment_classification", true},
    {"geojson_point", true},
    {"shape_union", true},
    {"classification_multilabel", true},
    {"weather_tool", false},
    {"linked_list_root_ref", false},
    {"oneof_payment", false},
    {"pydantic_defs_user", false},
    {"nested_address", false},
};

SchemaJson ReadSchema(const std::string& name) {
  std::ifstream in(std::string(BORA_SCHEMA_DIR) + "/" + name + ".json");
  std::ostringstream text;
  text << in.rdbuf();
  return SchemaJson::parse(text.str());
}

void RunVocabulary(const std::string& tokenizer_path) {
  const tokenizer::LoadedTokenizer loaded = tokenizer::LoadTokenizer(tokenizer_path);
  const tokenizer::Tokenizer& tok = *loaded.tokenizer;
  auto vocabulary = std::make_shared<const constraint::TokenVocabulary>(tok);

  // A tiny random model with the tokenizer's vocabulary (small width keeps the output
  // projection, the dominant cost at this size, cheap).
  testing::TempDir dir;
  formats::ModelParams params = model::PresetParams("tiny");
  params.dim = 32;
  params.n_layers = 2;
  params.layer_windows.assign(2, 0);  // full attention in every layer
  params.head_dim = 8;
  params.n_heads = 4;
  params.n_kv_heads = 2;
  params.hidden_dim = 64;
  params.vocab_size = formats::TokenizerVocabSize(tokenizer_path);
  {
    ThreadPool pool(2);
    model::WriteRandomModel(params, 11, dir.path(), pool, /*show_progress=*/false);
  }
  model::LoadOptions options;
  options.context = kMaxTokens + 8;
  options.threads = 2;
  options.dtype = DType::kQ8;  // the packed GEMM path: 100 sequences × 131 072 logits per step
  std::unique_ptr<model::Transformer> transformer = model::LoadModel(dir.path(), options);
  const int64_t vocab = transformer->params().vocab_size;
  const kernels::KernelSet& kernels = kernels::KernelsFor(SelectIsaFromEnvironment());
  SamplerScratch scratch(vocab);
  const int32_t eos = tok.eos_id();
  int finished_unbounded = 0;

  for (const SchemaCase& schema_case : kCases) {
    const SchemaJson schema = ReadSchema(schema_case.file);
    const auto grammar = constraint::CompileJsonSchema(schema);
    SamplingParams sampling;
    sampling.temperature = 1.0f;
    struct Sequence {
      std::unique_ptr<SequenceSampler> sampler;
      model::ContiguousKvCache cache;
      std::vector<int32_t> output;
      int32_t next = 0;
      bool done = false;
    };
    std::vector<Sequence> sequences;
    sequences.reserve(kSamples);
    for (int s = 0; s < kSamples; ++s) {
      const std::vector<int32_t> prompt = {tok.bos_id()};
      sequences.push_back({std::make_unique<SequenceSampler>(
                               sampling, vocab, prompt, static_cast<uint64_t>(s), 0, kernels,
                               std::make_unique<constraint::Matcher>(grammar, vocabulary)),
                           transformer->NewCache(),
                           {},
                           tok.bos_id(),
                           false});
    }
    std::vector<float> logits(static_cast<size_t>(kSamples * vocab));
    for (int step = 0; step < kMaxTokens; ++step) {
      std::vector<model::BatchItem> items;
      std::vector<int> live;
      for (int s = 0; s < kSamples; ++s) {
        if (sequences[s].done) continue;
        live.push_back(s);
        items.push_back({std::span<const int32_t>(&sequences[s].next, 1), &sequences[s].cache,
                         std::span<float>(logits.data() + s * vocab, vocab), false, {}, nullptr, {}});
      }
      if (items.empty()) break;
      transformer->ForwardBatch(items);
      for (int s : live) {
        Sequence& seq = sequences[s];
        const SampledToken token =
            seq.sampler->Sample(std::span<const float>(logits.data() + s * vocab, vocab), scratch);
        if (token.id == eos) {
          seq.done = true;
          EXPECT_TRUE(seq.sampler->constraint()->Finished());
        } else {
          seq.output.push_back(token.id);
          seq.next = token.id;
        }
      }
    }
    int finished = 0;
    size_t total_tokens = 0;
    for (const Sequence& seq : sequences) {
      total_tokens += seq.output.size();
      if (!seq.done) continue;
      ++finished;
      const std::string text = tok.Decode(seq.output);
      const SchemaJson value = SchemaJson::parse(text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(value.is_discarded()) << schema_case.file << ": not JSON: " << text;
      EXPECT_EQ(testing::ValidateAgainstSchema(schema, value), "")
          << schema_case.file << ": " << text;
    }
    std::printf("%-28s %3d of %d end with EOS, %.1f tokens on average\n", schema_case.file,
                finished, kSamples, static_cast<double>(total_tokens) / kSamples);
    if (schema_case.bounded) {
      EXPECT_EQ(finished, kSamples) << schema_case.file;
    }
    finished_unbounded += schema_case.bounded ? 0 : finished;
  }
  // Unbounded strings may run past 512 tokens under random weights, but not all of them.
  EXPECT_GT(finished_unbounded, 0);
}

TEST(ConstrainedGenerationTest, SentencePieceV3RandomModelOutputsValidate) {
  BORA_REQUIRE_SHARED(shared);
  RunVocabulary(shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3");
}

TEST(ConstrainedGenerationTest, TekkenRandomModelOutputsValidate) {
  BORA_REQUIRE_SHARED(shared);
  RunVocabulary(shared + "/tokenizers/tekken_240718-reconstructed.json");
}

}  // namespace
}  // namespace bora::runtime
