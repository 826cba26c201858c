// Fine-tuning jobs in SQLite: the job rows, their event log and checkpoints, and the JSON shapes
// (Mistral's JobOut/DetailedJobOut, with OpenAI's fine_tuning.job fields where they do not clash).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/finetune/state_db.h"
#include "server/json_body.h"

namespace bora::server {

// Mistral's job status values.
namespace job_status {
inline constexpr const char* kQueued = "QUEUED";
inline constexpr const char* kValidated = "VALIDATED";  // auto_start false: waits for /start
inline constexpr const char* kStarted = "STARTED";      // claimed by the worker, loading
inline constexpr const char* kRunning = "RUNNING";
inline constexpr const char* kSuccess = "SUCCESS";
inline constexpr const char* kFailed = "FAILED";
inline constexpr const char* kCancelled = "CANCELLED";
inline constexpr const char* kCancellationRequested = "CANCELLATION_REQUESTED";
}  // namespace job_status

struct TrainingFileRef {
  std::string file_id;
  double weight = 1.0;
};

struct JobRecord {
  std::string id;
  std::string model;  // the served base model's id
  std::string status;
  int64_t created_at = 0;
  int64_t modified_at = 0;
  bool auto_start = true;
  std::optional<std::string> suffix;
  // Resolved: training_steps, learning_rate, epochs, seq_len, weight_decay, warmup_fraction,
  // fim_ratio (always null).
  Json hyperparameters = Json::object();
  std::vector<TrainingFileRef> training_files;
  std::vector<std::string> validation_files;
  uint64_t seed = 0;
  std::optional<std::string> fine_tuned_model;
  std::string adapter_dir;  // the final checkpoint's consolidated/ folder, once SUCCESS
  int64_t trained_tokens = 0;
  Json metadata = Json::object();  // train_tokens_per_step, train_tokens, data_tokens
  std::string error;               // why a job FAILED
  std::optional<int64_t> finished_at;
  std::string owner;  // who created it: an API-key digest prefix, "" without keys
};

struct JobEvent {
  std::string name;  // "status-updated" or "metrics"
  Json data;
  int64_t created_at = 0;
};

struct JobCheckpoint {
  int64_t step = 0;
  Json metrics;  // train_loss, valid_loss, valid_mean_token_accuracy
  int64_t created_at = 0;
};

struct JobFilter {
  std::optional<std::string> owner;  // set: only this owner's jobs
  std::string model, status, suffix;
  int64_t created_after = 0;
  int64_t page = 0, page_size = 100;
};

bool IsFinished(const std::string& status);

class JobStore {
 public:
  explicit JobStore(StateDb& db);  // creates the tables when missing

  // Inserts `job` and its first status event.
  void Create(const JobRecord& job);
  std::optional<JobRecord> Get(std::string_view id);
  std::vector<JobRecord> List(const JobFilter& filter, int64_t* total);
  // The oldest QUEUED job.
  std::optional<JobRecord> NextQueued();

  // Sets the status (and `error` when given) and logs a "status-updated" event carrying
  // {"status", ...extra}; a finished status also sets finished_at.
  void SetStatus(const std::string& id, const std::string& status, const Json& extra = {},
                 const std::string& error = "");
  // Stores the resolved hyperparameters and metadata (fixed when the job first runs).
  void SetPlan(const std::string& id, const Json& hyperparameters, const Json& metadata);
  // Logs a "metrics" event for `step`, and the tokens trained so far.
  void AddMetrics(const std::string& id, int64_t step, const Json& data, int64_t trained_tokens);
  // Forgets the metrics events and checkpoints after `step` (a resumed run redoes them).
  void ForgetAfter(const std::string& id, int64_t step);
  void AddCheckpoint(const std::string& id, int64_t step, const Json& metrics);
  // Records the adapter and the model name, then status SUCCESS, in one transaction.
  void Succeed(const std::string& id, const std::string& fine_tuned_model,
               const std::string& adapter_dir);

  std::vector<JobEvent> Events(const std::string& id);
  std::vector<JobCheckpoint> Checkpoints(const std::string& id);
  // Ids of unfinished jobs that read `file_id`.
  std::vector<std::string> UnfinishedJobsUsing(const std::string& file_id);
  // After a restart: STARTED and RUNNING jobs go back to QUEUED (they resume from their last
  // checkpoint), CANCELLATION_REQUESTED ones become CANCELLED. Returns how many were re-queued.
  int RecoverInterrupted();

 private:
  StateDb& db_;
};

// CompletionJobOut (plus OpenAI's finished_at, training_file, validation_file, seed, error).
Json JobJson(const JobRecord& job);
// CompletionDetailedJobOut: JobJson plus events and checkpoints.
Json DetailedJobJson(const JobRecord& job, const std::vector<JobEvent>& events,
                     const std::vector<JobCheckpoint>& checkpoints);

}  // namespace bora::server
