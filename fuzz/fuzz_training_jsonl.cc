// libFuzzer target: arbitrary bytes as a training JSONL file give a validation report, never a
// crash; valid records are tokenised (SentencePiece v3 when found, and a synthetic Tekken
// file), packed, and streamed with a save/restore round trip, checking the packing invariants.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer_fuzz_common.h"
#include "train/data/training_jsonl.h"
#include "train/data/training_stream.h"

namespace {

using bora::fuzz::Require;
using namespace bora::train;

struct Tokenizers {
  std::vector<bora::tokenizer::LoadedTokenizer> loaded;
};

// The shared SentencePiece v3 file (what mistral-finetune uses for 32768-vocab models) when
// found, and always the synthetic Tekken file (its special table has every v3 control token).
const Tokenizers& LoadTokenizers() {
  static const Tokenizers tokenizers = [] {
    Tokenizers result;
    const std::string shared = bora::fuzz::FindSharedTokenizers();
    const std::string path = shared + "/mistral_instruct_tokenizer_240323.model.v3";
    std::error_code error;
    if (!shared.empty() && std::filesystem::is_regular_file(path, error)) {
      result.loaded.push_back(bora::tokenizer::LoadTokenizer(path));
    } else {
      std::fprintf(stderr, "fuzz: SentencePiece v3 tokenizer not found; it is left out\n");
    }
    result.loaded.push_back(bora::tokenizer::ParseTokenizer(
        bora::fuzz::SyntheticTekken({"ab", "th", "the", " t", "in", "\n\n", "12", "{\""}),
        "synthetic-tekken.json"));
    return result;
  }();
  return tokenizers;
}

void CheckSample(const TrainingSample& sample, const bora::tokenizer::Tokenizer& tokenizer) {
  Require(sample.tokens.size() >= 2, "a sample has fewer than two tokens");
  Require(sample.tokens.size() == sample.mask.size(), "tokens and mask differ in length");
  Require(sample.tokens[0] == tokenizer.bos_id() && sample.mask[0] == 0,
          "a sample does not start with an untrained BOS");
  for (size_t i = 0; i < sample.tokens.size(); ++i) {
    Require(sample.tokens[i] >= 0 && sample.tokens[i] < tokenizer.vocab_size(),
            "a sample token is out of range");
    Require(sample.mask[i] <= 1, "a mask entry is not 0 or 1");
  }
}

void CheckSequence(const PackedSequence& sequence, int64_t seq_len) {
  Require(sequence.size() == seq_len && sequence.y.size() == sequence.x.size() &&
              sequence.mask.size() == sequence.x.size() &&
              sequence.positions.size() == sequence.x.size(),
          "a packed sequence has the wrong length");
  Require(!sequence.block_starts.empty() && sequence.block_starts[0] == 0,
          "block_starts does not start at 0");
  for (size_t b = 0; b < sequence.block_starts.size(); ++b) {
    const int64_t start = sequence.block_starts[b];
    const int64_t end =
        b + 1 < sequence.block_starts.size() ? sequence.block_starts[b + 1] : seq_len;
    Require(start < end && end <= seq_len, "block_starts not strictly ascending");
    for (int64_t i = start; i < end; ++i) {
      Require(sequence.positions[i] == i - start, "positions do not restart per block");
      if (i + 1 < end) Require(sequence.y[i] == sequence.x[i + 1], "y is not x shifted by one");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const ValidationReport plain = ValidateTrainingFile(bytes, "fuzz.jsonl", nullptr, 3);
  Require(plain.valid + plain.invalid == plain.lines, "report counts do not add up");
  Require(plain.errors.size() <= 3 && plain.errors.size() <= static_cast<size_t>(plain.invalid),
          "report keeps too many errors");
  try {
    (void)plain.ToJson().dump();
  } catch (const std::exception&) {
    Require(false, "the report is not valid JSON text (invalid UTF-8 in a message)");
  }
  const int64_t seq_len = 1 + (size > 0 ? data[0] % 48 : 0);
  for (const auto& loaded : LoadTokenizers().loaded) {
    const SampleTokenizer tokenizer(*loaded.tokenizer);
    ValidationOptions options;
    options.skip_invalid = true;
    ValidationReport report;
    std::vector<TrainingSample> samples;
    ReadTrainingJsonl(bytes, "fuzz.jsonl", &tokenizer, options, report, &samples);
    Require(report.valid == static_cast<int64_t>(samples.size()), "valid count != samples");
    Require(report.valid <= plain.valid, "tokenising made more records valid");
    bool any_targets = false;
    for (const auto& sample : samples) {
      CheckSample(sample, *loaded.tokenizer);
      any_targets = any_targets || sample.has_targets();
    }
    for (const auto& sequence : PackSamples(samples, seq_len, /*finite=*/true)) {
      CheckSequence(sequence, seq_len);
    }
    if (!any_targets) continue;
    // Stream a few sequences, save, and check that a restored stream continues identically.
    LoadedSource source;
    source.path = "fuzz.jsonl";
    source.samples = samples;
    std::vector<LoadedSource> first_sources = {source};
    TrainingStream first(std::move(first_sources), seq_len, size);
    for (int i = 0; i < 3; ++i) CheckSequence(first.Next(), seq_len);
    const auto state = first.SaveState();
    std::vector<LoadedSource> second_sources = {source};
    TrainingStream second(std::move(second_sources), seq_len, size);
    second.RestoreState(state);
    for (int i = 0; i < 2; ++i) {
      const PackedSequence a = first.Next();
      const PackedSequence b = second.Next();
      Require(a.x == b.x && a.y == b.y && a.mask == b.mask && a.block_starts == b.block_starts,
              "a restored stream differs");
    }
  }
  return 0;
}
