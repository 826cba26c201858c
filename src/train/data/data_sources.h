// Training data sources: `SRC[:WEIGHT],...` lists, the JSONL files of a folder, loading and
// validating them up front, and the deterministic train/eval split.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "train/data/sample_tokenizer.h"
#include "train/data/training_jsonl.h"

namespace bora::train {

struct DataSourceSpec {
  std::string path;     // a .jsonl file or a folder of them
  double weight = 1.0;  // relative sampling weight, > 0
};

// Parses "SRC[:WEIGHT][,SRC[:WEIGHT]...]". A trailing ":NUMBER" is the weight (the path may
// contain ':' before it); no weight means 1. Throws InvalidArgument for an empty item or a
// weight that is not a finite number > 0.
std::vector<DataSourceSpec> ParseDataSourceList(std::string_view text);

// The JSONL files of a source: the path itself when it is a file, else the *.jsonl files
// directly inside the folder, sorted by name. Throws IoError when the path does not exist and
// InvalidArgument for a folder without .jsonl files.
std::vector<std::string> ListSourceFiles(const std::string& path);

// One source, validated and tokenised.
struct LoadedSource {
  std::string path;
  double weight = 1.0;                  // normalised: the weights of one list sum to 1
  std::vector<TrainingSample> samples;  // the valid records, files by name then line order
  ValidationReport report;              // over all its files
};

// Reads every file of `spec`. Throws RecordError at the first invalid line unless
// options.skip_invalid, IoError for unreadable files and InvalidArgument when no valid record
// is left.
LoadedSource LoadDataSource(const DataSourceSpec& spec, const SampleTokenizer& tokenizer,
                            const ValidationOptions& options);

// Parses `list` and loads each source; the weights are normalised to sum to 1.
std::vector<LoadedSource> LoadDataSources(std::string_view list, const SampleTokenizer& tokenizer,
                                          const ValidationOptions& options);

// Moves a held-out share of every source into the returned eval samples: round(fraction * n)
// of a source's n samples (at least 1 when fraction > 0 and n >= 2; never all), picked by a
// shuffle seeded with (seed, source index). Eval samples keep source and file order, and so do
// the samples left for training. Depends only on fraction, seed and the sample counts.
// fraction in [0, 1); InvalidArgument otherwise.
std::vector<TrainingSample> SplitEvalSamples(std::vector<LoadedSource>& sources, double fraction,
                                             uint64_t seed);

}  // namespace bora::train
