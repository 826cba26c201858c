// Google Benchmark of single-thread encode throughput for the Tekken and SentencePiece files.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tekken_tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

namespace fs = std::filesystem;
using bora::tokenizer::Tokenizer;

constexpr size_t kTextBytes = 100 * 1000;  // size of every benchmark input

// ../shared beside the checkout, or $BORA_SHARED; "" when neither exists.
std::string SharedDir() {
  if (const char* env = std::getenv("BORA_SHARED"); env != nullptr && *env != '\0') {
    return fs::is_directory(env) ? std::string(env) : std::string();
  }
  const fs::path beside = fs::path(BORA_SOURCE_DIR).parent_path() / "shared";
  return fs::is_directory(beside) ? beside.string() : std::string();
}

// ~100 KB mixing English prose, C++ code, numbers and CJK/Korean sentences, chosen by a fixed
// linear congruential sequence so every run (and every tokenizer) sees the same bytes.
std::string MixedText() {
  static const char* const kFragments[] = {
      "The quick brown fox jumps over the lazy dog while the committee debates the budget. ",
      "In 2024, researchers reported a 37.5% improvement over the previous baseline. ",
      "Tokenizers split text into pieces; byte-level BPE never needs an unknown token.\n",
      "for (int i = 0; i < n; ++i) {\n  total += weights[i] * inputs[i];\n}\n",
      "def encode(text: str) -> list[int]:\n    return [ord(c) for c in text]\n\n",
      "    if (status != OK) { return Error(\"unexpected status: \" + ToString(status)); }\n",
      "自然言語処理は、コンピュータが人間の言語を理解するための技術です。",
      "机器学习模型需要大量的训练数据才能取得良好的效果。",
      "한국어 문장도 여기에 포함되어 있습니다. ",
      "Résumé, naïve café, Straße, Ελληνικά και русский текст. ",
      "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n",
      "    \t// Indented comment with trailing spaces   \n",
  };
  constexpr size_t kCount = sizeof(kFragments) / sizeof(kFragments[0]);
  std::string text;
  uint32_t state = 12345;
  while (text.size() < kTextBytes) {
    state = state * 1664525u + 1013904223u;
    text += kFragments[(state >> 16) % kCount];
  }
  return text;
}

// ~100 KB of CJK ideographs without any space or punctuation: one pre-tokenized piece.
std::string CjkWithoutSpaces() {
  std::string text;
  for (uint32_t i = 0; text.size() < kTextBytes; ++i) {
    bora::tokenizer::AppendUtf8(0x4E00 + (i * 7919) % 20000, text);
  }
  return text;
}

void BM_Encode(benchmark::State& state, const Tokenizer* tokenizer, const std::string* text) {
  size_t tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = tokenizer->Encode(*text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_LoadTekken(benchmark::State& state, std::string path) {
  for (auto _ : state) {
    auto tokenizer = bora::tokenizer::LoadTekkenTokenizer(path);
    benchmark::DoNotOptimize(tokenizer.get());
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const std::string shared = SharedDir();
  if (shared.empty()) {
    std::fprintf(stderr,
                 "tokenizer_bench: shared data folder not found (set BORA_SHARED or place "
                 "../shared); nothing to run\n");
    return 0;
  }
  const std::string folder = shared + "/tokenizers/";

  // Loaded up front and kept alive for the whole run; a missing file is skipped.
  std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>> tokenizers;
  const std::string tekken = folder + "tekken_240718-reconstructed.json";
  if (fs::exists(tekken)) {
    tokenizers.emplace_back("tekken", bora::tokenizer::LoadTekkenTokenizer(tekken));
    benchmark::RegisterBenchmark("Load/tekken", BM_LoadTekken, tekken)
        ->Unit(benchmark::kMillisecond);
  }
  const std::pair<const char*, const char*> sentencepiece_files[] = {
      {"spm_v1", "tokenizer.model.v1"},
      {"spm_v2", "mistral_instruct_tokenizer_240216.model.v2"},
      {"spm_v3", "mistral_instruct_tokenizer_240323.model.v3"},
      {"spm_v7", "mistral_instruct_tokenizer_241114.model.v7"},
  };
  for (const auto& [name, file] : sentencepiece_files) {
    if (fs::exists(folder + file)) {
      tokenizers.emplace_back(name, bora::tokenizer::LoadSentencePieceTokenizer(folder + file));
    }
  }

  static const std::string kMixed = MixedText();
  static const std::string kCjk = CjkWithoutSpaces();
  static const std::string kRepeated(kTextBytes, 'a');
  const std::pair<const char*, const std::string*> inputs[] = {
      {"mixed", &kMixed}, {"cjk_no_spaces", &kCjk}, {"repeated_char", &kRepeated}};
  for (const auto& [tokenizer_name, tokenizer] : tokenizers) {
    for (const auto& [input_name, text] : inputs) {
      benchmark::RegisterBenchmark(("Encode/" + tokenizer_name + "/" + input_name).c_str(),
                                   BM_Encode, tokenizer.get(), text)
          ->Unit(benchmark::kMillisecond);
    }
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
