// Source lists, folder listing, up-front loading and the seeded train/eval split.
#include "train/data/data_sources.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "train/data/seed_derivation.h"

namespace bora::train {
namespace {

namespace fs = std::filesystem;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The weight after the last ':' of `item`, when that suffix is a complete number.
std::optional<double> TrailingWeight(std::string_view item, size_t colon) {
  const std::string suffix(Trim(item.substr(colon + 1)));
  if (suffix.empty()) return std::nullopt;
  size_t used = 0;
  double weight = 0;
  try {
    weight = std::stod(suffix, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != suffix.size()) return std::nullopt;
  return weight;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open training data file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw IoError(path + ": cannot read training data file");
  return bytes.str();
}

}  // namespace

std::vector<DataSourceSpec> ParseDataSourceList(std::string_view text) {
  std::vector<DataSourceSpec> specs;
  size_t start = 0;
  while (true) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = Trim(text.substr(start, end - start));
    if (item.empty()) {
      throw InvalidArgument("data sources: empty item in '" + std::string(text) +
                            "' (expected SRC[:WEIGHT][,SRC[:WEIGHT]...])");
    }
    DataSourceSpec spec;
    spec.path = std::string(item);
    if (size_t colon = item.rfind(':'); colon != std::string_view::npos) {
      if (auto weight = TrailingWeight(item, colon)) {
        if (!std::isfinite(*weight) || *weight <= 0) {
          throw InvalidArgument("data sources: weight of '" + std::string(item.substr(0, colon)) +
                                "' must be a number > 0, got " +
                                std::string(Trim(item.substr(colon + 1))));
        }
        spec.weight = *weight;
        spec.path = std::string(Trim(item.substr(0, colon)));
        if (spec.path.empty()) {
          throw InvalidArgument("data sources: '" + std::string(item) +
                                "' has a weight but no path");
        }
      }
    }
    specs.push_back(std::move(spec));
    if (end == text.size()) break;
    start = end + 1;
  }
  return specs;
}

std::vector<std::string> ListSourceFiles(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error || !fs::exists(status)) throw IoError(path + ": no such training data file or folder");
  if (!fs::is_directory(status)) return {path};
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(path, error)) {
    if (entry.path().extension() == ".jsonl" && entry.is_regular_file()) {
      files.push_back(entry.path().string());
    }
  }
  if (error) throw IoError(path + ": cannot list folder: " + error.message());
  if (files.empty()) throw InvalidArgument(path + ": folder has no .jsonl files");
  std::sort(files.begin(), files.end());
  return files;
}

LoadedSource LoadDataSource(const DataSourceSpec& spec, const SampleTokenizer& tokenizer,
                            const ValidationOptions& options) {
  LoadedSource source;
  source.path = spec.path;
  source.weight = spec.weight;
  for (const auto& file : ListSourceFiles(spec.path)) {
    ValidationReport report;
    ReadTrainingJsonl(ReadFileBytes(file), file, &tokenizer, options, report, &source.samples);
    source.report.Merge(report, options.max_errors);
  }
  if (source.samples.empty()) {
    throw InvalidArgument(spec.path + ": no valid training records (" + source.report.Summary() +
                          ")");
  }
  return source;
}

std::vector<LoadedSource> LoadDataSources(std::string_view list, const SampleTokenizer& tokenizer,
                                          const ValidationOptions& options) {
  std::vector<LoadedSource> sources;
  double total = 0;
  for (const auto& spec : ParseDataSourceList(list)) {
    sources.push_back(LoadDataSource(spec, tokenizer, options));
    total += spec.weight;
  }
  for (auto& source : sources) source.weight /= total;
  return sources;
}

std::vector<TrainingSample> SplitEvalSamples(std::vector<LoadedSource>& sources, double fraction,
                                             uint64_t seed) {
  if (!(fraction >= 0 && fraction < 1)) {
    throw InvalidArgument("eval split must be in [0, 1), got " + std::to_string(fraction));
  }
  std::vector<TrainingSample> eval;
  if (fraction == 0) return eval;
  for (size_t s = 0; s < sources.size(); ++s) {
    std::vector<TrainingSample>& samples = sources[s].samples;
    const int64_t count = static_cast<int64_t>(samples.size());
    int64_t held_out = std::llround(fraction * static_cast<double>(count));
    if (count >= 2) held_out = std::clamp<int64_t>(held_out, 1, count - 1);
    if (count < 2) held_out = 0;
    if (held_out == 0) continue;
    // Fisher-Yates shuffle of the indices; the first `held_out` go to eval.
    std::vector<int64_t> order(count);
    std::iota(order.begin(), order.end(), 0);
    Xoshiro256 rng = DerivedGenerator(seed, SeedPurpose::kEvalSplit, s);
    for (int64_t i = count - 1; i > 0; --i) {
      std::swap(order[i], order[UniformBelow(rng, static_cast<uint64_t>(i) + 1)]);
    }
    std::vector<uint8_t> is_eval(count, 0);
    for (int64_t i = 0; i < held_out; ++i) is_eval[order[i]] = 1;
    std::vector<TrainingSample> train;
    train.reserve(count - held_out);
    for (int64_t i = 0; i < count; ++i) {
      (is_eval[i] ? eval : train).push_back(std::move(samples[i]));
    }
    samples = std::move(train);
  }
  return eval;
}

}  // namespace bora::train
