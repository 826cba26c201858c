// Runs queued fine-tuning jobs through train::RunTune on one background thread.
#include "server/finetune/training_worker.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/error.h"
#include "server/finetune/distributed_jobs.h"
#include "train/data/training_data.h"
#include "train/tuner.h"

namespace bora::server {
namespace {

// Nice value of the fine-tuning threads (0 = normal, 19 = lowest): inference requests preempt
// training steps whenever both want the CPU.
constexpr int kTrainingNice = 10;

namespace fs = std::filesystem;

Json NumberOrNull(const std::optional<double>& value) {
  return value ? Json(*value) : Json(nullptr);
}

// "PATH:WEIGHT,PATH:WEIGHT..." for the training data loader.
std::string SourceList(const std::vector<TrainingFileRef>& refs, const FileStore& files) {
  std::string list;
  for (const TrainingFileRef& ref : refs) {
    if (!list.empty()) list += ',';
    list += files.PathOf(ref.file_id);
    list += ':';
    list += std::to_string(ref.weight);
  }
  return list;
}

}  // namespace

std::string FineTunedModelName(const JobRecord& job) {
  std::string name = "ft:" + job.model + ":";
  if (job.suffix && !job.suffix->empty()) name += *job.suffix + ":";
  return name + job.id.substr(0, 8);
}

// Turns the trainer's progress into job events and checkpoints; polled for cancellation.
class TrainingWorker::Observer : public train::TuneObserver {
 public:
  Observer(TrainingWorker& worker, const JobRecord& job, const std::string& out_dir)
      : worker_(worker), job_(job), out_dir_(out_dir) {}

  void OnStart(const train::TuneStart& start) override {
    tokens_per_step_ = start.tokens_per_step;
    total_steps_ = start.total_steps;
    Json extra = {{"trainable_parameters", start.trainable_parameters},
                  {"base_dtype", start.base_dtype}};
    if (!start.resumed_from.empty()) {
      // The steps after the checkpoint are redone: their logged metrics go.
      worker_.jobs_.ForgetAfter(job_.id, start.first_step - 1);
      extra["resumed_from_step"] = start.first_step - 1;
    }
    std::lock_guard<std::mutex> lock(worker_.mutex_);
    if (!worker_.cancel_running_) worker_.jobs_.SetStatus(job_.id, job_status::kRunning, extra);
  }

  void OnStep(const train::StepReport& report) override {
    last_loss_ = report.loss;
    // About 100 metrics events per job, and always the last step.
    const int64_t every = std::max<int64_t>(1, total_steps_ / 100);
    if (report.step % every != 0 && report.step != report.total_steps) return;
    worker_.jobs_.AddMetrics(job_.id, report.step,
                             {{"step", report.step},
                              {"train_loss", report.loss},
                              {"learning_rate", report.lr},
                              {"grad_norm", report.grad_norm},
                              {"tokens_per_s", report.tokens_per_s}},
                             report.step * tokens_per_step_);
  }

  void OnEval(const train::EvalReport& report) override {
    last_eval_loss_ = report.loss;
    last_eval_accuracy_ = report.accuracy;
    last_eval_step_ = report.step;
    worker_.jobs_.AddMetrics(job_.id, report.step,
                             {{"step", report.step},
                              {"valid_loss", report.loss},
                              {"valid_mean_token_accuracy", report.accuracy}},
                             report.step * tokens_per_step_);
  }

  void OnCheckpoint(int64_t step, const std::string& dir) override {
    worker_.jobs_.AddCheckpoint(
        job_.id, step,
        {{"train_loss", NumberOrNull(last_loss_)},
         {"valid_loss", last_eval_step_ == step ? NumberOrNull(last_eval_loss_) : Json(nullptr)},
         {"valid_mean_token_accuracy",
          last_eval_step_ == step ? NumberOrNull(last_eval_accuracy_) : Json(nullptr)}});
    // Only the newest checkpoint keeps its training state (the optimizer moments are twice the
    // adapter's size); every checkpoint keeps its adapter.
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(out_dir_ + "/checkpoints", error)) {
      if (entry.path() != fs::path(dir)) fs::remove_all(entry.path() / "training_state", error);
    }
  }

  bool ShouldStop() override { return worker_.cancel_running_ || worker_.stop_running_; }

 private:
  TrainingWorker& worker_;
  const JobRecord& job_;
  std::string out_dir_;
  int64_t tokens_per_step_ = 0;
  int64_t total_steps_ = 0;
  std::optional<double> last_loss_;
  std::optional<double> last_eval_loss_;
  std::optional<double> last_eval_accuracy_;
  int64_t last_eval_step_ = -1;
};

TrainingWorker::TrainingWorker(JobStore& jobs, FileStore& files, std::string jobs_dir, int threads,
                               ModelHooks hooks, dist::Communicator* comm)
    : jobs_(jobs),
      files_(files),
      jobs_dir_(std::move(jobs_dir)),
      threads_(threads),
      hooks_(std::move(hooks)),
      comm_(comm != nullptr && comm->size() > 1 ? comm : nullptr) {}

TrainingWorker::~TrainingWorker() { Stop(); }

void TrainingWorker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void TrainingWorker::Wake() {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_ = true;
  wake_.notify_all();
}

void TrainingWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stop_running_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool TrainingWorker::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::optional<JobRecord> job = jobs_.Get(id);
  if (!job || IsFinished(job->status)) return false;
  if (id == running_id_) {
    if (!cancel_running_) {
      cancel_running_ = true;
      jobs_.SetStatus(id, job_status::kCancellationRequested);
    }
  } else {
    jobs_.SetStatus(id, job_status::kCancelled);
  }
  return true;
}

