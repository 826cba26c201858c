// Request checking for /v1/files and /v1/fine_tuning/jobs (Mistral's JobIn with OpenAI's
// aliases), on top of the file and job stores and the training worker.
#include "server/finetune/fine_tuning_service.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>

#include "server/api_error.h"
#include "server/http/multipart.h"
#include "train/data/training_jsonl.h"

namespace bora::server {
namespace {

namespace fs = std::filesystem;

int64_t QueryInt(const std::map<std::string, std::string>& query, const std::string& key,
                 int64_t otherwise, int64_t min, int64_t max) {
  const auto it = query.find(key);
  if (it == query.end() || it->second.empty()) return otherwise;
  const std::string& text = it->second;
  if (text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
    throw ApiError::Validation(key, "Input should be a valid integer", "int_parsing");
  }
  const int64_t value = std::stoll(text);
  if (value < min || value > max) {
    throw ApiError::BadField(
        key, key + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return value;
}

std::string QueryText(const std::map<std::string, std::string>& query, const std::string& key) {
  const auto it = query.find(key);
  return it == query.end() ? "" : it->second;
}

// Unix seconds, or an ISO 8601 UTC time as the Mistral SDK sends datetimes
// ("2026-11-23T10:00:00.000Z").
int64_t ParseTime(const std::string& text, const std::string& field) {
  if (text.empty()) return 0;
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 12) {
    return std::stoll(text);
  }
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    throw ApiError::Validation(field, "Input should be a valid datetime", "datetime_parsing");
  }
  return static_cast<int64_t>(timegm(&tm));
}

// An uploaded file's name as metadata: its last path component, printable, at most 255 bytes.
std::string CleanFilename(const std::optional<std::string>& name) {
  std::string base = name.value_or("");
  const size_t slash = base.find_last_of("/\\");
  if (slash != std::string::npos) base = base.substr(slash + 1);
  std::string out;
  for (char c : base) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f && c != '"') out += c;
  }
  if (out.size() > 255) out.resize(255);
  return out.empty() ? "upload.jsonl" : out;
}

bool IsSuffix(const std::string& suffix) {
  if (suffix.empty() || suffix.size() > 40) return false;
  for (char c : suffix) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  }
  return true;
}

ApiError NotFound(const std::string& what, const std::string& param = "") {
  return ApiError(404, "invalid_request_error", what, "not_found", param);
}

}  // namespace

FineTuningService::FineTuningService(const FineTuningOptions& options, ModelHooks hooks)
    : state_dir_(options.state_dir),
      upload_quota_bytes_(options.upload_quota_bytes),
      hooks_(std::move(hooks)) {
  if (state_dir_.find(',') != std::string::npos) {
    throw InvalidArgument("--state-dir " + state_dir_ +
                          ": the folder name must not contain ',' (training data lists use it)");
  }
  std::error_code error;
  fs::create_directories(state_dir_, error);
  if (error) {
    throw IoError("--state-dir " + state_dir_ + ": cannot create the folder: " + error.message());
  }
  const std::string lock_path = state_dir_ + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw IoError(lock_path + ": cannot open the state folder's lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw StateDirInUse("the state folder " + state_dir_ +
                        " is used by another bora serve; give this one its own --state-dir");
  }
  db_ = std::make_unique<StateDb>(state_dir_ + "/state.db");
  files_ = std::make_unique<FileStore>(*db_, files_dir());
  jobs_ = std::make_unique<JobStore>(*db_);
  worker_ = std::make_unique<TrainingWorker>(*jobs_, *files_, state_dir_ + "/jobs",
                                             options.train_threads, hooks_, options.training_comm);
}

FineTuningService::~FineTuningService() {
  Stop();
  worker_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void FineTuningService::Start() {
  JobFilter finished;
  finished.status = job_status::kSuccess;
  finished.page_size = 1 << 30;
  int64_t total = 0;
  for (const JobRecord& job : jobs_->List(finished, &total)) {
    if (!job.fine_tuned_model || job.adapter_dir.empty()) continue;
    ServedModel* base = hooks_.find(job.model);
    if (base == nullptr || base->is_adapter()) {
      std::fprintf(stderr, "bora serve: not offering %s: its base model %s is not served\n",
                   job.fine_tuned_model->c_str(), job.model.c_str());
      continue;
    }
    if (hooks_.find(*job.fine_tuned_model) != nullptr) continue;
    try {
      std::unique_ptr<ServedModel> served =
          ServedModel::LoadAdapter(*job.fine_tuned_model, job.adapter_dir, *base);
      served->set_job(job.id);
      hooks_.add(std::move(served));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bora serve: not offering %s: %s\n", job.fine_tuned_model->c_str(),
                   e.what());
    }
  }
  const int requeued = jobs_->RecoverInterrupted();
  if (requeued > 0) {
    std::fprintf(stderr, "bora serve: resuming %d fine-tuning job(s) interrupted by a restart\n",
                 requeued);
  }
  worker_->Start();
}

