// Packing: x/y/mask shifts, cut samples continuing as new blocks, block starts and positions,
// dropped all-masked pieces and samples, eval padding.
#include "train/data/sequence_packer.h"

#include <gtest/gtest.h>

namespace bora::train {
namespace {

TrainingSample Sample(std::vector<int32_t> tokens, std::vector<uint8_t> mask) {
  return TrainingSample{std::move(tokens), std::move(mask)};
}

using Ids = std::vector<int32_t>;
using Bits = std::vector<uint8_t>;

TEST(SequencePackerTest, CutSampleContinuesAsANewBlockAndEvalPadsTheLast) {
  const std::vector<TrainingSample> samples = {
      Sample({1, 10, 11, 12, 13, 14}, {0, 1, 1, 1, 1, 1}),  // x has 5 entries
      Sample({1, 20, 21}, {0, 1, 1})};                      // x has 2 entries
  auto finite = PackSamples(samples, 4, /*finite=*/true);
  ASSERT_EQ(finite.size(), 2u);
  EXPECT_EQ(finite[0].x, Ids({1, 10, 11, 12}));
  EXPECT_EQ(finite[0].y, Ids({10, 11, 12, 13}));
  EXPECT_EQ(finite[0].mask, Bits({1, 1, 1, 1}));
  EXPECT_EQ(finite[0].positions, Ids({0, 1, 2, 3}));
  EXPECT_EQ(finite[0].block_starts, Ids({0}));
  // The remainder of the first sample (13 → 14) is a block with positions from 0, then the
  // second sample, then one padding position (its own block).
  EXPECT_EQ(finite[1].x, Ids({13, 1, 20, 0}));
  EXPECT_EQ(finite[1].y, Ids({14, 20, 21, 0}));
  EXPECT_EQ(finite[1].mask, Bits({1, 1, 1, 0}));
  EXPECT_EQ(finite[1].positions, Ids({0, 0, 1, 0}));
  EXPECT_EQ(finite[1].block_starts, Ids({0, 1, 3}));
  EXPECT_EQ(finite[1].targets(), 3);

  // Infinite (training) mode never returns the partial last sequence.
  auto training = PackSamples(samples, 4, /*finite=*/false);
  ASSERT_EQ(training.size(), 1u);
  EXPECT_EQ(training[0].x, finite[0].x);
}

TEST(SequencePackerTest, MaskIsTheTargetTokensMask) {
  // tokens: BOS user user assistant EOS; mask[1:] is the mask of y.
  auto packed = PackSamples({Sample({1, 3, 4, 50, 2}, {0, 0, 0, 1, 1})}, 4, true);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(packed[0].x, Ids({1, 3, 4, 50}));
  EXPECT_EQ(packed[0].y, Ids({3, 4, 50, 2}));
  EXPECT_EQ(packed[0].mask, Bits({0, 0, 1, 1}));
}

TEST(SequencePackerTest, AllMaskedPiecesAreDroppedButTheRestOfTheSampleFollows) {
  // x has 6 entries; with seq_len 3 the first piece (targets 0,0,0) is dropped and the
  // second piece (targets 0,1,1) fills the sequence on its own, as mistral-finetune does.
  auto packed = PackSamples({Sample({1, 30, 31, 32, 33, 34, 35}, {0, 0, 0, 0, 0, 1, 1})}, 3, true);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(packed[0].x, Ids({32, 33, 34}));
  EXPECT_EQ(packed[0].y, Ids({33, 34, 35}));
  EXPECT_EQ(packed[0].mask, Bits({0, 1, 1}));
  EXPECT_EQ(packed[0].positions, Ids({0, 1, 2}));
  EXPECT_EQ(packed[0].block_starts, Ids({0}));
}

TEST(SequencePackerTest, SampleWithoutTargetsIsDroppedEntirely) {
  const auto trained = Sample({1, 10, 11}, {0, 1, 1});
  const auto untrained = Sample({1, 40, 41, 42}, {0, 0, 0, 0});
  auto with = PackSamples({untrained, trained, untrained, trained}, 3, true);
  auto without = PackSamples({trained, trained}, 3, true);
  ASSERT_EQ(with.size(), without.size());
  for (size_t i = 0; i < with.size(); ++i) {
    EXPECT_EQ(with[i].x, without[i].x);
    EXPECT_EQ(with[i].block_starts, without[i].block_starts);
  }
  EXPECT_TRUE(PackSamples({untrained}, 3, true).empty());
}

TEST(SequencePackerTest, LongSampleSpansSeveralSequences) {
  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 10; ++i) tokens.push_back(100 + i);
  std::vector<uint8_t> mask(tokens.size(), 1);
  mask[0] = 0;
  auto packed = PackSamples({Sample(tokens, mask)}, 3, true);  // x has 10 entries
  ASSERT_EQ(packed.size(), 4u);
  EXPECT_EQ(packed[2].x, Ids({105, 106, 107}));
  EXPECT_EQ(packed[2].positions, Ids({0, 1, 2}));
  EXPECT_EQ(packed[3].x, Ids({108, 0, 0}));
  EXPECT_EQ(packed[3].y, Ids({109, 0, 0}));
  EXPECT_EQ(packed[3].block_starts, Ids({0, 1}));
  for (const auto& sequence : packed) {
    EXPECT_EQ(sequence.size(), 3);
    EXPECT_EQ(sequence.y.size(), 3u);
    EXPECT_EQ(sequence.mask.size(), 3u);
    EXPECT_EQ(sequence.positions.size(), 3u);
  }
}

TEST(SequencePackerTest, ExactFitNeedsNoPadding) {
  auto packed = PackSamples({Sample({1, 2, 3}, {0, 1, 1}), Sample({1, 5, 6}, {0, 1, 1})}, 4, true);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(packed[0].x, Ids({1, 2, 1, 5}));
  EXPECT_EQ(packed[0].block_starts, Ids({0, 2}));
  EXPECT_EQ(packed[0].positions, Ids({0, 1, 0, 1}));
}

TEST(SequencePackerTest, StepwiseApiAndResumeInsideASample) {
  const auto sample = Sample({1, 10, 11, 12, 13, 14}, {0, 1, 1, 1, 1, 1});
  SequencePacker packer(2);
  packer.Begin(sample, 3);  // resume at x offset 3: x = 12, 13
  ASSERT_TRUE(packer.has_sample());
  auto sequence = packer.Step();
  ASSERT_TRUE(sequence.has_value());
  EXPECT_EQ(sequence->x, Ids({12, 13}));
  EXPECT_EQ(sequence->positions, Ids({0, 1}));
  EXPECT_FALSE(packer.has_sample());
  EXPECT_TRUE(packer.buffer_empty());
  EXPECT_FALSE(packer.Finish().has_value());
}

TEST(SequencePackerTest, BadArgumentsAreTypedErrors) {
  EXPECT_THROW(SequencePacker(0), InvalidArgument);
  EXPECT_THROW(SequencePacker(int64_t{1} << 30), InvalidArgument);
  SequencePacker packer(4);
  const auto sample = Sample({1, 2, 3}, {0, 1, 1});
  EXPECT_THROW(packer.Begin(sample, 5), InvalidArgument);
  const auto mismatched = Sample({1, 2, 3}, {0, 1});
  EXPECT_THROW(packer.Begin(mismatched), InvalidArgument);
  packer.Begin(sample);
  EXPECT_THROW(packer.Begin(sample), InvalidArgument);
}

}  // namespace
}  // namespace bora::train
