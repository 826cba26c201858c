// The HTTP front end of `bora serve`: both API dialects on one route set, bearer auth, request
// ids, body limits, CORS, SSE streaming, the web chat page and /metrics, with every failure
// answered through one error mapping.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/served_model.h"

namespace httplib {
class Server;
}

namespace bora::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port
  std::vector<std::string> api_keys;        // empty: no auth
  size_t max_body_bytes = size_t{8} << 20;  // 413 above
  int read_timeout_seconds = 30;            // a client sending nothing this long is dropped
  int http_threads = 64;                    // connections served at once
  std::vector<std::string> cors_origins;    // "*" or exact origins
};

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

  Metrics& metrics() { return metrics_; }

 private:
  void RegisterRoutes();
  ServedModel* FindModel(const std::string& id);
  std::vector<ServedModel*> Models();

  std::vector<std::unique_ptr<ServedModel>> models_;
  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace bora::server