void FineTuningService::Stop() {
  if (worker_) worker_->Stop();
}

FileRecord FineTuningService::RequireFile(const std::string& id, const std::string& field,
                                          const std::string& owner) {
  std::optional<FileRecord> file = files_->Get(id, owner);
  if (!file) throw NotFound("No file with id '" + id + "' (GET /v1/files lists them)", field);
  return *file;
}

JobRecord FineTuningService::RequireJob(const std::string& id, const std::string& owner) {
  std::optional<JobRecord> job = IsUuid(id) ? jobs_->Get(id) : std::nullopt;
  if (job && job->owner != owner) job.reset();
  if (!job) throw NotFound("No fine-tuning job with id '" + id + "'", "job_id");
  return *job;
}

Json FineTuningService::UploadFile(const http::HttpRequest& request) {
  const std::string boundary = http::MultipartBoundary(request.Header("Content-Type"));
  const std::vector<http::FormPart> parts =
      http::ParseMultipartFormData(request.BodyView(), boundary);
  const http::FormPart* file = http::FindPart(parts, "file");
  if (file == nullptr || !file->filename) {
    throw ApiError::Validation("file",
                               "Field required: send the file as a multipart part named "
                               "'file' with a filename",
                               "missing");
  }
  std::string purpose = "fine-tune";
  if (const http::FormPart* part = http::FindPart(parts, "purpose")) purpose = part->data;
  if (purpose != "fine-tune") {
    throw ApiError::Validation("purpose",
                               "bora stores files for fine-tuning only: purpose must "
                               "be 'fine-tune', not '" +
                                   purpose.substr(0, 40) + "'");
  }
  const std::string filename = CleanFilename(file->filename);
  if (file->data.empty()) throw ApiError::Validation("file", filename + " is empty");
  // Checked as mistral-finetune training data now, so a bad line is reported at upload time
  // with its line number rather than when a job runs.
  const train::ValidationReport report = train::ValidateTrainingFile(file->data, filename);
  if (report.invalid > 0 || report.valid == 0) {
    std::string message = filename + " is not valid fine-tuning data";
    if (!report.errors.empty()) {
      message += ": " + report.errors.front();
      if (report.invalid > 1) {
        message += " (and " + std::to_string(report.invalid - 1) + " more invalid lines)";
      }
    } else {
      message += ": it has no records";
    }
    throw ApiError::Validation("file", message);
  }
  const std::string sample_type =
      report.instruct + report.function_calling > 0 ? "instruct" : "pretrain";
  const std::string mimetype =
      file->content_type.empty() ? "application/jsonl" : file->content_type.substr(0, 100);
  try {
    return FileJson(files_->Add(request.owner, filename, purpose, mimetype, file->data, sample_type,
                                report.lines, upload_quota_bytes_));
  } catch (const QuotaExceeded& e) {
    throw ApiError(403, "invalid_request_error", e.what(), "quota_exceeded", "file");
  }
}

Json FineTuningService::ListFiles(const http::HttpRequest& request) {
  const auto query = http::ParseQuery(request.query);
  const int64_t page = QueryInt(query, "page", 0, 0, 1 << 20);
  const int64_t page_size =
      QueryInt(query, "page_size", QueryInt(query, "limit", 100, 1, 10000), 1, 10000);
  int64_t total = 0;
  Json data = Json::array();
  for (const FileRecord& file :
       files_->List(request.owner, QueryText(query, "purpose"), page, page_size, &total))
    data.push_back(FileJson(file));
  return {{"object", "list"},
          {"data", data},
          {"total", total},
          {"has_more", (page + 1) * page_size < total}};
}

Json FineTuningService::GetFile(const std::string& id, const std::string& owner) {
  Json out = FileJson(RequireFile(id, "file_id", owner));
  out["deleted"] = false;
  return out;
}

std::string FineTuningService::FileContent(const std::string& id, const std::string& owner,
                                           std::string* filename) {
  const FileRecord file = RequireFile(id, "file_id", owner);
  *filename = file.filename;
  return files_->ReadContent(file);
}

Json FineTuningService::DeleteFile(const std::string& id, const std::string& owner) {
  RequireFile(id, "file_id", owner);
  const std::vector<std::string> users = jobs_->UnfinishedJobsUsing(id);
  if (!users.empty()) {
    throw ApiError(409, "invalid_request_error",
                   "file " + id + " is used by fine-tuning job " + users.front() +
                       ", which has not finished; cancel it first",
                   "file_in_use", "file_id");
  }
  files_->Delete(id);
  return {{"id", id}, {"object", "file"}, {"deleted", true}};
}

