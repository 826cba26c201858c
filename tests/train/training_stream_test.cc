// The training stream: weighted source proportions, per-epoch reshuffles, resume from a
// serialised position (identical next sequences), refused mismatched states, and the
// deterministic train/eval split.
#include "train/data/training_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace bora::train {
namespace {

using tokenizer::OrderedJson;

// Sample with a recognisable id: tokens = [1, marker, marker + 1, ...] (length tokens), all
// targets after the BOS.
TrainingSample Marked(int32_t marker, int length = 2) {
  TrainingSample sample;
  sample.tokens.push_back(1);
  for (int i = 0; i < length - 1; ++i) sample.tokens.push_back(marker + i);
  sample.mask.assign(sample.tokens.size(), 1);
  sample.mask[0] = 0;
  return sample;
}

LoadedSource Source(const std::string& path, double weight, std::vector<TrainingSample> samples) {
  LoadedSource source;
  source.path = path;
  source.weight = weight;
  source.samples = std::move(samples);
  return source;
}

TEST(TrainingStreamTest, SourcesAreDrawnInProportionToTheirWeights) {
  // seq_len 1 and two-token samples: every Next() is exactly one sample, y[0] = its marker.
  std::vector<LoadedSource> sources;
  const double weights[] = {5, 3, 2};
  for (int s = 0; s < 3; ++s) {
    std::vector<TrainingSample> samples;
    for (int i = 0; i < 7; ++i) samples.push_back(Marked(1000 * (s + 1) + i));
    sources.push_back(Source("src" + std::to_string(s), weights[s], std::move(samples)));
  }
  TrainingStream stream(std::move(sources), 1, 42);
  EXPECT_NEAR(stream.sources()[0].weight, 0.5, 1e-12);  // normalised
  std::map<int, int> counts;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    PackedSequence sequence = stream.Next();
    ASSERT_EQ(sequence.y.size(), 1u);
    ++counts[sequence.y[0] / 1000 - 1];
  }
  EXPECT_NEAR(counts[0] / static_cast<double>(draws), 0.5, 0.015);
  EXPECT_NEAR(counts[1] / static_cast<double>(draws), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / static_cast<double>(draws), 0.2, 0.015);
  EXPECT_EQ(stream.draws(), static_cast<uint64_t>(draws));
}

TEST(TrainingStreamTest, EachEpochVisitsEverySampleOnceInANewOrder) {
  std::vector<TrainingSample> samples;
  for (int i = 0; i < 10; ++i) samples.push_back(Marked(100 + i));
  std::vector<LoadedSource> sources;
  sources.push_back(Source("only", 1, std::move(samples)));
  TrainingStream stream(std::move(sources), 1, 7);
  std::vector<std::vector<int32_t>> epochs(4);
  for (auto& epoch : epochs) {
    for (int i = 0; i < 10; ++i) epoch.push_back(stream.Next().y[0]);
    std::vector<int32_t> sorted = epoch;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 10; ++i) EXPECT_EQ(sorted[i], 100 + i);
  }
  EXPECT_EQ(stream.epochs(), std::vector<int64_t>({3}));
  std::set<std::vector<int32_t>> distinct(epochs.begin(), epochs.end());
  EXPECT_GE(distinct.size(), 3u);  // reshuffled (10! orders: a repeat is very unlikely)
  // Another seed gives another order.
  std::vector<TrainingSample> again;
  for (int i = 0; i < 10; ++i) again.push_back(Marked(100 + i));
  std::vector<LoadedSource> other_sources;
  other_sources.push_back(Source("only", 1, std::move(again)));
  TrainingStream other(std::move(other_sources), 1, 8);
  std::vector<int32_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(other.Next().y[0]);
  EXPECT_NE(first, epochs[0]);
}

