// `bora tune --model DIR --data SRC --out DIR`: LoRA fine-tuning on mistral-finetune JSONL data
// with a live progress line (step, loss, eval loss, tokens/s, ETA) and a final summary.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "dist/world.h"
#include "model/weights.h"
#include "train/tuner.h"

namespace bora::app {
namespace {

struct TuneFlags {
  train::TuneOptions options;
  std::string dtype;
  std::string data;
  std::string eval;
  double eval_split = 0;
  bool skip_invalid = false;
  bool quiet = false;
};

std::string Duration(double seconds) {
  char text[32];
  const long long s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(text, sizeof(text), "%lldm%02llds", s / 60, s % 60);
  }
  return text;
}

// Progress on stderr: one redrawn line on a terminal, a log line every 10 % otherwise.
class ProgressPrinter : public train::TuneObserver {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), interactive_(::isatty(2) != 0) {}

  void OnStart(const train::TuneStart& start) override {
    first_step_ = start.first_step;
    total_ = start.total_steps;
    std::fprintf(stderr,
                 "tune: %lld training samples (%s), %lld eval sequences, %lld trainable "
                 "parameters, base weights %s, compute %s, %lld tokens per step\n",
                 static_cast<long long>(start.train_samples), start.train_report.Summary().c_str(),
                 static_cast<long long>(start.eval_sequences),
                 static_cast<long long>(start.trainable_parameters), start.base_dtype.c_str(),
                 start.compute.c_str(), static_cast<long long>(start.tokens_per_step));
    if (!start.resumed_from.empty()) {
      std::fprintf(stderr, "tune: resuming from %s at step %lld\n", start.resumed_from.c_str(),
                   static_cast<long long>(start.first_step));
    }
  }

  void OnStep(const train::StepReport& r) override {
    if (quiet_) return;
    const double done = static_cast<double>(r.step - first_step_ + 1);
    const double eta = r.elapsed_s / done * static_cast<double>(r.total_steps - r.step);
    char eval[48] = "";
    if (eval_loss_ >= 0) std::snprintf(eval, sizeof(eval), "  eval %.4f", eval_loss_);
    char line[256];
    std::snprintf(line, sizeof(line), "step %lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s  ETA %s",
                  static_cast<long long>(r.step), static_cast<long long>(r.total_steps), r.loss,
                  eval, r.lr, r.tokens_per_s, Duration(eta).c_str());
    if (interactive_) {
      std::fprintf(stderr, "\r\033[K%s", line);
      std::fflush(stderr);
      return;
    }
    const int64_t every = std::max<int64_t>(1, total_ / 10);
    if (r.step % every == 0 || r.step == r.total_steps || r.step == first_step_) {
      std::fprintf(stderr, "%s\n", line);
    }
  }

  void OnEval(const train::EvalReport& r) override {
    eval_loss_ = r.loss;
    if (quiet_) return;
    if (interactive_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "eval at step %lld: loss %.4f over %lld targets\n",
                 static_cast<long long>(r.step), r.loss, static_cast<long long>(r.targets));
  }

  void OnCheckpoint(int64_t step, const std::string& dir) override {
    if (quiet_) return;
    if (interactive_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "checkpoint at step %lld: %s\n", static_cast<long long>(step),
                 dir.c_str());
  }

 private:
  bool quiet_;
  bool interactive_;
  int64_t first_step_ = 1;
  int64_t total_ = 0;
  double eval_loss_ = -1;
};

int RunTuneCommand(TuneFlags& flags) {
#ifdef __GLIBC__
  // A training step allocates and frees the same large activation buffers every step; by
  // default glibc maps each one fresh (and the kernel zeroes every page: 14 % of a 1b step).
  // Keeping them in the heap makes later steps reuse the memory.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest accepted value
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  train::TuneOptions& o = flags.options;
  if (!flags.dtype.empty()) o.base_dtype = model::ParseWeightDType(flags.dtype);
  o.data.data = flags.data;
  o.data.eval = flags.eval;
  o.data.eval_split = flags.eval_split;
  o.data.validation.skip_invalid = flags.skip_invalid;
  // Under mpirun: data parallel over the world's ranks (rank 0 prints, logs and checkpoints).
  if (dist::World::Get().size() > 1) o.comm = &dist::World::Get().comm();
  ProgressPrinter printer(flags.quiet || dist::World::Get().rank() != 0);
  const train::TuneResult result = train::RunTune(o, printer);
  std::fprintf(stderr, "\n");
  std::printf("trained %lld steps in %.1f s (%.0f tokens/s)",
              static_cast<long long>(result.steps_done), result.seconds,
              result.seconds > 0 ? static_cast<double>(result.tokens) / result.seconds : 0.0);
  std::printf(", last loss %.4f", result.last_loss);
  if (result.first_eval_loss && result.last_eval_loss) {
    std::printf(", eval loss %.4f -> %.4f", *result.first_eval_loss, *result.last_eval_loss);
  }
  std::printf("\n");
  if (!result.last_checkpoint.empty()) {
    std::printf(
        "adapter: %s/consolidated (serve it with: bora serve --model %s --lora "
        "NAME=%s/consolidated)\n",
        result.last_checkpoint.c_str(), o.model_dir.c_str(), result.last_checkpoint.c_str());
  }
  std::printf("metrics: %s/metrics.jsonl\n", o.out_dir.c_str());
  return result.stopped ? 1 : 0;
}

}  // namespace

