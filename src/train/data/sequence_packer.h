// Packing tokenised samples into fixed-length training sequences with per-block positions, as
// mistral-finetune's sequence_iterator (mistral-formats.md §8.3).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "train/data/sample_tokenizer.h"

namespace bora::train {

// One training sequence of seq_len positions. Blocks are whole samples or pieces of a cut
// sample; attention never crosses a block (block-diagonal causal mask) and positions restart
// at 0 in every block.
struct PackedSequence {
  std::vector<int32_t> x;             // [seq_len] input ids
  std::vector<int32_t> y;             // [seq_len] target ids: y[i] follows x[i] in its sample
  std::vector<uint8_t> mask;          // [seq_len] 1 where y[i] is a training target
  std::vector<int32_t> positions;     // [seq_len] RoPE position of x[i] inside its block
  std::vector<int32_t> block_starts;  // offsets in x where blocks begin: [0] == 0, ascending

  int64_t size() const { return static_cast<int64_t>(x.size()); }
  int64_t targets() const;  // number of mask entries set
};

// Cuts samples into x = tokens[:-1], y = tokens[1:], mask = mask[1:] and fills sequences of
// seq_len in order. A sample that does not fit in the room left is cut and its remainder opens
// the next sequence as a new block. A piece whose mask is all 0 is dropped (the rest of its
// sample still follows); a full sequence without any target is not returned.
//
// Usage: Begin(sample); then call Step() until has_sample() is false, collecting the
// sequences it returns; in finite (eval) mode call Finish() after the last sample.
class SequencePacker {
 public:
  // seq_len in [1, 2^24]; InvalidArgument otherwise.
  explicit SequencePacker(int64_t seq_len);

  int64_t seq_len() const { return seq_len_; }

  // Starts on `sample` at x offset `offset` (0: from its start; a restored cursor may resume
  // inside it). The sample is read by pointer until has_sample() turns false: keep it alive
  // and unmoved. Requires !has_sample().
  void Begin(const TrainingSample& sample, int64_t offset = 0);
  // Whether the current sample still has tokens to pack.
  bool has_sample() const;
  // Next x offset in the current sample (meaningful while has_sample()).
  int64_t offset() const { return offset_; }
  // Whether no partial sequence is buffered.
  bool buffer_empty() const { return buffer_.x.empty(); }

  // Packs the current sample until a sequence completes (returned when it has a target) or
  // the sample is used up (nullopt).
  std::optional<PackedSequence> Step();

  // Finite mode: the buffered partial sequence padded to seq_len with id 0 and mask 0 (the
  // padding is a block of its own), or nullopt when nothing is buffered.
  std::optional<PackedSequence> Finish();

 private:
  PackedSequence TakeBuffer();

  int64_t seq_len_;
  const TrainingSample* sample_ = nullptr;
  int64_t offset_ = 0;
  PackedSequence buffer_;  // the partial sequence being filled
};

// Packs `samples` in order. finite: the last partial sequence is padded and returned too
// (evaluation); otherwise it is left out.
std::vector<PackedSequence> PackSamples(const std::vector<TrainingSample>& samples, int64_t seq_len,
                                        bool finite);

}  // namespace bora::train
