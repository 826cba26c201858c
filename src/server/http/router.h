// A method + path router: literal paths and `{name}` parameters (a final one takes the rest of
// the path, slashes included); HEAD is served by the GET route.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "server/http/http_request_parser.h"
#include "server/http/http_response.h"

namespace bora::server::http {

class Router {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  // `pattern` starts with '/'; a segment written {name} captures into request.path_params.
  void Add(std::string method, std::string pattern, Handler handler);

  // The handler for the request, with its parameters stored in request.path_params; nullptr
  // when no route matches.
  const Handler* Find(HttpRequest& request) const;

  // Every route as {method, pattern}, in the order added (for the auth-matrix test and docs).
  std::vector<std::pair<std::string, std::string>> Table() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for a parameter
    Handler handler;
  };
  static bool Match(const Route& route, const std::string& path,
                    std::map<std::string, std::string>* params);

  std::vector<Route> routes_;
};

}  // namespace bora::server::http
