// Routes, auth, limits and error mapping of the HTTP server (cpp-httplib).
#include "server/http_server.h"

#include <httplib.h>

#include <random>

#include "base/error.h"
#include "server/api_error.h"
#include "server/completions.h"
#include "server/embeddings.h"
#include "server/web_page.h"

namespace bora::server {
namespace {

std::string NewRequestId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::mt19937_64 random((static_cast<uint64_t>(device()) << 32) ^ device());
  std::string id = "req-";
  for (int i = 0; i < 24; ++i) id += kHex[random() % 16];
  return id;
}

// Compares without an early exit, so the time taken does not reveal how much of a key matched.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= x ^ y;
  }
  return difference == 0;
}

void WriteJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void WriteError(httplib::Response& res, const ApiError& error) {
  if (error.retry_after_seconds() > 0)
    res.set_header("Retry-After", std::to_string(error.retry_after_seconds()));
  WriteJson(res, error.status(), ErrorBody(error));
}

class SinkWriter : public ChunkWriter {
 public:
  explicit SinkWriter(httplib::DataSink& sink) : sink_(sink) {}
  bool Write(std::string_view data) override {
    if (!sink_.is_writable()) return false;
    return sink_.write(data.data(), data.size());
  }

 private:
  httplib::DataSink& sink_;
};

}  // namespace

HttpServer::HttpServer(std::vector<std::unique_ptr<ServedModel>> models, ServerOptions options)
    : models_(std::move(models)),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()) {
  const int threads = options_.http_threads;
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(options_.read_timeout_seconds, 0);
  http_->set_write_timeout(30, 0);
  http_->set_keep_alive_timeout(60);
  RegisterRoutes();
}

HttpServer::~HttpServer() { Stop(); }

ServedModel* HttpServer::FindModel(const std::string& id) {
  for (auto& model : models_) {
    if (model->id() == id) return model.get();
  }
  return nullptr;
}

std::vector<ServedModel*> HttpServer::Models() {
  std::vector<ServedModel*> out;
  for (auto& model : models_) out.push_back(model.get());
  return out;
}

int HttpServer::Bind() {
  const int port = options_.port == 0
                       ? http_->bind_to_any_port(options_.host)
                       : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0) {
    throw IoError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                  " (in use, or not an address of this machine); pick another --port or --host");
  }
  return port;
}

void HttpServer::Serve() { http_->listen_after_bind(); }

void HttpServer::Stop() {
  if (http_) http_->stop();
}

