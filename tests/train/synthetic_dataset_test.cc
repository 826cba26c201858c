// The synthetic dataset generator: deterministic per seed and index, every record valid
// training data of its kind, and short, closed-set answers (what makes it quick to learn).
#include "train/data/synthetic_dataset.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "testdata.h"
#include "tokenizer/tokenizer_test_util.h"
#include "train/data/data_sources.h"
#include "train/data/training_record.h"

namespace bora::train {
namespace {

constexpr SyntheticKind kKinds[] = {SyntheticKind::kInstruct, SyntheticKind::kPretrain,
                                    SyntheticKind::kTools};

TEST(SyntheticDatasetTest, SameSeedSameRecordsOtherSeedOtherRecords) {
  for (SyntheticKind kind : kKinds) {
    SCOPED_TRACE(SyntheticKindName(kind));
    auto a = GenerateSyntheticDataset(kind, 200, 11);
    auto b = GenerateSyntheticDataset(kind, 200, 11);
    EXPECT_EQ(a, b);
    auto prefix = GenerateSyntheticDataset(kind, 50, 11);
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), a.begin()));
    auto other = GenerateSyntheticDataset(kind, 200, 12);
    EXPECT_NE(a, other);
    EXPECT_EQ(SyntheticRecord(kind, 11, 7), a[7]);
    EXPECT_GT(std::set<std::string>(a.begin(), a.end()).size(), 20u);  // varied
  }
}

TEST(SyntheticDatasetTest, EveryRecordIsValidTrainingDataOfItsKind) {
  for (SyntheticKind kind : kKinds) {
    SCOPED_TRACE(SyntheticKindName(kind));
    const auto lines = GenerateSyntheticDataset(kind, 500, 3);
    for (size_t i = 0; i < lines.size(); ++i) {
      TrainingRecord record = ParseTrainingRecord(lines[i], {"synthetic.jsonl", int64_t(i + 1)});
      EXPECT_EQ(record.kind,
                kind == SyntheticKind::kPretrain ? RecordKind::kPretrain : RecordKind::kInstruct);
      EXPECT_EQ(record.has_tools(), kind == SyntheticKind::kTools);
    }
  }
}

TEST(SyntheticDatasetTest, KindNames) {
  for (SyntheticKind kind : kKinds) EXPECT_EQ(ParseSyntheticKind(SyntheticKindName(kind)), kind);
  EXPECT_THROW(ParseSyntheticKind("chat"), InvalidArgument);
  EXPECT_THROW(GenerateSyntheticDataset(SyntheticKind::kInstruct, -1, 0), InvalidArgument);
}

TEST(SyntheticDatasetTest, WritesOneRecordPerLine) {
  testing::TempDir dir;
  WriteSyntheticDataset(dir.File("d.jsonl"), SyntheticKind::kTools, 30, 4);
  const std::string bytes = testing::ReadText(dir.File("d.jsonl"));
  ValidationReport report = ValidateTrainingFile(bytes, "d.jsonl");
  EXPECT_EQ(report.valid, 30);
  EXPECT_EQ(report.invalid, 0);
  EXPECT_EQ(report.function_calling, 30);
  EXPECT_THROW(WriteSyntheticDataset(dir.File("no/such/dir/d.jsonl"), SyntheticKind::kTools, 1, 0),
               IoError);
}

// The answers a model must learn: few distinct target sequences, each a handful of tokens.
TEST(SyntheticDatasetTest, InstructTargetsAreShortAndFromASmallSet) {
  BORA_REQUIRE_SHARED(shared);
  const auto& loaded =
      testing::SharedTokenizer(shared, "mistral_instruct_tokenizer_240323.model.v3");
  const SampleTokenizer sample_tokenizer(*loaded.tokenizer);
  std::set<std::vector<int32_t>> answers;
  std::set<int32_t> target_vocabulary;
  int64_t targets = 0, tokens = 0;
  for (const auto& line : GenerateSyntheticDataset(SyntheticKind::kInstruct, 1000, 5)) {
    TrainingSample sample = sample_tokenizer.Tokenize(ParseTrainingRecord(line, {"s", 1}));
    ASSERT_TRUE(sample.has_targets());
    std::vector<int32_t> answer;
    for (size_t i = 0; i < sample.tokens.size(); ++i) {
      if (!sample.mask[i]) continue;
      answer.push_back(sample.tokens[i]);
      target_vocabulary.insert(sample.tokens[i]);
      ++targets;
      if (sample.tokens[i] == loaded.tokenizer->eos_id()) {
        EXPECT_LE(answer.size(), 6u);
        answers.insert(answer);
        answer.clear();
      }
    }
    tokens += static_cast<int64_t>(sample.tokens.size());
  }
  EXPECT_EQ(answers.size(), 24u);            // 3 categories x 8 facts
  EXPECT_LE(target_vocabulary.size(), 40u);  // words, '.', EOS
  EXPECT_GT(targets * 6, tokens);            // > 1/6 of the tokens are targets
}

}  // namespace
}  // namespace bora::train
