// Assembling the training stream and the eval sequences from the command-line data options.
#include "train/data/training_data.h"

#include "base/error.h"

namespace bora::train {

TrainingData LoadTrainingData(const TrainingDataOptions& options,
                              const tokenizer::Tokenizer& tokenizer) {
  if (options.data.empty()) throw InvalidArgument("no training data given (--data SRC)");
  if (!options.eval.empty() && options.eval_split > 0) {
    throw InvalidArgument("give either an eval set (--eval) or an eval split (--eval-split)");
  }
  const SampleTokenizer sample_tokenizer(tokenizer);
  std::vector<LoadedSource> sources =
      LoadDataSources(options.data, sample_tokenizer, options.validation);
  ValidationReport train_report;
  for (const auto& source : sources) {
    train_report.Merge(source.report, options.validation.max_errors);
  }
  ValidationReport eval_report;
  std::vector<TrainingSample> eval_samples;
  if (!options.eval.empty()) {
    for (auto& source : LoadDataSources(options.eval, sample_tokenizer, options.validation)) {
      eval_report.Merge(source.report, options.validation.max_errors);
      for (auto& sample : source.samples) eval_samples.push_back(std::move(sample));
    }
  } else {
    eval_samples = SplitEvalSamples(sources, options.eval_split, options.seed);
  }
  std::vector<PackedSequence> eval = PackSamples(eval_samples, options.seq_len, /*finite=*/true);
  return TrainingData{TrainingStream(std::move(sources), options.seq_len, options.seed),
                      std::move(eval), static_cast<int64_t>(eval_samples.size()),
                      std::move(train_report), std::move(eval_report)};
}

}  // namespace bora::train