// Two sources with samples of varied lengths, so that sequences cut samples.
std::vector<LoadedSource> VariedSources() {
  std::vector<LoadedSource> sources;
  for (int s = 0; s < 2; ++s) {
    std::vector<TrainingSample> samples;
    for (int i = 0; i < 9; ++i) {
      TrainingSample sample = Marked(10000 * (s + 1) + 100 * i, 2 + (i * 5 + s * 3) % 11);
      if (i % 4 == 1) sample.mask[1] = 0;  // some untrained tokens too
      samples.push_back(std::move(sample));
    }
    sources.push_back(Source("src" + std::to_string(s), s == 0 ? 2 : 1, std::move(samples)));
  }
  return sources;
}

void ExpectSameSequence(const PackedSequence& a, const PackedSequence& b) {
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.mask, b.mask);
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(a.block_starts, b.block_starts);
}

TEST(TrainingStreamTest, ResumeFromSavedStateGivesTheSameNextSequences) {
  constexpr int64_t kSeqLen = 7;
  TrainingStream uninterrupted(VariedSources(), kSeqLen, 123);
  std::vector<PackedSequence> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(uninterrupted.Next());

  for (int cut : {0, 1, 13, 37}) {
    SCOPED_TRACE(cut);
    TrainingStream first(VariedSources(), kSeqLen, 123);
    for (int i = 0; i < cut; ++i) ExpectSameSequence(first.Next(), expected[i]);
    // Through text, as a checkpoint stores it.
    const std::string saved = first.SaveState().dump();
    TrainingStream resumed(VariedSources(), kSeqLen, 123);
    resumed.RestoreState(OrderedJson::parse(saved));
    for (int i = cut; i < 60; ++i) ExpectSameSequence(resumed.Next(), expected[i]);
    EXPECT_EQ(resumed.SaveState(), uninterrupted.SaveState());
  }
  // Sequences really were cut: some block starts mid-sample (a block of positions from 0 whose
  // first x is not the BOS).
  bool cut_seen = false;
  for (const auto& sequence : expected) {
    for (int32_t start : sequence.block_starts) cut_seen = cut_seen || sequence.x[start] != 1;
  }
  EXPECT_TRUE(cut_seen);
}

TEST(TrainingStreamTest, StateRecordsThePositionInsideASample) {
  TrainingStream stream(VariedSources(), 3, 5);
  bool inside = false;
  for (int i = 0; i < 20 && !inside; ++i) {
    stream.Next();
    const OrderedJson state = stream.SaveState();
    inside = !state["current"].is_null() && state["current"]["offset"].get<int64_t>() > 0;
  }
  EXPECT_TRUE(inside);
  const OrderedJson state = stream.SaveState();
  EXPECT_EQ(state["format"], "bora.train_data_position.v1");
  EXPECT_EQ(state["sources"].size(), 2u);
  EXPECT_EQ(state["sources"][0]["samples"], 9);
}

TEST(TrainingStreamTest, MismatchedOrMalformedStatesAreRefusedAndChangeNothing) {
  TrainingStream stream(VariedSources(), 7, 123);
  for (int i = 0; i < 5; ++i) stream.Next();
  const OrderedJson saved = stream.SaveState();

  TrainingStream other_seed(VariedSources(), 7, 124);
  EXPECT_THROW(other_seed.RestoreState(saved), InvalidArgument);
  TrainingStream other_len(VariedSources(), 8, 123);
  EXPECT_THROW(other_len.RestoreState(saved), InvalidArgument);
  auto changed_sources = VariedSources();
  changed_sources[1].samples[4].tokens[1] += 1;
  TrainingStream changed(std::move(changed_sources), 7, 123);
  try {
    changed.RestoreState(saved);
    FAIL() << "changed data accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("src1"), std::string::npos) << error.what();
  }

  TrainingStream target(VariedSources(), 7, 123);
  const OrderedJson before = target.SaveState();
  std::vector<OrderedJson> bad(6, saved);
  bad[0]["format"] = "something else";
  bad[1]["sources"][0]["cursor"] = 1000;
  bad[2]["current"] = {{"source", 5}, {"sample", 0}, {"offset", 0}};
  bad[3]["draws"] = -1;
  bad[4].erase("sources");
  bad[5] = OrderedJson::array();
  for (const auto& state : bad) {
    EXPECT_THROW(target.RestoreState(state), InvalidArgument) << state.dump();
    EXPECT_EQ(target.SaveState(), before);
  }
}

