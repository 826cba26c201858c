// Fixed-length packing with cut samples, dropped all-masked pieces and eval padding.
#include "train/data/sequence_packer.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace bora::train {
namespace {

constexpr int64_t kMaxSeqLen = int64_t{1} << 24;

}  // namespace

int64_t PackedSequence::targets() const {
  return std::count_if(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
}

SequencePacker::SequencePacker(int64_t seq_len) : seq_len_(seq_len) {
  if (seq_len < 1 || seq_len > kMaxSeqLen) {
    throw InvalidArgument("sequence length must be in [1, " + std::to_string(kMaxSeqLen) +
                          "], got " + std::to_string(seq_len));
  }
}

bool SequencePacker::has_sample() const {
  return sample_ != nullptr && offset_ + 1 < static_cast<int64_t>(sample_->tokens.size());
}

void SequencePacker::Begin(const TrainingSample& sample, int64_t offset) {
  if (has_sample()) throw InvalidArgument("SequencePacker::Begin: the current sample is not done");
  if (sample.mask.size() != sample.tokens.size()) {
    throw InvalidArgument("SequencePacker::Begin: mask and tokens differ in length");
  }
  if (offset < 0 || offset > std::max<int64_t>(0, static_cast<int64_t>(sample.tokens.size()) - 1)) {
    throw InvalidArgument("SequencePacker::Begin: offset " + std::to_string(offset) +
                          " is outside the sample");
  }
  sample_ = &sample;
  offset_ = offset;
}

PackedSequence SequencePacker::TakeBuffer() {
  PackedSequence full = std::move(buffer_);
  buffer_ = PackedSequence();
  return full;
}

std::optional<PackedSequence> SequencePacker::Step() {
  while (has_sample()) {
    // The sample's x view has tokens.size() - 1 entries; x[i] = tokens[i], y[i] = tokens[i + 1].
    const int64_t length = static_cast<int64_t>(sample_->tokens.size()) - 1;
    const int64_t room = seq_len_ - static_cast<int64_t>(buffer_.x.size());
    const int64_t size = std::min(room, length - offset_);
    const auto tokens = sample_->tokens.begin() + offset_;
    const auto targets = sample_->mask.begin() + offset_ + 1;
    offset_ += size;
    if (std::none_of(targets, targets + size, [](uint8_t m) { return m != 0; })) continue;
    buffer_.block_starts.push_back(static_cast<int32_t>(buffer_.x.size()));
    buffer_.x.insert(buffer_.x.end(), tokens, tokens + size);
    buffer_.y.insert(buffer_.y.end(), tokens + 1, tokens + 1 + size);
    buffer_.mask.insert(buffer_.mask.end(), targets, targets + size);
    for (int64_t i = 0; i < size; ++i) buffer_.positions.push_back(static_cast<int32_t>(i));
    if (static_cast<int64_t>(buffer_.x.size()) == seq_len_) {
      PackedSequence full = TakeBuffer();
      if (full.targets() > 0) return full;
    }
  }
  sample_ = nullptr;
  offset_ = 0;
  return std::nullopt;
}

std::optional<PackedSequence> SequencePacker::Finish() {
  if (buffer_.x.empty()) return std::nullopt;
  const int64_t padding = seq_len_ - static_cast<int64_t>(buffer_.x.size());
  if (padding > 0) {
    buffer_.block_starts.push_back(static_cast<int32_t>(buffer_.x.size()));
    buffer_.x.insert(buffer_.x.end(), padding, 0);
    buffer_.y.insert(buffer_.y.end(), padding, 0);
    buffer_.mask.insert(buffer_.mask.end(), padding, 0);
    for (int64_t i = 0; i < padding; ++i) buffer_.positions.push_back(static_cast<int32_t>(i));
  }
  return TakeBuffer();
}

std::vector<PackedSequence> PackSamples(const std::vector<TrainingSample>& samples, int64_t seq_len,
                                        bool finite) {
  SequencePacker packer(seq_len);
  std::vector<PackedSequence> sequences;
  for (const auto& sample : samples) {
    packer.Begin(sample);
    while (packer.has_sample()) {
      if (auto sequence = packer.Step()) sequences.push_back(std::move(*sequence));
    }
  }
  if (finite) {
    if (auto last = packer.Finish()) sequences.push_back(std::move(*last));
  }
  return sequences;
}

}  // namespace bora::train
