// Routes, auth, limits and error mapping of the HTTP server (on bora's own HTTP/1.1 layer).
#include "dist/world.h"
#include "server/http_server.h"

#include <cctype>
#include <functional>
#include <random>
#include <string_view>

#include "base/error.h"
#include "server/api_error.h"
#include "server/completions.h"
#include "server/embeddings.h"
#include "server/finetune/fine_tuning_service.h"
#include "server/http/connection_server.h"
#include "server/http/router.h"
#include "server/web_page.h"

namespace bora::server {
namespace {

using http::HttpRequest;
using http::HttpResponse;

std::string NewRequestId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::mt19937_64 random((static_cast<uint64_t>(device()) << 32) ^ device());
  std::string id = "req-";
  for (int i = 0; i < 24; ++i) id += kHex[random() % 16];
  return id;
}

void WriteJson(HttpResponse& res, int status, const Json& body) {
  res.status = status;
  res.SetContent(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void WriteError(HttpResponse& res, const ApiError& error) {
  if (error.retry_after_seconds() > 0)
    res.SetHeader("Retry-After", std::to_string(error.retry_after_seconds()));
  WriteJson(res, error.status(), ErrorBody(error));
}

// The JSON error for a status the HTTP layer answers itself (framing, limits, timeouts, caps).
HttpResponse TransportError(int status, const std::string& message) {
  HttpResponse res;
  res.SetHeader("x-request-id", NewRequestId());
  const std::string type = status >= 500 ? "internal_error" : "invalid_request_error";
  const std::string text = status == 413
                               ? "the request body is larger than the server accepts (--max-body)"
                           : message.empty() ? "HTTP " + std::to_string(status)
                                             : message;
  WriteError(res, ApiError(status, type, text));
  return res;
}

class StreamWriter : public ChunkWriter {
 public:
  explicit StreamWriter(http::BodyWriter& out) : out_(out) {}
  bool Write(std::string_view data) override { return out_.Write(data); }
  bool PeerClosed() override { return out_.PeerClosed(); }

 private:
  http::BodyWriter& out_;
};

// `upload_spool_dir`: where upload bodies stream to; empty when the file routes are off (then
// uploads get no larger limit than any other body).
http::ConnectionLimits LimitsOf(const ServerOptions& options, const std::string& upload_spool_dir) {
  using std::chrono::seconds;
  http::ConnectionLimits limits;
  limits.parser.max_request_line = options.max_request_line_bytes;
  limits.parser.max_header_bytes = options.max_header_bytes;
  limits.parser.max_header_count = options.max_header_count;
  limits.parser.max_body_bytes = options.max_body_bytes;
  limits.parser.max_upload_body_bytes = upload_spool_dir.empty() ? 0 : options.max_upload_bytes;
  limits.parser.upload_path_prefix = "/v1/files";
  limits.parser.upload_spool_dir = upload_spool_dir;
  limits.header_timeout = seconds(options.header_timeout_seconds);
  limits.body_idle_timeout = seconds(options.read_timeout_seconds);
  limits.body_timeout = seconds(options.body_timeout_seconds);
  limits.keep_alive_timeout = seconds(options.keep_alive_seconds);
  limits.write_stall_timeout = seconds(options.write_timeout_seconds);
  limits.shutdown_grace = seconds(options.shutdown_grace_seconds);
  limits.max_connections = options.max_connections;
  limits.max_connections_per_ip = options.max_connections_per_ip;
  limits.worker_threads = static_cast<size_t>(std::max(1, options.http_threads));
  return limits;
}

// The media type of a Content-Type value (before any `;` parameter, spaces trimmed, any case)
// is application/json.
bool IsJsonMediaType(std::string_view value) {
  value = value.substr(0, value.find(';'));
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (value.size() != kJson.size()) return false;
  for (size_t i = 0; i < kJson.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kJson[i]) return false;
  }
  return true;
}

AccessOptions AccessOptionsOf(const ServerOptions& options) {
  AccessOptions access;
  access.bound_host = options.host;
  access.allowed_hosts = options.allowed_hosts;
  access.api_keys = options.api_keys;
  access.admin_keys = options.admin_api_keys;
  access.public_models = options.public_models;
  access.rate_limits = options.rate_limits;
  return access;
}

}  // namespace

HttpServer::HttpServer(std::vector<std::unique_ptr<ServedModel>> models, ServerOptions options)
    : models_(std::move(models)),
      options_(std::move(options)),
      access_(AccessOptionsOf(options_)),
      router_(std::make_unique<http::Router>()) {
  if (!options_.state_dir.empty()) {
    FineTuningOptions fine_tuning;
    fine_tuning.state_dir = options_.state_dir;
    fine_tuning.train_threads = options_.train_threads;
    fine_tuning.training_comm = options_.training_comm;
    fine_tuning.upload_quota_bytes = options_.upload_quota_bytes;
    ModelHooks hooks{[this](const std::string& id) { return FindModel(id); },
                     [this](std::unique_ptr<ServedModel> model) { AddModel(std::move(model)); }};
    try {
      fine_tuning_ = std::make_unique<FineTuningService>(fine_tuning, hooks);
    } catch (const StateDirInUse& e) {
      // Two servers on one machine are fine; only one of them can own the jobs.
      std::fprintf(stderr, "bora serve: warning: %s; /v1/files and /v1/fine_tuning are off\n",
                   e.what());
    }
  }
  RegisterRoutes();
  RegisterFineTuningRoutes();
  if (fine_tuning_) fine_tuning_->Start();
  http_ = std::make_unique<http::ConnectionServer>(
      LimitsOf(options_, fine_tuning_ ? fine_tuning_->files_dir() : std::string()),
      [this](HttpRequest& req, HttpResponse& res) { Handle(req, res); }, TransportError);
}

HttpServer::~HttpServer() {
  Stop();
  fine_tuning_.reset();
}

ServedModel* HttpServer::FindModel(const std::string& id) {
  std::shared_lock<std::shared_mutex> lock(models_mutex_);
  for (auto& model : models_) {
    if (model->Answers(id)) return model.get();
  }
  return nullptr;
}

std::vector<ServedModel*> HttpServer::Models() {
  std::shared_lock<std::shared_mutex> lock(models_mutex_);
  std::vector<ServedModel*> out;
  for (auto& model : models_) out.push_back(model.get());
  return out;
}

void HttpServer::AddModel(std::unique_ptr<ServedModel> model) {
  std::unique_lock<std::shared_mutex> lock(models_mutex_);
  std::fprintf(stderr, "bora serve: now serving %s\n", model->id().c_str());
  models_.push_back(std::move(model));
}

FineTuningService& HttpServer::RequireFineTuning() {
  if (!fine_tuning_) {
    throw ApiError(404, "invalid_request_error",
                   options_.state_dir.empty()
                       ? "files and fine-tuning are off: start bora serve with --state-dir DIR"
                       : "files and fine-tuning are off in this server: another bora serve uses "
                         "its state folder (start it with its own --state-dir)",
                   "fine_tuning_disabled");
  }
  return *fine_tuning_;
}

int HttpServer::Bind() {
  try {
    return http_->Listen(options_.host, options_.port);
  } catch (const IoError&) {
    throw IoError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                  " (in use, or not an address of this machine); pick another --port or --host");
  }
}