TEST(TrainingStreamTest, SourcesWithoutTargetsAreRefused) {
  TrainingSample untrained = Marked(5, 3);
  std::fill(untrained.mask.begin(), untrained.mask.end(), 0);
  std::vector<LoadedSource> sources;
  sources.push_back(Source("good", 1, {Marked(1)}));
  sources.push_back(Source("weightless", 1, {untrained}));
  EXPECT_THROW(TrainingStream(std::move(sources), 4, 0), InvalidArgument);
  EXPECT_THROW(TrainingStream({}, 4, 0), InvalidArgument);
}

std::vector<LoadedSource> CountedSources(int first, int second) {
  std::vector<LoadedSource> sources;
  std::vector<TrainingSample> a, b;
  for (int i = 0; i < first; ++i) a.push_back(Marked(1000 + i));
  for (int i = 0; i < second; ++i) b.push_back(Marked(5000 + i));
  sources.push_back(Source("a", 1, std::move(a)));
  sources.push_back(Source("b", 1, std::move(b)));
  return sources;
}

std::vector<int32_t> Markers(const std::vector<TrainingSample>& samples) {
  std::vector<int32_t> markers;
  for (const auto& sample : samples) markers.push_back(sample.tokens[1]);
  return markers;
}

TEST(EvalSplitTest, DeterministicPerSourceShareInFileOrder) {
  auto sources = CountedSources(200, 40);
  auto eval = SplitEvalSamples(sources, 0.05, 9);
  ASSERT_EQ(eval.size(), 12u);  // round(0.05 * 200) + round(0.05 * 40)
  EXPECT_EQ(sources[0].samples.size(), 190u);
  EXPECT_EQ(sources[1].samples.size(), 38u);
  const auto markers = Markers(eval);
  EXPECT_TRUE(std::is_sorted(markers.begin(), markers.end()));
  EXPECT_EQ(std::count_if(markers.begin(), markers.end(), [](int32_t m) { return m >= 5000; }), 2);
  // Train and eval partition the samples; train keeps file order.
  auto train = Markers(sources[0].samples);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
  std::set<int32_t> all(train.begin(), train.end());
  for (int32_t m : Markers(sources[1].samples)) all.insert(m);
  for (int32_t m : markers) EXPECT_TRUE(all.insert(m).second);
  EXPECT_EQ(all.size(), 240u);

  auto again = CountedSources(200, 40);
  EXPECT_EQ(Markers(SplitEvalSamples(again, 0.05, 9)), markers);
  auto reseeded = CountedSources(200, 40);
  EXPECT_NE(Markers(SplitEvalSamples(reseeded, 0.05, 10)), markers);
}

TEST(EvalSplitTest, EdgeCases) {
  auto tiny = CountedSources(2, 1);
  auto eval = SplitEvalSamples(tiny, 0.01, 0);
  EXPECT_EQ(eval.size(), 1u);  // at least one from the 2-sample source, none from the single
  EXPECT_EQ(tiny[0].samples.size(), 1u);
  EXPECT_EQ(tiny[1].samples.size(), 1u);
  auto none = CountedSources(5, 5);
  EXPECT_TRUE(SplitEvalSamples(none, 0, 0).empty());
  EXPECT_THROW(SplitEvalSamples(none, 1.0, 0), InvalidArgument);
  EXPECT_THROW(SplitEvalSamples(none, -0.1, 0), InvalidArgument);
}

}  // namespace
}  // namespace bora::train
