// JSON body parsing and typed field readers.
#include "server/json_body.h"

#include <malloc.h>

#include <cmath>

#include "server/api_error.h"

namespace bora::server {
namespace {

// Thrown from the parser callback to stop at the first too-deep container.
struct TooDeep {};

std::string TypeName(const Json& value) { return value.type_name(); }

}  // namespace

Json ParseBody(std::string_view text) {
  Json body;
  try {
    body = Json::parse(text.begin(), text.end(), [](int depth, Json::parse_event_t event, Json&) {
      if ((event == Json::parse_event_t::object_start ||
           event == Json::parse_event_t::array_start) &&
          depth >= kMaxJsonDepth) {
        throw TooDeep{};
      }
      return true;
    });
  } catch (const TooDeep&) {
    throw ApiError(
        400, "invalid_request_error",
        "the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const Json::exception& e) {
    throw ApiError(400, "invalid_request_error",
                   std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object())
    throw ApiError::Validation("", "the request body must be a JSON object",
                               "model_attributes_type");
  return body;
}

std::optional<double> NumberField(const Json& body, const std::string& field, double min,
                                  double max, const std::string& name) {
  const std::string& key = name.empty() ? field : name;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) {
    throw ApiError::Validation(key, key + " must be a number, not " + TypeName(*it), "float_type");
  }
  const double value = it->get<double>();
  if (!std::isfinite(value) || value < min || value > max) {
    throw ApiError::BadField(key, key + " must be between " + Json(min).dump() + " and " +
                                      Json(max).dump() + ", got " + it->dump());
  }
  return value;
}

std::optional<int64_t> IntField(const Json& body, const std::string& field, int64_t min,
                                int64_t max, const std::string& name) {
  const std::string& key = name.empty() ? field : name;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_number_float()) {
    // 2.0 is read as 2 (as pydantic does); 2.5 is a type error. An integer literal beyond 64 bits
    // also arrives here (the parser turns it into a double): out of range, not a wrong type.
    const double value = it->get<double>();
    if (value != std::floor(value)) {
      throw ApiError::Validation(key, key + " must be an integer, got " + it->dump(), "int_type");
    }
    if (value < -9223372036854775808.0 || value >= 9223372036854775808.0) {
      throw ApiError::BadField(key, key + " is outside the 64-bit integer range: " + it->dump());
    }
    const auto whole = static_cast<int64_t>(value);
    if (whole < min || whole > max) {
      throw ApiError::BadField(key, key + " must be between " + std::to_string(min) + " and " +
                                        std::to_string(max) + ", got " + it->dump());
    }
    return whole;
  }
  if (!it->is_number_integer()) {
    throw ApiError::Validation(key, key + " must be an integer, not " + TypeName(*it), "int_type");
  }
  // Unsigned values above int64 and negative values both come through the checks below.
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw ApiError::BadField(key, key + " is too large: " + it->dump());
  }
  const int64_t value = it->get<int64_t>();
  if (value < min || value > max) {
    throw ApiError::BadField(key, key + " must be between " + std::to_string(min) + " and " +
                                      std::to_string(max) + ", got " + std::to_string(value));
  }
  return value;
}

std::optional<bool> BoolField(const Json& body, const std::string& field, const std::string& name) {
  const std::string& key = name.empty() ? field : name;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean())
    throw ApiError::Validation(key, key + " must be a boolean, not " + TypeName(*it), "bool_type");
  return it->get<bool>();
}

std::optional<std::string> StringField(const Json& body, const std::string& field,
                                       const std::string& name) {
  const std::string& key = name.empty() ? field : name;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    throw ApiError::Validation(key, key + " must be a string, not " + TypeName(*it), "string_type");
  }
  return it->get<std::string>();
}

std::optional<std::vector<std::string>> StringListField(const Json& body, const std::string& field,
                                                        const std::string& name) {
  const std::string& key = name.empty() ? field : name;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
  if (!it->is_array()) {
    throw ApiError::Validation(key, key + " must be a string or a list of strings", "string_type");
  }
  std::vector<std::string> values;
  for (const Json& item : *it) {
    if (!item.is_string()) {
      throw ApiError::Validation(key, key + " must contain only strings, found " + TypeName(item),
                                 "string_type");
    }
    values.push_back(item.get<std::string>());
  }
  return values;
}

size_t TextBytes(const Json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>().size();
  size_t bytes = 0;
  if (value.is_object()) {
    for (const auto& item : value.items()) bytes += item.key().size() + TextBytes(item.value());
  } else if (value.is_array()) {
    for (const Json& item : value) bytes += TextBytes(item);
  }
  return bytes;
}

namespace {

void ReleaseFreeHeapMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

ReleaseMemoryAroundLargeRequest::ReleaseMemoryAroundLargeRequest(const Json& body)
    : large_(TextBytes(body) >= kLargeRequestText) {
  if (large_) ReleaseFreeHeapMemory();
}

ReleaseMemoryAroundLargeRequest::~ReleaseMemoryAroundLargeRequest() {
  if (large_) ReleaseFreeHeapMemory();
}

}  // namespace bora::server
