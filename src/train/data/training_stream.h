// The infinite, seeded training stream: weighted sources, per-epoch shuffles, packing, and a
// position that serialises to JSON so a resumed run continues with the same sequences.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/python_json.h"
#include "train/data/data_sources.h"
#include "train/data/sequence_packer.h"

namespace bora::train {

// Draws samples forever: for each sample a source is picked with probability equal to its
// (normalised) weight, and each source is walked in a shuffled order that is reshuffled every
// epoch. Samples are packed into sequences of seq_len (mistral-formats.md §8.3).
//
// Every random choice is a pure function of the seed and a counter (seed_derivation.h), so
// the position is just counters: SaveState()/RestoreState() carry it across processes.
// Move-only (the packer points into the owned samples).
class TrainingStream {
 public:
  // `sources` must be non-empty, each with at least one sample that has a target; weights
  // need not be normalised (they are here). Throws InvalidArgument.
  TrainingStream(std::vector<LoadedSource> sources, int64_t seq_len, uint64_t seed);
  TrainingStream(TrainingStream&&) = default;
  TrainingStream& operator=(TrainingStream&&) = default;
  TrainingStream(const TrainingStream&) = delete;
  TrainingStream& operator=(const TrainingStream&) = delete;

  // The next sequence (always has at least one target).
  PackedSequence Next();

  // The position after the last Next(): seed, seq_len, draw counter, per-source epoch and
  // cursor, the sample being packed and the offset inside it, and a fingerprint of every
  // source (sample count and a hash of its tokens and masks). Plain JSON (numbers, strings).
  tokenizer::OrderedJson SaveState() const;
  // Continues from a SaveState() of a stream built from the same data, seq_len and seed.
  // Throws InvalidArgument naming what differs (changed data, seed, seq_len) or a malformed
  // state; the stream is unchanged then.
  void RestoreState(const tokenizer::OrderedJson& state);

  const std::vector<LoadedSource>& sources() const { return sources_; }
  int64_t seq_len() const { return packer_.seq_len(); }
  uint64_t seed() const { return seed_; }
  // Samples drawn so far (all sources).
  uint64_t draws() const { return draws_; }
  // Current epoch of each source (how many times it was reshuffled).
  std::vector<int64_t> epochs() const;

 private:
  struct SourceCursor {
    int64_t epoch = 0;
    int64_t cursor = 0;          // next position in order
    std::vector<int64_t> order;  // this epoch's permutation of the sample indices
  };
  struct Current {
    int64_t source = -1;  // -1: the packer has no sample
    int64_t sample = 0;
  };

  std::vector<int64_t> Shuffle(size_t source, int64_t epoch) const;
  size_t ChooseSource(uint64_t draw) const;

  std::vector<LoadedSource> sources_;
  std::vector<double> cumulative_;      // cumulative normalised weights, last = 1
  std::vector<uint64_t> fingerprints_;  // per source
  uint64_t seed_;
  uint64_t draws_ = 0;
  std::vector<SourceCursor> cursors_;
  Current current_;
  SequencePacker packer_;
};

}  // namespace bora::train