void HttpServer::Serve() { http_->Serve(); }

std::vector<std::pair<std::string, std::string>> HttpServer::Routes() const {
  return router_->Table();
}

void HttpServer::AbortInFlight(const std::string& reason) {
  for (ServedModel* model : Models()) {
    if (!model->is_adapter()) model->engine().AbortAll(reason);
  }
}

void HttpServer::Stop() {
  if (http_) http_->Stop();
  if (fine_tuning_) fine_tuning_->Stop();
}

void HttpServer::Handle(HttpRequest& req, HttpResponse& res) {
  // Every response carries a request id.
  res.SetHeader("x-request-id", NewRequestId());
  const std::string origin = req.Header("Origin");
  for (const std::string& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) {
      res.SetHeader("Access-Control-Allow-Origin", allowed == "*" ? "*" : origin);
      res.SetHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.SetHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      break;
    }
  }
  // Host, key and rate limit; the ticket holds this client's in-flight slot until the response
  // (a stream: its last byte) is done.
  std::shared_ptr<RateLimiter::Ticket> ticket;
  try {
    AccessControl::Admission admission = access_.Admit(req);
    ticket = std::move(admission.ticket);
    req.owner = std::move(admission.owner);
  } catch (const ApiError& error) {
    WriteError(res, error);
    metrics_.CountRequest("(refused)", error.status());  // not the path: labels stay bounded
    return;
  }
  if (req.method == "OPTIONS") {  // a CORS preflight: the headers above say what is allowed
    res.status = 204;
    return;
  }
  const http::Router::Handler* handler = router_->Find(req);
  if (handler == nullptr) {
    WriteError(res,
               ApiError(404, "invalid_request_error", "no route " + req.method + " " + req.path));
    return;
  }
  (*handler)(req, res);
  if (ticket && res.stream) {
    res.stream = [inner = std::move(res.stream), ticket](http::BodyWriter& out) { inner(out); };
  }
  // A handler that set an error status without a body still answers with our JSON error.
  if (res.status >= 400 && res.body.empty() && !res.stream) {
    WriteError(res,
               ApiError(res.status, res.status >= 500 ? "internal_error" : "invalid_request_error",
                        "HTTP " + std::to_string(res.status)));
  }
}