Json FineTuningService::CreateJob(const Json& body, const std::string& owner) {
  try {
    return CreateJobChecked(body, owner);
  } catch (const ApiError& e) {
    // Mistral answers every invalid JobIn field with a 422 validation error.
    if (e.status() != 400 || e.param().empty()) throw;
    throw ApiError::Validation(e.param(), e.what());
  }
}

Json FineTuningService::CreateJobChecked(const Json& body, const std::string& owner) {
  JobRecord job;
  job.id = NewUuid();
  job.owner = owner;
  job.created_at = job.modified_at = UnixSeconds();

  // model: a served base model.
  const std::optional<std::string> model = StringField(body, "model");
  if (!model) throw ApiError::Validation("model", "Field required", "missing");
  ServedModel* base = hooks_.find(*model);
  if (base == nullptr || base->is_adapter()) {
    throw ApiError(404, "invalid_model",
                   "Invalid model: " + *model +
                       " (fine-tuning starts from a base model that this server serves; GET "
                       "/v1/models lists them)",
                   "1500", "model");
  }
  job.model = base->id();

  // training_files: Mistral's [{file_id, weight}] (plain ids accepted), or OpenAI's
  // training_file.
  Json training = body.contains("training_files") ? body["training_files"] : Json(nullptr);
  if (training.is_null()) {
    if (const auto single = StringField(body, "training_file")) training = Json::array({*single});
  }
  if (!training.is_array() || training.empty()) {
    throw ApiError::Validation("training_files",
                               "Field required: a list of {file_id, weight} of uploaded files",
                               training.is_null() ? "missing" : "list_type");
  }
  if (training.size() > 100) throw ApiError::BadField("training_files", "at most 100 files");
  for (const Json& entry : training) {
    TrainingFileRef ref;
    if (entry.is_string()) {
      ref.file_id = entry.get<std::string>();
    } else if (entry.is_object()) {
      const auto id = StringField(entry, "file_id", "training_files.file_id");
      if (!id) throw ApiError::Validation("training_files.file_id", "Field required", "missing");
      ref.file_id = *id;
      ref.weight = NumberField(entry, "weight", 1e-6, 1e6, "training_files.weight").value_or(1.0);
    } else {
      throw ApiError::Validation("training_files", "Input should be a list of {file_id, weight}",
                                 "model_type");
    }
    RequireFile(ref.file_id, "training_files", owner);
    job.training_files.push_back(ref);
  }
  Json validation = body.contains("validation_files") ? body["validation_files"] : Json(nullptr);
  if (validation.is_null()) {
    if (const auto single = StringField(body, "validation_file"))
      validation = Json::array({*single});
  }
  if (!validation.is_null()) {
    if (!validation.is_array() || validation.size() > 100) {
      throw ApiError::Validation("validation_files", "Input should be a list of file ids",
                                 "list_type");
    }
    for (const Json& id : validation) {
      if (!id.is_string()) {
        throw ApiError::Validation("validation_files", "Input should be a valid string",
                                   "string_type");
      }
      RequireFile(id.get<std::string>(), "validation_files", owner);
      job.validation_files.push_back(id.get<std::string>());
    }
  }

  if (const auto suffix = StringField(body, "suffix")) {
    if (!IsSuffix(*suffix)) {
      throw ApiError::BadField("suffix", "suffix must be 1-40 letters, digits, '-', '_' or '.'");
    }
    job.suffix = *suffix;
  }
  job.auto_start = BoolField(body, "auto_start").value_or(true);
  job.seed = static_cast<uint64_t>(IntField(body, "seed", 0, int64_t{1} << 53).value_or(0));
  if (const auto type = StringField(body, "job_type"); type && *type != "completion") {
    throw ApiError::BadField("job_type", "bora trains completion (chat) models only");
  }
  for (const char* field : {"integrations", "repositories", "classifier_targets"}) {
    if (body.contains(field) && !body[field].is_null() &&
        !(body[field].is_array() && body[field].empty())) {
      throw ApiError::BadField(field, std::string(field) +
                                          " are not supported: bora keeps training on this "
                                          "machine and sends nothing elsewhere");
    }
  }

  // hyperparameters (Mistral's, with OpenAI's n_epochs as an alias of epochs).
  Json hp_in = body.contains("hyperparameters") ? body["hyperparameters"] : Json::object();
  if (hp_in.is_null()) hp_in = Json::object();
  if (!hp_in.is_object()) {
    throw ApiError::Validation("hyperparameters", "Input should be an object", "model_type");
  }
  auto hp_name = [](const char* key) { return std::string("hyperparameters.") + key; };
  Json hp = Json::object();
  const auto steps = IntField(hp_in, "training_steps", 1, 1000000, hp_name("training_steps"));
  hp["training_steps"] = steps ? Json(*steps) : Json(nullptr);
  hp["learning_rate"] =
      NumberField(hp_in, "learning_rate", 1e-12, 1.0, hp_name("learning_rate")).value_or(1e-4);
  if (hp["learning_rate"].get<double>() <= 0) {
    throw ApiError::BadField(hp_name("learning_rate"), "learning_rate must be positive");
  }
  hp["weight_decay"] =
      NumberField(hp_in, "weight_decay", 0, 10, hp_name("weight_decay")).value_or(0.1);
  hp["warmup_fraction"] =
      NumberField(hp_in, "warmup_fraction", 0, 0.99, hp_name("warmup_fraction")).value_or(0.05);
  std::optional<double> epochs;
  if (hp_in.contains("n_epochs") && hp_in["n_epochs"].is_string() &&
      hp_in["n_epochs"].get<std::string>() == "auto") {
    epochs = std::nullopt;  // OpenAI's "auto": one pass
  } else {
    epochs = NumberField(hp_in, "epochs", 1e-3, 1000, hp_name("epochs"));
    if (!epochs) epochs = NumberField(hp_in, "n_epochs", 1e-3, 1000, hp_name("n_epochs"));
  }
  hp["epochs"] = epochs ? Json(*epochs) : (steps ? Json(nullptr) : Json(1.0));
  hp["seq_len"] = IntField(hp_in, "seq_len", 16, 131072, hp_name("seq_len")).value_or(2048);
  if (const auto fim = NumberField(hp_in, "fim_ratio", 0, 1, hp_name("fim_ratio"));
      fim && *fim > 0) {
    throw ApiError::BadField(hp_name("fim_ratio"),
                             "FIM training is not supported: fim_ratio must be 0 or null");
  }
  hp["fim_ratio"] = nullptr;
  job.hyperparameters = hp;
  job.metadata = {
      {"train_tokens_per_step", hp["seq_len"]},
      {"train_tokens", steps ? Json(*steps * hp["seq_len"].get<int64_t>()) : Json(nullptr)},
      {"data_tokens", nullptr},
      {"expected_duration_seconds", nullptr},
      {"cost", 0},
      {"cost_currency", nullptr},
      {"estimated_start_time", nullptr}};

  job.status = job.auto_start ? job_status::kQueued : job_status::kValidated;
  jobs_->Create(job);
  if (job.auto_start) worker_->Wake();
  return JobJson(job);
}

