// The HTTP front end of `bora serve`: both API dialects on one route set, bearer auth, request
// ids, body limits, CORS, SSE streaming, the web chat page and /metrics, with every failure
// answered through one error mapping.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "server/access_control.h"
#include "server/metrics.h"
#include "server/served_model.h"

namespace bora::server {

namespace http {
class ConnectionServer;
class Router;
struct HttpRequest;
struct HttpResponse;
}  // namespace http

// Limits follow reliability rule H2 (the defaults); a client over one gets a 4xx and is closed.
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                           // 0: any free port
  std::vector<std::string> api_keys;         // empty: no auth
  std::vector<std::string> admin_api_keys;   // files and fine-tuning; empty: any API key
  std::vector<std::string> allowed_hosts;    // Host names accepted besides loopback ones
  bool public_models = false;                // GET /v1/models without a key
  RateLimits rate_limits;                    // per key (per address without keys)
  size_t max_body_bytes = size_t{8} << 20;   // 413 above, before the body is read
  int read_timeout_seconds = 30;             // a client sending no body byte this long: 408
  int http_threads = 64;                     // requests handled at once
  std::vector<std::string> cors_origins;     // "*" or exact origins
  int header_timeout_seconds = 10;           // the whole header section: 408 after
  int body_timeout_seconds = 120;            // the whole body: 408 after
  int keep_alive_seconds = 60;               // an idle kept-alive connection is closed after
  int write_timeout_seconds = 30;            // a write stalled this long fails (stream cancelled)
  int shutdown_grace_seconds = 30;           // in-flight requests after Stop(), then cut
  size_t max_request_line_bytes = 8 * 1024;  // 414 above
  size_t max_header_bytes = 32 * 1024;       // 431 above
  size_t max_header_count = 100;             // 431 above
  size_t max_connections = 512;              // 503 and closed above
  size_t max_connections_per_ip = 64;        // 503 and closed above
  size_t max_upload_bytes = size_t{512} << 20;     // POST /v1/files bodies: 413 above
  int64_t upload_quota_bytes = int64_t{10} << 30;  // stored files per API key; 0: none
  std::string state_dir;  // files and fine-tuning jobs; empty: those routes are off
  int train_threads = 0;  // fine-tuning threads (0: all cores)
  // Under mpirun: the communicator fine-tuning jobs train data parallel on (null: this process).
  dist::Communicator* training_comm = nullptr;
};

class FineTuningService;

class HttpServer {
 public:
  HttpServer(std::vector<std::unique_ptr<ServedModel>> models, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket; returns the port (useful with port 0). Throws IoError.
  int Bind();
  // Serves until Stop(); blocks.
  void Serve();
  void Stop();
  // Ends every in-flight and queued generation now with an error carrying `reason` (a group of
  // ranks stopping: mpirun gives its processes one second after SIGTERM).
  void AbortInFlight(const std::string& reason);

  Metrics& metrics() { return metrics_; }
  // The route table as {method, pattern}.
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  void RegisterRoutes();
  // Request id, CORS, preflight and auth, then the route (or a 404).
  void Handle(http::HttpRequest& req, http::HttpResponse& res);
  void RegisterFineTuningRoutes();
  // Wraps a route's handler: the one mapping of exceptions to error responses, and counting.
  std::function<void(const http::HttpRequest&, http::HttpResponse&)> Route(
      const std::string& name,
      std::function<void(const http::HttpRequest&, http::HttpResponse&)> handler);
  // Model lookups take a shared lock: a finished fine-tuning job adds its model while requests
  // run. Models are never removed, so a pointer stays valid for the server's lifetime.
  ServedModel* FindModel(const std::string& id);
  std::vector<ServedModel*> Models();
  void AddModel(std::unique_ptr<ServedModel> model);
  FineTuningService& RequireFineTuning();

  std::shared_mutex models_mutex_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  ServerOptions options_;
  AccessControl access_;
  // Declared after models_: destroyed (its training thread stopped) before the models it uses.
  std::unique_ptr<FineTuningService> fine_tuning_;
  Metrics metrics_;
  std::unique_ptr<http::Router> router_;
  std::unique_ptr<http::ConnectionServer> http_;
};

}  // namespace bora::server