void TrainingWorker::Loop() {
  // Rule J8: training yields the CPU to inference. Linux keeps a nice value per thread and new
  // threads inherit it, so the trainer's thread pool (created in this thread) runs at nice
  // kTrainingNice too, while the engine and HTTP threads stay at 0.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kTrainingNice) != 0) {
    std::fprintf(stderr, "bora serve: warning: cannot lower the fine-tuning threads' priority\n");
  }
  for (;;) {
    std::optional<JobRecord> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || pending_; });
      if (stopping_) return;
      pending_ = false;
      try {
        job = jobs_.NextQueued();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bora serve: cannot read the job queue: %s\n", e.what());
      }
      if (!job) continue;
      pending_ = true;  // look again after this one
      running_id_ = job->id;
      cancel_running_ = false;
      jobs_.SetStatus(job->id, job_status::kStarted);
    }
    Run(*job);
    std::lock_guard<std::mutex> lock(mutex_);
    running_id_.clear();
  }
}

void TrainingWorker::Plan(JobRecord& job, ServedModel& base) {
  Json& hp = job.hyperparameters;
  if (!hp["training_steps"].is_null()) return;  // fixed on a first run, or given
  // From epochs: the tokens of one pass over the training files, in seq_len sequences.
  train::TrainingDataOptions data;
  data.data = SourceList(job.training_files, files_);
  data.seq_len = hp["seq_len"].get<int64_t>();
  data.seed = job.seed;
  const train::TrainingData loaded = train::LoadTrainingData(data, base.tokenizer());
  const double epochs = hp["epochs"].is_number() ? hp["epochs"].get<double>() : 1.0;
  const double tokens = static_cast<double>(loaded.train_report.tokens);
  // Under mpirun each step trains one sequence per rank: the same epochs in fewer steps.
  const double per_step = static_cast<double>(data.seq_len) * (comm_ != nullptr ? comm_->size() : 1);
  const auto steps = static_cast<int64_t>(std::max(1.0, std::ceil(epochs * tokens / per_step)));
  hp["training_steps"] = steps;
  job.metadata["data_tokens"] = loaded.train_report.tokens;
}

void TrainingWorker::Run(const JobRecord& claimed) {
  JobRecord job = claimed;
  const std::string out_dir = jobs_dir_ + "/" + job.id;
  try {
    ServedModel* base = hooks_.find(job.model);
    if (base == nullptr || base->is_adapter()) {
      throw InvalidArgument("the base model " + job.model +
                            " is not served now: restart bora serve with --model " + job.model +
                            "=DIR to run this job");
    }
    Plan(job, *base);
    const Json& hp = job.hyperparameters;
    const int64_t steps = hp["training_steps"].get<int64_t>();
    const int64_t ranks = comm_ != nullptr ? comm_->size() : 1;
    job.metadata["train_tokens_per_step"] = hp["seq_len"].get<int64_t>() * ranks;
    job.metadata["train_tokens"] = steps * hp["seq_len"].get<int64_t>() * ranks;
    jobs_.SetPlan(job.id, job.hyperparameters, job.metadata);

    train::TuneOptions options;
    options.model_dir = base->dir();
    options.out_dir = out_dir;
    options.data.data = SourceList(job.training_files, files_);
    for (const std::string& id : job.validation_files) {
      if (!options.data.eval.empty()) options.data.eval += ',';
      options.data.eval += files_.PathOf(id);
    }
    options.data.seq_len = hp["seq_len"].get<int64_t>();
    options.data.seed = job.seed;
    options.threads = threads_;
    options.steps = steps;
    options.lr = hp["learning_rate"].get<double>();
    options.warmup = hp["warmup_fraction"].get<double>();
    options.adamw.weight_decay = hp["weight_decay"].get<double>();
    options.ckpt_every = (steps + 9) / 10;
    options.seed = job.seed;
    options.resume = true;  // from the newest complete checkpoint, if a killed run left one
    if (comm_ != nullptr) {  // under mpirun: every rank trains this job on its part of each step
      DistributedJob shared;
      shared.id = job.id;
      shared.model = job.model;
      shared.options = options;
      auto read = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw IoError("cannot read " + path);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      };
      for (const TrainingFileRef& ref : job.training_files) {
        shared.train_files.push_back(JobFile{read(files_.PathOf(ref.file_id)), ref.weight});
      }
      for (const std::string& id : job.validation_files) shared.eval_files.push_back(JobFile{read(files_.PathOf(id)), 1.0});
      SendJob(*comm_, shared);
      options.comm = comm_;
    }

    Observer observer(*this, job, out_dir);
    const train::TuneResult result = train::RunTune(options, observer);
    if (result.stopped) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cancel_running_) jobs_.SetStatus(job.id, job_status::kCancelled);
      return;  // a server shutdown: stays RUNNING, resumed at the next start
    }
    // The last step always checkpoints (also when a resumed run had nothing left to do).
    const std::string adapter_dir = train::CheckpointDir(out_dir, steps) + "/consolidated";
    const std::string name = FineTunedModelName(job);
    std::unique_ptr<ServedModel> served = ServedModel::LoadAdapter(name, adapter_dir, *base);
    served->set_job(job.id);
    std::lock_guard<std::mutex> lock(mutex_);
    if (hooks_.find(name) == nullptr) hooks_.add(std::move(served));
    jobs_.Succeed(job.id, name, adapter_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bora serve: fine-tuning job %s failed: %s\n", job.id.c_str(), e.what());
    try {
      jobs_.SetStatus(job.id, job_status::kFailed, {{"error", e.what()}}, e.what());
    } catch (const std::exception& again) {
      std::fprintf(stderr, "bora serve: cannot record the failure: %s\n", again.what());
    }
  }
}

}  // namespace bora::server