void HttpServer::RegisterRoutes() {
  httplib::Server& http = *http_;

  // Every response carries a request id; /v1 routes need a key when keys are configured.
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("x-request-id", NewRequestId());
    const std::string origin = req.get_header_value("Origin");
    for (const std::string& allowed : options_.cors_origins) {
      if (allowed == "*" || allowed == origin) {
        res.set_header("Access-Control-Allow-Origin", allowed == "*" ? "*" : origin);
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        break;
      }
    }
    if (req.method == "OPTIONS") {
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!options_.api_keys.empty() && req.path.rfind("/v1/", 0) == 0) {
      const std::string header = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      bool ok = false;
      if (header.size() > prefix.size() && header.compare(0, prefix.size(), prefix) == 0) {
        const std::string key = header.substr(prefix.size());
        for (const std::string& expected : options_.api_keys)
          ok = ConstantTimeEquals(key, expected) || ok;
      }
      if (!ok) {
        WriteError(res,
                   ApiError(401, "authentication_error",
                            header.empty() ? "missing API key: send Authorization: Bearer <key>"
                                           : "invalid API key",
                            "unauthorized"));
        metrics_.CountRequest(req.path, 401);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Statuses cpp-httplib produces itself (404 route, 413 body, 400 framing) get our JSON body.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message = "HTTP " + std::to_string(res.status);
        std::string type = "invalid_request_error";
        if (res.status == 404) message = "no route " + req.method + " " + req.path;
        if (res.status == 413)
          message = "the request body is larger than the server accepts (--max-body)";
        if (res.status >= 500) type = "internal_error";
        WriteError(res, ApiError(res.status, type, message));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          WriteError(res, ToApiError(e));
        } catch (...) {
          WriteError(res, ApiError(500, "internal_error", "internal error"));
        }
      });

  // Wraps a handler: the one place that turns exceptions into error responses and counts.
  auto route = [this](std::string name,
                      std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    return [this, name, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const std::exception& e) {
        WriteError(res, ToApiError(e));
      }
      metrics_.CountRequest(name, res.status);
    };
  };
  // A JSON POST body with its model resolved.
  auto json_request = [this](const httplib::Request& req, Json& body) -> ServedModel& {
    const std::string type = req.get_header_value("Content-Type");
    if (type.find("application/json") == std::string::npos) {
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
  auto completion = [this, json_request](CompletionKind kind) {
    return [this, json_request, kind](const httplib::Request& req, httplib::Response& res) {
      Json body;
      ServedModel& model = json_request(req, body);
      PreparedCompletion prepared = kind == CompletionKind::kChat ? PrepareChat(body, model)
                                    : kind == CompletionKind::kFim
                                        ? PrepareFim(body, model)
                                        : PrepareLegacyCompletion(body, model);
      if (!prepared.fields.stream) {
        WriteJson(res, 200, RunCompletion(prepared, metrics_));
        return;
      }
      // Submitted here, so a full queue is still a plain 429 before any byte of the stream.
      auto stream = std::make_shared<CompletionStream>(std::move(prepared), metrics_);
      res.status = 200;
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [stream](size_t, httplib::DataSink& sink) {
            SinkWriter writer(sink);
            stream->Run(writer);
            sink.done();
            return true;
          },
          [stream](bool) { /* the stream's destructor cancels an unfinished request */ });
    };
  };

  http.Get("/", route("/", [](const httplib::Request&, httplib::Response& res) {
             res.set_content(std::string(WebPageHtml()), "text/html; charset=utf-8");
           }));
  http.Get(
      "/health", route("/health", [this](const httplib::Request&, httplib::Response& res) {
        Json models = Json::array();
        for (ServedModel* model : Models()) {
          const runtime::EngineCounters c = model->engine().counters();
          models.push_back({{"id", model->id()}, {"running", c.running}, {"queued", c.queued}});
        }
        WriteJson(res, 200, {{"status", "ok"}, {"models", models}});
      }));
  http.Get("/metrics", route("/metrics", [this](const httplib::Request&, httplib::Response& res) {
             res.set_content(metrics_.Render(Models()), "text/plain; version=0.0.4");
           }));
  http.Get("/v1/models",
           route("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
             Json data = Json::array();
             for (ServedModel* model : Models()) data.push_back(model->Card());
             WriteJson(res, 200, {{"object", "list"}, {"data", data}});
           }));
  http.Get(R"(/v1/models/(.+))",
           route("/v1/models/{id}", [this](const httplib::Request& req, httplib::Response& res) {
             const std::string id = req.matches[1];
             ServedModel* model = FindModel(id);
             if (model == nullptr) {
               throw ApiError(404, "invalid_model", "Invalid model: " + id, "1500", "model_id");
             }
             WriteJson(res, 200, model->Card());
           }));
  http.Post("/v1/chat/completions",
            route("/v1/chat/completions", completion(CompletionKind::kChat)));
  http.Post("/v1/fim/completions", route("/v1/fim/completions", completion(CompletionKind::kFim)));
  http.Post("/v1/completions", route("/v1/completions", completion(CompletionKind::kLegacy)));
  http.Post("/v1/embeddings",
            route("/v1/embeddings",
                  [this, json_request](const httplib::Request& req, httplib::Response& res) {
                    Json body;
                    ServedModel& model = json_request(req, body);
                    WriteJson(res, 200, RunEmbeddings(body, model, metrics_));
                  }));
}

}  // namespace bora::server
