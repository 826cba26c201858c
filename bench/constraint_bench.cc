// Google Benchmark of constrained-decoding token masks: FillMask + Accept per token while
// walking the tokenizer's own encoding of realistic documents, for the SentencePiece v3
// (32 768) and Tekken (131 072) vocabularies; string-heavy and structure-heavy documents.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/constraint/json_schema.h"
#include "runtime/constraint/matcher.h"
#include "tokenizer/load_tokenizer.h"

namespace {

namespace fs = std::filesystem;
using namespace bora::runtime::constraint;

// ../shared beside the checkout, or $BORA_SHARED; "" when neither exists.
std::string SharedDir() {
  if (const char* env = std::getenv("BORA_SHARED"); env != nullptr && *env != '\0') {
    return fs::is_directory(env) ? std::string(env) : std::string();
  }
  const fs::path beside = fs::path(BORA_SOURCE_DIR).parent_path() / "shared";
  return fs::is_directory(beside) ? beside.string() : std::string();
}

const char* const kTokenizers[] = {"mistral_instruct_tokenizer_240323.model.v3",
                                   "tekken_240718-reconstructed.json"};

constexpr const char* kArticleSchema = R"({"type":"object","properties":{
  "title":{"type":"string","maxLength":200},"summary":{"type":"string"},
  "body":{"type":"string"},"tags":{"type":"array","items":{"type":"string"},"maxItems":8}},
  "required":["title","summary","body","tags"],"additionalProperties":false})";

constexpr const char* kShapesSchema = R"({"type":"object","properties":{"shapes":{"type":"array",
  "items":{"type":"object","properties":{"id":{"type":"integer","minimum":0},
  "kind":{"enum":["circle","square","triangle"]},"x":{"type":"number"},"y":{"type":"number"},
  "visible":{"type":"boolean"},"label":{"type":["string","null"],"maxLength":16}},
  "required":["id","kind","x","y","visible","label"],"additionalProperties":false}}},
  "required":["shapes"],"additionalProperties":false})";

std::string ArticleDocument() {
  std::string body;
  const char* sentences[] = {
      "The committee reviewed the proposal in detail and asked for a revised budget. ",
      "Les r\xc3\xa9sultats pr\xc3\xa9liminaires montrent une am\xc3\xa9lioration de 12 %. ",
      "Researchers noted that \\\"batching\\\" improves throughput on small machines.\\n",
      "\xe6\x95\xb0\xe6\x8d\xae\xe8\xa1\xa8\xe6\x98\x8e\xe6\x80\xa7\xe8\x83\xbd\xe6\x8f\x90\xe9\xab"
      "\x98\xe4\xba\x86\xe3\x80\x82 ",
      "Numbers like 3.14159 and 2,718 appear alongside code such as `x += 1;`. ",
  };
  for (int i = 0; i < 24; ++i) body += sentences[(i * 7) % 5];
  return std::string("{\"title\":\"Quarterly report on constrained decoding\",\"summary\":\"") +
         sentences[0] + sentences[2] + "\",\"body\":\"" + body +
         "\",\"tags\":[\"report\",\"decoding\",\"json\"]}";
}

std::string ShapesDocument() {
  std::string text = "{\"shapes\":[";
  const char* kinds[] = {"circle", "square", "triangle"};
  for (int i = 0; i < 40; ++i) {
    if (i > 0) text += ",";
    text += "{\"id\":" + std::to_string(i * 37) + ",\"kind\":\"" + kinds[i % 3] +
            "\",\"x\":" + std::to_string(i * 1.25 - 20) + ",\"y\":" + std::to_string(-i * 0.5) +
            ",\"visible\":" + (i % 2 ? "true" : "false") +
            ",\"label\":" + (i % 4 ? "\"shape " + std::to_string(i) + "\"" : std::string("null")) +
            "}";
  }
  return text + "]}";
}

// Args: tokenizer (0 SentencePiece v3, 1 Tekken), document (0 string-heavy, 1 structure-heavy).
void BM_MaskPerToken(benchmark::State& state) {
  const std::string shared = SharedDir();
  if (shared.empty()) {
    state.SkipWithError("shared data folder not found (set BORA_SHARED)");
    return;
  }
  const auto loaded =
      bora::tokenizer::LoadTokenizer(shared + "/tokenizers/" + kTokenizers[state.range(0)]);
  auto vocabulary = std::make_shared<const TokenVocabulary>(*loaded.tokenizer);
  const bool strings = state.range(1) == 0;
  const auto grammar = CompileJsonSchemaText(strings ? kArticleSchema : kShapesSchema);
  const std::vector<int32_t> ids =
      loaded.tokenizer->Encode(strings ? ArticleDocument() : ShapesDocument());
  std::vector<uint64_t> mask(MaskWords(vocabulary->size()));
  for (auto _ : state) {
    Matcher matcher(grammar, vocabulary);
    for (int32_t id : ids) {
      matcher.FillMask(mask);
      benchmark::DoNotOptimize(mask.data());
      matcher.Accept(id);
    }
  }
  // Seconds per token (shown with an SI prefix, e.g. "1.4u" = 1.4 µs).
  state.counters["per_token"] =
      benchmark::Counter(static_cast<double>(ids.size()) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel(std::string(state.range(0) == 0 ? "spm-v3 " : "tekken ") +
                 (strings ? "string-heavy" : "structure-heavy") + ", " +
                 std::to_string(ids.size()) + " tokens");
}
BENCHMARK(BM_MaskPerToken)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMillisecond);

// Building the vocabulary tables (once per tokenizer).
void BM_BuildVocabulary(benchmark::State& state) {
  const std::string shared = SharedDir();
  if (shared.empty()) {
    state.SkipWithError("shared data folder not found (set BORA_SHARED)");
    return;
  }
  const auto loaded =
      bora::tokenizer::LoadTokenizer(shared + "/tokenizers/" + kTokenizers[state.range(0)]);
  for (auto _ : state) {
    TokenVocabulary vocabulary(*loaded.tokenizer);
    benchmark::DoNotOptimize(vocabulary.size());
  }
}
BENCHMARK(BM_BuildVocabulary)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
