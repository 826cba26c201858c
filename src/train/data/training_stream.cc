// Weighted, reshuffled, packed training sequences with a JSON-serialisable position.
#include "train/data/training_stream.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

#include "base/error.h"
#include "train/data/seed_derivation.h"

namespace bora::train {
namespace {

using tokenizer::OrderedJson;

constexpr char kStateFormat[] = "bora.train_data_position.v1";

// FNV-1a over the sample count, then every sample's length, tokens and mask.
uint64_t Fingerprint(const std::vector<TrainingSample>& samples) {
  uint64_t hash = 0xcbf29ce484222325ull;
  const auto mix = [&hash](uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      hash ^= (value >> (8 * i)) & 0xff;
      hash *= 0x100000001b3ull;
    }
  };
  mix(samples.size());
  for (const auto& sample : samples) {
    mix(sample.tokens.size());
    for (int32_t token : sample.tokens) mix(static_cast<uint32_t>(token));
    for (uint8_t m : sample.mask) mix(m);
  }
  return hash;
}

std::string Hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016" PRIx64, value);
  return text;
}

[[noreturn]] void BadState(const std::string& problem) {
  throw InvalidArgument("cannot resume the training data position: " + problem);
}

const OrderedJson& Field(const OrderedJson& object, const char* key, const std::string& where) {
  if (!object.is_object()) BadState(where + " is not an object");
  auto it = object.find(key);
  if (it == object.end()) BadState(where + " has no '" + key + "'");
  return *it;
}

uint64_t Unsigned(const OrderedJson& object, const char* key, const std::string& where,
                  uint64_t max) {
  const OrderedJson& value = Field(object, key, where);
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
    BadState(where + "." + key + " is not a non-negative integer");
  }
  const uint64_t number = value.get<uint64_t>();
  if (number > max) BadState(where + "." + key + " is out of range");
  return number;
}

}  // namespace

TrainingStream::TrainingStream(std::vector<LoadedSource> sources, int64_t seq_len, uint64_t seed)
    : sources_(std::move(sources)), seed_(seed), packer_(seq_len) {
  if (sources_.empty()) throw InvalidArgument("training data: no sources");
  double total = 0;
  for (const auto& source : sources_) {
    if (!(source.weight > 0) || !std::isfinite(source.weight)) {
      throw InvalidArgument(source.path + ": sampling weight must be > 0");
    }
    bool has_targets = false;
    for (const auto& sample : source.samples) has_targets = has_targets || sample.has_targets();
    if (!has_targets) {
      throw InvalidArgument(source.path +
                            ": no training targets (every record is empty or has weight 0)");
    }
    total += source.weight;
  }
  double sum = 0;
  for (size_t s = 0; s < sources_.size(); ++s) {
    sources_[s].weight /= total;
    sum += sources_[s].weight;
    cumulative_.push_back(sum);
    fingerprints_.push_back(Fingerprint(sources_[s].samples));
    cursors_.push_back({0, 0, Shuffle(s, 0)});
  }
  cumulative_.back() = 1.0;
}

std::vector<int64_t> TrainingStream::Shuffle(size_t source, int64_t epoch) const {
  std::vector<int64_t> order(sources_[source].samples.size());
  std::iota(order.begin(), order.end(), 0);
  Xoshiro256 rng =
      DerivedGenerator(seed_, SeedPurpose::kSourceShuffle,
                       (static_cast<uint64_t>(source) << 32) ^ static_cast<uint64_t>(epoch));
  for (size_t i = order.size(); i > 1; --i) {
    std::swap(order[i - 1], order[UniformBelow(rng, i)]);
  }
  return order;
}

size_t TrainingStream::ChooseSource(uint64_t draw) const {
  if (sources_.size() == 1) return 0;
  Xoshiro256 rng = DerivedGenerator(seed_, SeedPurpose::kSourceChoice, draw);
  const double u = rng.Uniform();
  for (size_t s = 0; s < cumulative_.size(); ++s) {
    if (u < cumulative_[s]) return s;
  }
  return cumulative_.size() - 1;
}

std::vector<int64_t> TrainingStream::epochs() const {
  std::vector<int64_t> result;
  for (const auto& cursor : cursors_) result.push_back(cursor.epoch);
  return result;
}

PackedSequence TrainingStream::Next() {
  while (true) {
    if (!packer_.has_sample()) {
      const size_t s = ChooseSource(draws_++);
      SourceCursor& cursor = cursors_[s];
      if (cursor.cursor == static_cast<int64_t>(cursor.order.size())) {
        ++cursor.epoch;
        cursor.cursor = 0;
        cursor.order = Shuffle(s, cursor.epoch);
      }
      current_ = {static_cast<int64_t>(s), cursor.order[cursor.cursor++]};
      packer_.Begin(sources_[s].samples[current_.sample]);
    }
    if (auto sequence = packer_.Step()) return std::move(*sequence);
  }
}

