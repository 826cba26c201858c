// The fine-tuning API of `bora serve` (/v1/files and /v1/fine_tuning/jobs): request checking,
// the durable state in STATE_DIR (state.db, files/, jobs/) and the training worker.
#pragma once

#include <memory>
#include <string>

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
  int train_threads = 0;  // 0: all cores
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

  // Handlers: each returns the response body or throws ApiError / bora errors.
  Json UploadFile(const http::HttpRequest& request);
  Json ListFiles(const http::HttpRequest& request);
  Json GetFile(const std::string& id);
  // The stored bytes; `filename` gets the uploaded name.
  std::string FileContent(const std::string& id, std::string* filename);
  Json DeleteFile(const std::string& id);
  Json CreateJob(const Json& body);
  Json ListJobs(const http::HttpRequest& request);
  Json GetJob(const std::string& id);
  Json CancelJob(const std::string& id);
  Json StartJob(const std::string& id);

 private:
  Json CreateJobChecked(const Json& body);
  FileRecord RequireFile(const std::string& id, const std::string& field);
  JobRecord RequireJob(const std::string& id);

  std::string state_dir_;
  int lock_fd_ = -1;
  ModelHooks hooks_;
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<FileStore> files_;
  std::unique_ptr<JobStore> jobs_;
  std::unique_ptr<TrainingWorker> worker_;
};

}  // namespace bora::server