http::Router::Handler HttpServer::Route(const std::string& name, http::Router::Handler handler) {
  // The one place that turns exceptions into error responses, and counts requests.
  return [this, name, handler](const HttpRequest& req, HttpResponse& res) {
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      res.stream = nullptr;
      WriteError(res, ToApiError(e));
    } catch (...) {
      res.stream = nullptr;
      WriteError(res, ApiError(500, "internal_error", "internal error"));
    }
    metrics_.CountRequest(name, res.status);
  };
}

void HttpServer::RegisterRoutes() {
  http::Router& http = *router_;
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  auto route = [this](std::string name, Handler handler) { return Route(name, handler); };
  // A JSON POST body with its model resolved.
  auto json_request = [this](const HttpRequest& req, Json& body) -> ServedModel& {
    if (!IsJsonMediaType(req.Header("Content-Type"))) {
      throw ApiError(415, "invalid_request_error",
                     "send the body as Content-Type: application/json");
    }
    body = ParseBody(req.body);
    if (!body.contains("model")) throw ApiError::Validation("model", "Field required", "missing");
    const std::optional<std::string> id = StringField(body, "model");
    ServedModel* model = id ? FindModel(*id) : nullptr;
    if (model == nullptr) {
      throw ApiError(404, "invalid_model",
                     "Invalid model: " + (id ? *id : std::string("null")) +
                         " (GET /v1/models lists the served models)",
                     "1500", "model");
    }
    return *model;
  };
  auto completion = [this, json_request](CompletionKind kind) -> Handler {
    return [this, json_request, kind](const HttpRequest& req, HttpResponse& res) {
      Json body;
      ServedModel& model = json_request(req, body);
      PreparedCompletion prepared = kind == CompletionKind::kChat ? PrepareChat(body, model)
                                    : kind == CompletionKind::kFim
                                        ? PrepareFim(body, model)
                                        : PrepareLegacyCompletion(body, model);
      if (!prepared.fields.stream) {
        WriteJson(res, 200, RunCompletion(prepared, metrics_, req.peer_closed));
        return;
      }
      // Submitted here, so a full queue is still a plain 429 before any byte of the stream.
      // Dropping the response drops the stream, whose destructor cancels an unfinished request.
      auto stream = std::make_shared<CompletionStream>(std::move(prepared), metrics_);
      res.status = 200;
      res.SetHeader("Cache-Control", "no-cache");
      res.SetStream("text/event-stream", [stream](http::BodyWriter& out) {
        StreamWriter writer(out);
        stream->Run(writer);
      });
    };
  };

  http.Add("GET", "/", route("/", [](const HttpRequest&, HttpResponse& res) {
             res.SetContent(std::string(WebPageHtml()), "text/html; charset=utf-8");
           }));
  http.Add(
      "GET", "/health", route("/health", [this](const HttpRequest&, HttpResponse& res) {
        Json models = Json::array();
        for (ServedModel* model : Models()) {
          if (model->is_adapter()) continue;  // runs on its base model's engine
          const runtime::EngineCounters c = model->engine().counters();
          models.push_back({{"id", model->id()}, {"running", c.running}, {"queued", c.queued}});
        }
        // "ranks": the tensor-parallel group's size (1 without mpirun).
        WriteJson(res, 200, {{"status", "ok"}, {"ranks", dist::World::Get().size()}, {"models", models}});
      }));
  http.Add("GET", "/metrics", route("/metrics", [this](const HttpRequest&, HttpResponse& res) {
             std::vector<ServedModel*> engines;  // adapters share their base model's engine
             for (ServedModel* model : Models()) {
               if (!model->is_adapter()) engines.push_back(model);
             }
             res.SetContent(metrics_.Render(engines), "text/plain; version=0.0.4");
           }));
  http.Add("GET", "/v1/models", route("/v1/models", [this](const HttpRequest&, HttpResponse& res) {
             Json data = Json::array();
             for (ServedModel* model : Models()) data.push_back(model->Card());
             WriteJson(res, 200, {{"object", "list"}, {"data", data}});
           }));
  http.Add("GET", "/v1/models/{id}",
           route("/v1/models/{id}", [this](const HttpRequest& req, HttpResponse& res) {
             const std::string id = req.path_params.at("id");
             ServedModel* model = FindModel(id);
             if (model == nullptr) {
               throw ApiError(404, "invalid_model", "Invalid model: " + id, "1500", "model_id");
             }
             WriteJson(res, 200, model->Card());
           }));
  http.Add("POST", "/v1/chat/completions",
           route("/v1/chat/completions", completion(CompletionKind::kChat)));
  http.Add("POST", "/v1/fim/completions",
           route("/v1/fim/completions", completion(CompletionKind::kFim)));
  http.Add("POST", "/v1/completions",
           route("/v1/completions", completion(CompletionKind::kLegacy)));
  http.Add("POST", "/v1/embeddings",
           route("/v1/embeddings", [this, json_request](const HttpRequest& req, HttpResponse& res) {
             Json body;
             ServedModel& model = json_request(req, body);
             WriteJson(res, 200, RunEmbeddings(body, model, metrics_));
           }));
}