OrderedJson TrainingStream::SaveState() const {
  OrderedJson state = OrderedJson::object();
  state["format"] = kStateFormat;
  state["seed"] = seed_;
  state["seq_len"] = packer_.seq_len();
  state["draws"] = draws_;
  OrderedJson sources = OrderedJson::array();
  for (size_t s = 0; s < sources_.size(); ++s) {
    OrderedJson source = OrderedJson::object();
    source["path"] = sources_[s].path;
    source["samples"] = sources_[s].samples.size();
    source["fingerprint"] = Hex(fingerprints_[s]);
    source["epoch"] = cursors_[s].epoch;
    source["cursor"] = cursors_[s].cursor;
    sources.push_back(std::move(source));
  }
  state["sources"] = std::move(sources);
  if (packer_.has_sample()) {
    state["current"] = {
        {"source", current_.source}, {"sample", current_.sample}, {"offset", packer_.offset()}};
  } else {
    state["current"] = nullptr;
  }
  return state;
}

void TrainingStream::RestoreState(const OrderedJson& state) {
  const std::string where = "state";
  const OrderedJson& format = Field(state, "format", where);
  if (!format.is_string() || format != kStateFormat) {
    BadState("unknown format (expected \"" + std::string(kStateFormat) + "\")");
  }
  const uint64_t seed = Unsigned(state, "seed", where, UINT64_MAX);
  if (seed != seed_) {
    BadState("it was saved with seed " + std::to_string(seed) + ", this run uses " +
             std::to_string(seed_));
  }
  const uint64_t seq_len = Unsigned(state, "seq_len", where, UINT64_MAX);
  if (seq_len != static_cast<uint64_t>(packer_.seq_len())) {
    BadState("it was saved with seq_len " + std::to_string(seq_len) + ", this run uses " +
             std::to_string(packer_.seq_len()));
  }
  const uint64_t draws = Unsigned(state, "draws", where, UINT64_MAX);
  const OrderedJson& sources = Field(state, "sources", where);
  if (!sources.is_array() || sources.size() != sources_.size()) {
    BadState("it has " + std::to_string(sources.is_array() ? sources.size() : 0) +
             " data sources, this run has " + std::to_string(sources_.size()));
  }
  std::vector<SourceCursor> cursors;
  for (size_t s = 0; s < sources_.size(); ++s) {
    const std::string item = "sources[" + std::to_string(s) + "]";
    const uint64_t count = sources_[s].samples.size();
    const uint64_t samples = Unsigned(sources[s], "samples", item, UINT64_MAX);
    const OrderedJson& fingerprint = Field(sources[s], "fingerprint", item);
    if (samples != count || !fingerprint.is_string() || fingerprint != Hex(fingerprints_[s])) {
      BadState("the data of source " + std::to_string(s + 1) + " (" + sources_[s].path +
               ") changed: it had " + std::to_string(samples) + " samples, now " +
               std::to_string(count) + (samples == count ? " with different content" : ""));
    }
    SourceCursor cursor;
    cursor.epoch = static_cast<int64_t>(Unsigned(sources[s], "epoch", item, INT64_MAX));
    cursor.cursor = static_cast<int64_t>(Unsigned(sources[s], "cursor", item, count));
    cursor.order = Shuffle(s, cursor.epoch);
    cursors.push_back(std::move(cursor));
  }
  const OrderedJson& current = Field(state, "current", where);
  Current restored;
  int64_t offset = 0;
  if (!current.is_null()) {
    restored.source =
        static_cast<int64_t>(Unsigned(current, "source", "current", sources_.size() - 1));
    const auto& samples = sources_[restored.source].samples;
    restored.sample =
        static_cast<int64_t>(Unsigned(current, "sample", "current", samples.size() - 1));
    const uint64_t length = samples[restored.sample].tokens.size();
    offset = static_cast<int64_t>(Unsigned(current, "offset", "current", length - 1));
    if (offset + 1 >= static_cast<int64_t>(length)) BadState("current.offset is out of range");
  }
  // Everything checked: commit.
  draws_ = draws;
  cursors_ = std::move(cursors);
  current_ = restored;
  packer_ = SequencePacker(packer_.seq_len());
  if (restored.source >= 0) {
    packer_.Begin(sources_[restored.source].samples[restored.sample], offset);
  }
}

}  // namespace bora::train
