// The background thread that runs fine-tuning jobs one at a time while the server keeps
// serving: claims the oldest QUEUED job, trains it (resuming from its last checkpoint after a
// restart), logs events and checkpoints, and offers the finished adapter as a model at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "dist/communicator.h"
#include "server/finetune/file_store.h"
#include "server/finetune/job_store.h"
#include "server/served_model.h"

namespace bora::server {

// How the worker reaches the server's model list.
struct ModelHooks {
  std::function<ServedModel*(const std::string& id)> find;  // null when not served
  std::function<void(std::unique_ptr<ServedModel>)> add;    // offers a new model
};

// The name a finished job's adapter is served under, as on La Plateforme:
// ft:<base>[:<suffix>]:<first 8 characters of the job id>.
std::string FineTunedModelName(const JobRecord& job);

class TrainingWorker {
 public:
  // `jobs_dir`/<job id> holds each job's checkpoints and metrics.jsonl; `threads` 0: all cores.
  // `comm` (under mpirun, may be null): jobs train data parallel on its ranks, which follow
  // FollowJobs (server/finetune/distributed_jobs.h).
  TrainingWorker(JobStore& jobs, FileStore& files, std::string jobs_dir, int threads,
                 ModelHooks hooks, dist::Communicator* comm = nullptr);
  ~TrainingWorker();
  TrainingWorker(const TrainingWorker&) = delete;
  TrainingWorker& operator=(const TrainingWorker&) = delete;

  void Start();
  // Looks for queued work (call after a job is queued).
  void Wake();
  // Stops at the next step boundary; the running job stays RUNNING in the database, so the
  // next server start resumes it from its last checkpoint.
  void Stop();

  // Cancels job `id` whatever its state: a queued or validated job is CANCELLED now, a running
  // one is asked to stop (CANCELLATION_REQUESTED, then CANCELLED at the next step). Returns
  // false when the job is already finished.
  bool Cancel(const std::string& id);

 private:
  class Observer;
  void Loop();
  void Run(const JobRecord& job);
  // The hyperparameters with training_steps fixed (from epochs when needed) and the metadata.
  void Plan(JobRecord& job, ServedModel& base);

  JobStore& jobs_;
  FileStore& files_;
  std::string jobs_dir_;
  int threads_;
  ModelHooks hooks_;
  dist::Communicator* comm_ = nullptr;

  std::mutex mutex_;  // guards the fields below and every status change of a claimed job
  std::condition_variable wake_;
  bool stopping_ = false;
  bool pending_ = true;
  std::string running_id_;
  std::atomic<bool> cancel_running_{false};
  std::atomic<bool> stop_running_{false};
  std::thread thread_;
};

}  // namespace bora::server