Json FineTuningService::ListJobs(const http::HttpRequest& request) {
  const auto query = http::ParseQuery(request.query);
  JobFilter filter;
  filter.owner = request.owner;
  filter.page = QueryInt(query, "page", 0, 0, 1 << 20);
  filter.page_size =
      QueryInt(query, "page_size", QueryInt(query, "limit", 100, 1, 10000), 1, 10000);
  filter.model = QueryText(query, "model");
  filter.status = QueryText(query, "status");
  filter.suffix = QueryText(query, "suffix");
  filter.created_after = ParseTime(QueryText(query, "created_after"), "created_after");
  int64_t total = 0;
  Json data = Json::array();
  for (const JobRecord& job : jobs_->List(filter, &total)) data.push_back(JobJson(job));
  return {{"object", "list"},
          {"data", data},
          {"total", total},
          {"has_more", (filter.page + 1) * filter.page_size < total}};
}

Json FineTuningService::GetJob(const std::string& id, const std::string& owner) {
  const JobRecord job = RequireJob(id, owner);
  return DetailedJobJson(job, jobs_->Events(job.id), jobs_->Checkpoints(job.id));
}

Json FineTuningService::CancelJob(const std::string& id, const std::string& owner) {
  RequireJob(id, owner);
  worker_->Cancel(id);  // a finished job stays as it is
  return GetJob(id, owner);
}

Json FineTuningService::StartJob(const std::string& id, const std::string& owner) {
  const JobRecord job = RequireJob(id, owner);
  if (job.status == job_status::kValidated) {
    jobs_->SetStatus(job.id, job_status::kQueued);
    worker_->Wake();
  } else if (IsFinished(job.status)) {
    throw ApiError(409, "invalid_request_error",
                   "job " + id + " is " + job.status +
                       "; only a job created with auto_start: false can be started",
                   "job_not_startable", "job_id");
  }
  return GetJob(id, owner);
}

}  // namespace bora::server
