// Mapping of exceptions to API errors and their JSON bodies.
#include "server/api_error.h"

#include "base/error.h"

namespace bora::server {

ApiError ApiError::Validation(const std::string& field, const std::string& message,
                              const std::string& kind) {
  ApiError error(422, "invalid_request_error", message, "", field);
  nlohmann::json loc = nlohmann::json::array({"body"});
  if (!field.empty()) loc.push_back(field);
  error.detail_ = nlohmann::json::array({{{"loc", loc}, {"msg", message}, {"type", kind}}});
  return error;
}

ApiError ApiError::BadField(const std::string& field, const std::string& message) {
  return ApiError(400, "invalid_request_error", message, "", field);
}

ApiError ToApiError(const std::exception& error) {
  if (const auto* api = dynamic_cast<const ApiError*>(&error)) return *api;
  if (dynamic_cast<const InvalidArgument*>(&error) || dynamic_cast<const FormatError*>(&error) ||
      dynamic_cast<const Unsupported*>(&error)) {
    return ApiError(400, "invalid_request_error", error.what());
  }
  if (dynamic_cast<const ResourceExhausted*>(&error)) {
    return ApiError(429, "rate_limited", error.what(), "1300").WithRetryAfter(1);
  }
  return ApiError(500, "internal_error", std::string("internal error: ") + error.what());
}

nlohmann::json ErrorBody(const ApiError& error) {
  const nlohmann::json code =
      error.code().empty() ? nlohmann::json(nullptr) : nlohmann::json(error.code());
  const nlohmann::json param =
      error.param().empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param());
  nlohmann::json body = {{"object", "error"},
                         {"message", error.what()},
                         {"type", error.type()},
                         {"param", param},
                         {"code", code}};
  body["error"] = {
      {"message", error.what()}, {"type", error.type()}, {"param", param}, {"code", code}};
  if (error.status() == 422 && error.detail().is_array()) body["detail"] = error.detail();
  return body;
}

}  // namespace bora::server
