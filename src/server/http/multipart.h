// multipart/form-data request bodies (RFC 7578 over RFC 2046 framing), as the SDKs' file uploads
// send them, parsed in one linear pass into views of the body.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bora::server::http {

// One form field. `data` points into the body given to ParseMultipartFormData, so it is valid
// only while that body is.
struct FormPart {
  std::string name;                     // Content-Disposition name
  std::optional<std::string> filename;  // filename* (RFC 5987, decoded) or filename, when sent
  std::string content_type;             // as sent, "text/plain" when absent (RFC 7578 §4.4)
  std::string_view data;
};

// The boundary parameter of a multipart/form-data Content-Type header value. Throws
// bora::InvalidArgument when the media type is another one or the boundary is missing or invalid
// (RFC 2046: 1 to 70 characters).
std::string MultipartBoundary(std::string_view content_type_header);

// Splits a multipart/form-data body into its parts, in order. Throws bora::InvalidArgument naming
// the problem (no delimiter, no close delimiter, a part without Content-Disposition or name,
// oversized part headers, more than `max_parts` parts, ...). Runs in time linear in the body.
std::vector<FormPart> ParseMultipartFormData(std::string_view body, std::string_view boundary,
                                             size_t max_parts = 64);

// The first part with this exact (case-sensitive, as HTML forms are) name, or nullptr.
const FormPart* FindPart(const std::vector<FormPart>& parts, std::string_view name);

}  // namespace bora::server::http
