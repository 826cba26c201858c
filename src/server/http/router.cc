// Matches request paths against the registered routes, segment by segment.
#include "server/http/router.h"

#include <string_view>

namespace bora::server::http {
namespace {

std::vector<std::string> SplitSegments(std::string_view path) {
  std::vector<std::string> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    segments.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool IsParameter(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back({std::move(method), SplitSegments(pattern), std::move(handler)});
}

bool Router::Match(const Route& route, const std::string& path,
                   std::map<std::string, std::string>* params) {
  if (path.empty() || path.front() != '/') return false;
  std::string_view rest(path);
  rest.remove_prefix(1);
  for (size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& segment = route.segments[i];
    const bool last = i + 1 == route.segments.size();
    const size_t slash = rest.find('/');
    if (IsParameter(segment)) {
      const std::string name = segment.substr(1, segment.size() - 2);
      const std::string_view value = last ? rest : rest.substr(0, slash);
      if (value.empty()) return false;
      (*params)[name] = std::string(value);
    } else if (rest.substr(0, slash) != segment) {
      return false;
    }
    if (last) return IsParameter(segment) || slash == std::string_view::npos;
    if (slash == std::string_view::npos) return false;
    rest.remove_prefix(slash + 1);
  }
  return false;
}

const Router::Handler* Router::Find(HttpRequest& request) const {
  const std::string& method = request.method == "HEAD" ? std::string("GET") : request.method;
  for (const Route& route : routes_) {
    if (route.method != method) continue;
    std::map<std::string, std::string> params;
    if (Match(route, request.path, &params)) {
      request.path_params = std::move(params);
      return &route.handler;
    }
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> Router::Table() const {
  std::vector<std::pair<std::string, std::string>> table;
  for (const Route& route : routes_) {
    std::string pattern;
    for (const std::string& segment : route.segments) pattern += "/" + segment;
    table.emplace_back(route.method, pattern.empty() ? "/" : pattern);
  }
  return table;
}

}  // namespace bora::server::http
