// SQLite tables `jobs`, `job_events`, `job_checkpoints` and the job JSON both SDKs read.
#include "server/finetune/job_store.h"

#include <chrono>

namespace bora::server {
namespace {

constexpr const char* kColumns =
    "id, model, status, created_at, modified_at, auto_start, suffix, hyperparameters, "
    "training_files, validation_files, seed, fine_tuned_model, adapter_dir, trained_tokens, "
    "metadata, error, finished_at, owner";

Json ParseStored(const SqlValue& value, Json otherwise) {
  const std::string text = SqlText(value);
  if (text.empty()) return otherwise;
  Json parsed = Json::parse(text, nullptr, false);
  return parsed.is_discarded() ? otherwise : parsed;
}

JobRecord FromRow(const SqlRow& row) {
  JobRecord job;
  job.id = SqlText(row[0]);
  job.model = SqlText(row[1]);
  job.status = SqlText(row[2]);
  job.created_at = SqlInt(row[3]);
  job.modified_at = SqlInt(row[4]);
  job.auto_start = SqlInt(row[5]) != 0;
  if (!SqlIsNull(row[6])) job.suffix = SqlText(row[6]);
  job.hyperparameters = ParseStored(row[7], Json::object());
  for (const Json& ref : ParseStored(row[8], Json::array())) {
    job.training_files.push_back({ref.value("file_id", std::string()), ref.value("weight", 1.0)});
  }
  for (const Json& id : ParseStored(row[9], Json::array())) {
    if (id.is_string()) job.validation_files.push_back(id.get<std::string>());
  }
  job.seed = static_cast<uint64_t>(SqlInt(row[10]));
  if (!SqlIsNull(row[11])) job.fine_tuned_model = SqlText(row[11]);
  job.adapter_dir = SqlText(row[12]);
  job.trained_tokens = SqlInt(row[13]);
  job.metadata = ParseStored(row[14], Json::object());
  job.error = SqlText(row[15]);
  if (!SqlIsNull(row[16])) job.finished_at = SqlInt(row[16]);
  job.owner = SqlText(row[17]);
  return job;
}

SqlValue OptionalText(const std::optional<std::string>& text) {
  if (text) return *text;
  return nullptr;
}

}  // namespace

bool IsFinished(const std::string& status) {
  return status == job_status::kSuccess || status == job_status::kFailed ||
         status == job_status::kCancelled;
}

JobStore::JobStore(StateDb& db) : db_(db) {
  db_.ExecScript(
      "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, model TEXT NOT NULL, "
      "status TEXT NOT NULL, created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, "
      "auto_start INTEGER NOT NULL, suffix TEXT, hyperparameters TEXT NOT NULL, "
      "training_files TEXT NOT NULL, validation_files TEXT NOT NULL, seed INTEGER NOT NULL, "
      "fine_tuned_model TEXT, adapter_dir TEXT, trained_tokens INTEGER NOT NULL DEFAULT 0, "
      "metadata TEXT, error TEXT, finished_at INTEGER);"
      "CREATE TABLE IF NOT EXISTS job_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
      "job_id TEXT NOT NULL, name TEXT NOT NULL, step INTEGER, data TEXT NOT NULL, "
      "created_at INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, seq);"
      "CREATE TABLE IF NOT EXISTS job_checkpoints (job_id TEXT NOT NULL, step INTEGER NOT NULL, "
      "metrics TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (job_id, step));");
  db_.EnsureColumn("jobs", "owner", "TEXT NOT NULL DEFAULT ''");
}

void JobStore::Create(const JobRecord& job) {
  Json files = Json::array();
  for (const TrainingFileRef& ref : job.training_files)
    files.push_back({{"file_id", ref.file_id}, {"weight", ref.weight}});
  db_.Transaction([&] {
    db_.Exec(std::string("INSERT INTO jobs (") + kColumns +
                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             {job.id, job.model, job.status, job.created_at, job.modified_at,
              int64_t{job.auto_start ? 1 : 0}, OptionalText(job.suffix), job.hyperparameters.dump(),
              files.dump(), Json(job.validation_files).dump(), static_cast<int64_t>(job.seed),
              OptionalText(job.fine_tuned_model), job.adapter_dir, job.trained_tokens,
              job.metadata.dump(), job.error, nullptr, job.owner});
    db_.Exec(
        "INSERT INTO job_events (job_id, name, step, data, created_at) VALUES (?, ?, NULL, ?, ?)",
        {job.id, std::string("status-updated"), Json{{"status", job.status}}.dump(),
         job.created_at});
  });
}

std::optional<JobRecord> JobStore::Get(std::string_view id) {
  const auto rows =
      db_.Query(std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?", {std::string(id)});
  if (rows.empty()) return std::nullopt;
  return FromRow(rows[0]);
}

std::vector<JobRecord> JobStore::List(const JobFilter& f, int64_t* total) {
  const std::string where =
      " WHERE (? = '' OR model = ?) AND (? = '' OR status = ?) AND (? = '' OR suffix = ?) "
      "AND created_at >= ? AND (? = 0 OR owner = ?)";
  const std::vector<SqlValue> params = {f.model,
                                        f.model,
                                        f.status,
                                        f.status,
                                        f.suffix,
                                        f.suffix,
                                        f.created_after,
                                        int64_t{f.owner ? 1 : 0},
                                        f.owner.value_or("")};
  *total = SqlInt(db_.Query("SELECT COUNT(*) FROM jobs" + where, params)[0][0]);
  std::vector<SqlValue> paged = params;
  paged.push_back(f.page_size);
  paged.push_back(f.page * f.page_size);
  std::vector<JobRecord> jobs;
  for (const SqlRow& row : db_.Query(std::string("SELECT ") + kColumns + " FROM jobs" + where +
                                         " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                                     paged)) {
    jobs.push_back(FromRow(row));
  }
  return jobs;
}

std::optional<JobRecord> JobStore::NextQueued() {
  const auto rows = db_.Query(std::string("SELECT ") + kColumns +
                                  " FROM jobs WHERE status = ? ORDER BY created_at, rowid LIMIT 1",
                              {std::string(job_status::kQueued)});
  if (rows.empty()) return std::nullopt;
  return FromRow(rows[0]);
}

void JobStore::SetStatus(const std::string& id, const std::string& status, const Json& extra,
                         const std::string& error) {
  const int64_t now = UnixSeconds();
  Json data = {{"status", status}};
  if (extra.is_object()) data.update(extra);
  db_.Transaction([&] {
    db_.Exec(
        "UPDATE jobs SET status = ?, modified_at = ?, error = CASE WHEN ? = '' THEN error "
        "ELSE ? END, finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
        {status, now, error, error, int64_t{IsFinished(status) ? 1 : 0}, now, id});
    db_.Exec(
        "INSERT INTO job_events (job_id, name, step, data, created_at) VALUES (?, ?, NULL, ?, ?)",
        {id, std::string("status-updated"), data.dump(), now});
  });
}

void JobStore::SetPlan(const std::string& id, const Json& hyperparameters, const Json& metadata) {
  db_.Exec("UPDATE jobs SET hyperparameters = ?, metadata = ?, modified_at = ? WHERE id = ?",
           {hyperparameters.dump(), metadata.dump(), UnixSeconds(), id});
}

void JobStore::AddMetrics(const std::string& id, int64_t step, const Json& data,
                          int64_t trained_tokens) {
  const int64_t now = UnixSeconds();
  db_.Transaction([&] {
    db_.Exec("INSERT INTO job_events (job_id, name, step, data, created_at) VALUES (?, ?, ?, ?, ?)",
             {id, std::string("metrics"), step, data.dump(), now});
    db_.Exec("UPDATE jobs SET trained_tokens = ?, modified_at = ? WHERE id = ?",
             {trained_tokens, now, id});
  });
}

void JobStore::ForgetAfter(const std::string& id, int64_t step) {
  db_.Transaction([&] {
    db_.Exec("DELETE FROM job_events WHERE job_id = ? AND name = 'metrics' AND step > ?",
             {id, step});
    db_.Exec("DELETE FROM job_checkpoints WHERE job_id = ? AND step > ?", {id, step});
  });
}

void JobStore::AddCheckpoint(const std::string& id, int64_t step, const Json& metrics) {
  db_.Exec(
      "INSERT OR REPLACE INTO job_checkpoints (job_id, step, metrics, created_at) "
      "VALUES (?, ?, ?, ?)",
      {id, step, metrics.dump(), UnixSeconds()});
}

void JobStore::Succeed(const std::string& id, const std::string& fine_tuned_model,
                       const std::string& adapter_dir) {
  db_.Transaction([&] {
    db_.Exec("UPDATE jobs SET fine_tuned_model = ?, adapter_dir = ? WHERE id = ?",
             {fine_tuned_model, adapter_dir, id});
    SetStatus(id, job_status::kSuccess, {{"fine_tuned_model", fine_tuned_model}});
  });
}

std::vector<JobEvent> JobStore::Events(const std::string& id) {
  std::vector<JobEvent> events;
  for (const SqlRow& row : db_.Query(
           "SELECT name, data, created_at FROM job_events WHERE job_id = ? ORDER BY seq", {id})) {
    events.push_back({SqlText(row[0]), ParseStored(row[1], Json::object()), SqlInt(row[2])});
  }
  return events;
}

std::vector<JobCheckpoint> JobStore::Checkpoints(const std::string& id) {
  std::vector<JobCheckpoint> checkpoints;
  for (const SqlRow& row :
       db_.Query("SELECT step, metrics, created_at FROM job_checkpoints WHERE job_id = ? "
                 "ORDER BY step",
                 {id})) {
    checkpoints.push_back({SqlInt(row[0]), ParseStored(row[1], Json::object()), SqlInt(row[2])});
  }
  return checkpoints;
}

std::vector<std::string> JobStore::UnfinishedJobsUsing(const std::string& file_id) {
  std::vector<std::string> ids;
  // File ids are UUIDs (checked before they get here), so a quoted substring match is exact.
  const std::string quoted = "%\"" + file_id + "\"%";
  for (const SqlRow& row :
       db_.Query("SELECT id FROM jobs WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELLED') "
                 "AND (training_files LIKE ? OR validation_files LIKE ?)",
                 {quoted, quoted})) {
    ids.push_back(SqlText(row[0]));
  }
  return ids;
}

int JobStore::RecoverInterrupted() {
  int requeued = 0;
  for (const SqlRow& row :
       db_.Query("SELECT id, status FROM jobs WHERE status IN ('STARTED', 'RUNNING', "
                 "'CANCELLATION_REQUESTED') ORDER BY created_at, rowid")) {
    const std::string id = SqlText(row[0]);
    if (SqlText(row[1]) != job_status::kCancellationRequested) {
      SetStatus(id, job_status::kQueued, {{"reason", "the server restarted; resuming"}});
      ++requeued;
    } else {
      SetStatus(id, job_status::kCancelled);
    }
  }
  return requeued;
}

Json JobJson(const JobRecord& job) {
  Json training_files = Json::array();
  for (const TrainingFileRef& ref : job.training_files) training_files.push_back(ref.file_id);
  Json out = {
      {"id", job.id},
      {"object", "job"},
      {"job_type", "completion"},
      {"auto_start", job.auto_start},
      {"model", job.model},
      {"status", job.status},
      {"created_at", job.created_at},
      {"modified_at", job.modified_at},
      {"training_files", training_files},
      {"validation_files", job.validation_files},
      {"fine_tuned_model", job.fine_tuned_model ? Json(*job.fine_tuned_model) : Json(nullptr)},
      {"suffix", job.suffix ? Json(*job.suffix) : Json(nullptr)},
      {"integrations", Json::array()},
      {"repositories", Json::array()},
      {"trained_tokens", job.trained_tokens},
      {"metadata", job.metadata},
      {"hyperparameters", job.hyperparameters},
      // OpenAI's fine_tuning.job fields that do not clash with Mistral's.
      {"finished_at", job.finished_at ? Json(*job.finished_at) : Json(nullptr)},
      {"training_file", training_files.empty() ? Json(nullptr) : training_files[0]},
      {"validation_file",
       job.validation_files.empty() ? Json(nullptr) : Json(job.validation_files[0])},
      {"seed", job.seed},
      {"result_files", Json::array()},
      {"error",
       job.error.empty()
           ? Json(nullptr)
           : Json{{"message", job.error}, {"code", "training_failed"}, {"param", nullptr}}}};
  return out;
}

Json DetailedJobJson(const JobRecord& job, const std::vector<JobEvent>& events,
                     const std::vector<JobCheckpoint>& checkpoints) {
  Json out = JobJson(job);
  Json event_list = Json::array();
  for (const JobEvent& event : events) {
    event_list.push_back(
        {{"name", event.name}, {"data", event.data}, {"created_at", event.created_at}});
  }
  Json checkpoint_list = Json::array();
  for (const JobCheckpoint& checkpoint : checkpoints) {
    checkpoint_list.push_back({{"metrics", checkpoint.metrics},
                               {"step_number", checkpoint.step},
                               {"created_at", checkpoint.created_at}});
  }
  out["events"] = event_list;
  out["checkpoints"] = checkpoint_list;
  return out;
}

}  // namespace bora::server
