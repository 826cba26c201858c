// The fine-tuning API of `bora serve` (/v1/files and /v1/fine_tuning/jobs): request checking,
// the durable state in STATE_DIR (state.db, files/, jobs/) and the training worker.
#pragma once

#include <memory>
#include <string>

#include "dist/communicator.h"
#include "base/error.h"
#include "server/finetune/file_store.h"
#include "server/finetune/job_store.h"
#include "server/finetune/state_db.h"
#include "server/finetune/training_worker.h"
#include "server/http/http_request_parser.h"
#include "server/json_body.h"

namespace bora::server {

// Another running server holds the state folder.
class StateDirInUse : public IoError {
 public:
  using IoError::IoError;
};

struct FineTuningOptions {
  std::string state_dir;
  int train_threads = 0;                           // 0: all cores
  int64_t upload_quota_bytes = int64_t{10} << 30;  // stored bytes per owner; 0: no quota
  dist::Communicator* training_comm = nullptr;     // under mpirun: jobs train on every rank
};

class FineTuningService {
 public:
  // Opens (creating) STATE_DIR and locks it for this process. Throws StateDirInUse, IoError,
  // InvalidArgument (a folder name the training data lists cannot carry).
  FineTuningService(const FineTuningOptions& options, ModelHooks hooks);
  ~FineTuningService();
  FineTuningService(const FineTuningService&) = delete;
  FineTuningService& operator=(const FineTuningService&) = delete;

  // Offers the adapters of finished jobs whose base model is served, re-queues the jobs a
  // killed server left running, and starts the training worker.
  void Start();
  // Stops training at the next step (the job resumes at the next start).
  void Stop();

  const std::string& state_dir() const { return state_dir_; }
  // Where uploaded files live (and upload bodies stream to while they arrive).
  std::string files_dir() const { return state_dir_ + "/files"; }

  // Handlers: each returns the response body or throws ApiError / bora errors.
  Json UploadFile(const http::HttpRequest& request);
  Json ListFiles(const http::HttpRequest& request);
  // `owner` (HttpRequest::owner): each tenant sees, uses and changes only its own files and
  // jobs; another's id answers 404 as if it did not exist.
  Json GetFile(const std::string& id, const std::string& owner);
  // The stored bytes; `filename` gets the uploaded name.
  std::string FileContent(const std::string& id, const std::string& owner, std::string* filename);
  Json DeleteFile(const std::string& id, const std::string& owner);
  Json CreateJob(const Json& body, const std::string& owner);
  Json ListJobs(const http::HttpRequest& request);
  Json GetJob(const std::string& id, const std::string& owner);
  Json CancelJob(const std::string& id, const std::string& owner);
  Json StartJob(const std::string& id, const std::string& owner);

 private:
  Json CreateJobChecked(const Json& body, const std::string& owner);
  FileRecord RequireFile(const std::string& id, const std::string& field, const std::string& owner);
  JobRecord RequireJob(const std::string& id, const std::string& owner);

  std::string state_dir_;
  int64_t upload_quota_bytes_ = 0;
  int lock_fd_ = -1;
  ModelHooks hooks_;
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<FileStore> files_;
  std::unique_ptr<JobStore> jobs_;
  std::unique_ptr<TrainingWorker> worker_;
};

}  // namespace bora::server