Command RegisterTune(CLI::App& app) {
  auto flags = std::make_shared<TuneFlags>();
  train::TuneOptions& o = flags->options;
  CLI::App* sub = app.add_subcommand(
      "tune",
      "Fine-tune a LoRA adapter on mistral-finetune JSONL data (pretrain {\"text\"}, instruct\n"
      "{\"messages\"}, function calling {\"messages\", \"tools\"}), tokenised with the v3 "
      "instruct\n"
      "format. Writes OUT/checkpoints/checkpoint_NNNNNN/consolidated/ (lora.safetensors,\n"
      "params.json, tokenizer: mistral-finetune's layout) with the full training state for\n"
      "--resume, and OUT/metrics.jsonl.");
  sub->add_option("--model", o.model_dir, "Base model folder (Mistral-native or Hugging Face) or GGUF file (the frozen base)")
      ->required();
  sub->add_option(
         "--data", flags->data,
         "Training data: SRC[:WEIGHT][,SRC[:WEIGHT]...], SRC a .jsonl file or a folder of them")
      ->required();
  auto* eval = sub->add_option("--eval", flags->eval, "Held-out data: SRC[,SRC...]");
  sub->add_option("--eval-split", flags->eval_split,
                  "Share of the training samples held out for evaluation when --eval is not given")
      ->check(CLI::Range(0.0, 0.9))
      ->excludes(eval);
  sub->add_option("--out", o.out_dir, "Run folder (checkpoints, metrics.jsonl)")->required();
  sub->add_option("--dtype", flags->dtype,
                  "Frozen base weights: f32, bf16, q8 or q4 (QLoRA-style; default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  sub->add_option("--rank", o.rank, "LoRA rank")->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("--scaling", o.scaling, "LoRA scaling (a fixed multiplier, not alpha/rank)")
      ->capture_default_str();
  sub->add_option("--dropout", o.dropout, "LoRA dropout")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--steps", o.steps, "Optimizer steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--lr", o.lr, "Peak learning rate (one-cycle: cosine warmup, cosine decay)")
      ->capture_default_str();
  sub->add_option("--warmup", o.warmup, "Share of the steps spent warming up")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--weight-decay", o.adamw.weight_decay, "AdamW weight decay")
      ->capture_default_str();
  sub->add_option("--max-grad-norm", o.max_grad_norm, "Gradient clipping (0: off)")
      ->capture_default_str();
  sub->add_option("--seq-len", o.data.seq_len, "Tokens per packed training sequence")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--batch", o.batch, "Sequences per micro-batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--ckpt-every", o.ckpt_every, "Checkpoint every N steps (0: only at the end)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--eval-every", o.eval_every, "Evaluate every N steps (0: at each checkpoint)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", o.seed, "Seed for data order, LoRA initialisation and dropout")
      ->capture_default_str();
  sub->add_flag(
      "--f32-compute", [flags](int64_t) { flags->options.mixed_precision = false; },
      "f32 activations in the base weights' products (default: bf16 mixed precision "
      "for bf16/q8/q4 bases on CPUs with AVX512-BF16)");
  sub->add_flag("--resume", o.resume, "Continue from the latest checkpoint in --out (same flags)");
  sub->add_flag("--skip-invalid", flags->skip_invalid,
                "Skip invalid JSONL lines (reported with counts) instead of stopping at the first");
  sub->add_option("-t,--threads", o.threads, "Threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  sub->add_flag("-q,--quiet", flags->quiet, "No progress lines");
  return {sub, [flags] { return RunTuneCommand(*flags); }};
}

}  // namespace bora::app