void HttpServer::RegisterFineTuningRoutes() {
  http::Router& http = *router_;
  using Handler = http::Router::Handler;
  auto json = [this](const HttpRequest& req, HttpResponse& res,
                     const std::function<Json(FineTuningService&)>& call) {
    WriteJson(res, 200, call(RequireFineTuning()));
  };
  auto id_route = [this, json](const std::string& name,
                               Json (FineTuningService::*method)(const std::string&,
                                                                 const std::string&)) -> Handler {
    return Route(name, [json, method](const HttpRequest& req, HttpResponse& res) {
      const std::string id = req.path_params.at("id");
      json(req, res, [&](FineTuningService& service) { return (service.*method)(id, req.owner); });
    });
  };

  http.Add("POST", "/v1/files",
           Route("/v1/files", [json](const HttpRequest& req, HttpResponse& res) {
             json(req, res, [&](FineTuningService& service) { return service.UploadFile(req); });
           }));
  http.Add("GET", "/v1/files",
           Route("/v1/files", [json](const HttpRequest& req, HttpResponse& res) {
             json(req, res, [&](FineTuningService& service) { return service.ListFiles(req); });
           }));
  http.Add("GET", "/v1/files/{id}/content",
           Route("/v1/files/{id}/content", [this](const HttpRequest& req, HttpResponse& res) {
             std::string filename;
             std::string content =
                 RequireFineTuning().FileContent(req.path_params.at("id"), req.owner, &filename);
             res.status = 200;
             res.SetHeader("Content-Disposition", "attachment; filename=\"" + filename + "\"");
             res.SetContent(std::move(content), "application/octet-stream");
           }));
  // After /content: a final {id} would also match "ID/content".
  http.Add("GET", "/v1/files/{id}", id_route("/v1/files/{id}", &FineTuningService::GetFile));
  http.Add("DELETE", "/v1/files/{id}", id_route("/v1/files/{id}", &FineTuningService::DeleteFile));
  http.Add("POST", "/v1/fine_tuning/jobs",
           Route("/v1/fine_tuning/jobs", [json](const HttpRequest& req, HttpResponse& res) {
             if (!IsJsonMediaType(req.Header("Content-Type"))) {
               throw ApiError(415, "invalid_request_error",
                              "send the body as Content-Type: application/json");
             }
             const Json body = ParseBody(req.body);
             json(req, res,
                  [&](FineTuningService& service) { return service.CreateJob(body, req.owner); });
           }));
  http.Add("GET", "/v1/fine_tuning/jobs",
           Route("/v1/fine_tuning/jobs", [json](const HttpRequest& req, HttpResponse& res) {
             json(req, res, [&](FineTuningService& service) { return service.ListJobs(req); });
           }));
  http.Add("GET", "/v1/fine_tuning/jobs/{id}",
           id_route("/v1/fine_tuning/jobs/{id}", &FineTuningService::GetJob));
  http.Add("POST", "/v1/fine_tuning/jobs/{id}/cancel",
           id_route("/v1/fine_tuning/jobs/{id}/cancel", &FineTuningService::CancelJob));
  http.Add("POST", "/v1/fine_tuning/jobs/{id}/start",
           id_route("/v1/fine_tuning/jobs/{id}/start", &FineTuningService::StartJob));
}

}  // namespace bora::server
