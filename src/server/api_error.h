// Errors the HTTP API answers with: an HTTP status plus the fields both SDKs read, and the one
// place that maps bora's typed exceptions to them.
#pragma once

#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace bora::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string message, std::string code = "",
           std::string param = "")
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        code_(std::move(code)),
        param_(std::move(param)) {}

  // 422 with a FastAPI-style `detail` entry: loc ["body", field], msg, type.
  static ApiError Validation(const std::string& field, const std::string& message,
                             const std::string& kind = "value_error");
  // 400 invalid_request_error naming the field.
  static ApiError BadField(const std::string& field, const std::string& message);

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const std::string& param() const { return param_; }
  const nlohmann::json& detail() const { return detail_; }
  int retry_after_seconds() const { return retry_after_; }
  ApiError& WithRetryAfter(int seconds) {
    retry_after_ = seconds;
    return *this;
  }

 private:
  int status_;
  std::string type_;
  std::string code_;
  std::string param_;
  nlohmann::json detail_;  // array for 422, else null
  int retry_after_ = 0;
};

// The API error for any exception: ApiError as is; InvalidArgument/FormatError/Unsupported 400;
// ResourceExhausted 429 (retry); IoError and anything else 500.
ApiError ToApiError(const std::exception& error);

// Body satisfying both SDKs: Mistral's top-level fields, OpenAI's `error` object, and
// `detail` on 422 (mistral-api.md §7).
nlohmann::json ErrorBody(const ApiError& error);

}  // namespace bora::server
