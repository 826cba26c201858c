// The LoRA fine-tuning run behind `bora tune` and the jobs API: data, model, optimizer loop,
// periodic evaluation, checkpoints in mistral-finetune's layout with the full training state,
// metrics.jsonl, and exact resume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/dtype.h"
#include "dist/communicator.h"
#include "train/data/training_data.h"
#include "train/optimizer.h"

namespace bora::train {

struct TuneOptions {
  std::string model_dir;
  std::string out_dir;
  // data, eval, eval_split, seq_len, seed, validation.skip_invalid
  TrainingDataOptions data;
  std::optional<DType> base_dtype;  // frozen base format (f32, bf16, q8, q4); none: as stored
  int threads = 0;
  int64_t rank = 16;
  float scaling = 2.0f;
  float dropout = 0.0f;
  int64_t steps = 100;
  double lr = 1e-4;
  double warmup = 0.05;  // share of the steps spent warming up (OneCycleLR's pct_start)
  AdamWSettings adamw;
  double max_grad_norm = 1.0;
  int64_t batch = 1;       // sequences per micro-batch
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  int64_t ckpt_every = 0;  // 0: only after the last step
  int64_t eval_every = 0;  // 0: at every checkpoint; evaluation also runs before step 1
  uint64_t seed = 0;       // data order, LoRA init, dropout
  bool resume = false;     // continue from the latest checkpoint in out_dir
  // bf16 activations in the frozen weights' products (bf16/q8/q4 bases on CPUs with
  // AVX512-BF16), as PyTorch's bf16 training; false: f32 throughout.
  bool mixed_precision = true;
  // Data parallel (mpirun): the ranks split each step's micro-batches (rank r takes every N-th,
  // so N ranks with --grad-accum G equal one rank with --grad-accum N*G) and sum gradients, loss
  // and evaluation in one all-reduce; rank 0 alone writes metrics and checkpoints and sends a
  // resumed state to the others. Null or one rank: a single process.
  dist::Communicator* comm = nullptr;
};

struct TuneStart {
  int64_t first_step = 1;  // > 1 when resumed
  int64_t total_steps = 0;
  int64_t train_samples = 0;
  int64_t eval_sequences = 0;
  int64_t trainable_parameters = 0;
  int64_t tokens_per_step = 0;
  std::string base_dtype;
  std::string compute;       // "bf16 (mixed precision)" or "f32"
  std::string resumed_from;  // checkpoint directory, empty for a fresh run
  ValidationReport train_report;
};

struct StepReport {
  int64_t step = 0;
  int64_t total_steps = 0;
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_s = 0;
  double elapsed_s = 0;  // since the run (or the resume) started
};

struct EvalReport {
  int64_t step = 0;
  double loss = 0;
  int64_t targets = 0;
  double accuracy = 0;  // share of targets predicted exactly (argmax)
};

// Receives progress; ShouldStop() is polled between steps (cancellation).
class TuneObserver {
 public:
  virtual ~TuneObserver() = default;
  virtual void OnStart(const TuneStart&) {}
  virtual void OnStep(const StepReport&) {}
  virtual void OnEval(const EvalReport&) {}
  virtual void OnCheckpoint(int64_t /*step*/, const std::string& /*dir*/) {}
  virtual bool ShouldStop() { return false; }
};

struct TuneResult {
  int64_t steps_done = 0;
  double last_loss = 0;
  std::optional<double> first_eval_loss;
  std::optional<double> last_eval_loss;
  std::string last_checkpoint;  // .../checkpoint_NNNNNN (consolidated/ holds the adapter)
  bool stopped = false;         // ShouldStop() ended the run early
  double seconds = 0;
  int64_t tokens = 0;
};

// Runs the whole fine-tuning. Throws InvalidArgument (bad options, data, or a resume whose
// settings differ), IoError, ResourceExhausted (activations do not fit in memory).
TuneResult RunTune(const TuneOptions& options, TuneObserver& observer);

// OUT/checkpoints/checkpoint_{step:06d}
std::string CheckpointDir(const std::string& out_dir, int64_t step);

}  // namespace bora::train
