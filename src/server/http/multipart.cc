// multipart/form-data parsing: the boundary from Content-Type, then each delimiter found with one
// forward search from the end of the previous one, so a hostile body costs linear time and a
// malformed one a named error.
#include "server/http/multipart.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/error.h"
#include "server/http/http_request_parser.h"

namespace bora::server::http {
namespace {

constexpr size_t kMaxBoundary = 70;  // RFC 2046 §5.1.1
// SDKs send well under 200 bytes of part headers; the cap bounds what one part can make us scan
// before its data starts.
constexpr size_t kMaxPartHeaderBytes = 16 * 1024;
constexpr size_t kMaxQuoted = 64;  // of untrusted text in an error message

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool IsTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= '0' && u <= '9') return true;
  if ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') return true;
  return u != 0 && std::strchr("!#$%&'*+-.^_`|~", u) != nullptr;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Untrusted text for an error message: shortened, control bytes as '?', so `what()` stays one
// readable line.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, kMaxQuoted)) out.push_back(IsControl(c) ? '?' : c);
  out += s.size() > kMaxQuoted ? "...\"" : "\"";
  return out;
}

// Well-formed UTF-8 as RFC 3629 defines it: no overlong forms, surrogates or code points above
// U+10FFFF, so a decoded filename can be stored and echoed back as JSON.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (b0 < 0x80) {
      length = 1;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
      length = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      length = 3;
      if (b0 == 0xe0) low = 0xa0;
      if (b0 == 0xed) high = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      length = 4;
      if (b0 == 0xf0) low = 0x90;
      if (b0 == 0xf4) high = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xbf)) return false;
    }
    i += length;
  }
  return true;
}

struct Parameter {
  std::string name;
  std::string value;
};

// Parses the `; name=value` list that follows a header value's type (RFC 9110 §5.6.6); quoted
// strings take backslash escapes. Unquoted values may hold any visible character but ';' and '"',
// a superset of token that accepts the unquoted boundaries some mail-derived clients send
// ("----=_Part_1"). Repeated names are an error: two parsers picking different ones is how
// ambiguous requests slip through. Returns false with `*error` set on malformed syntax.
bool ParseParameters(std::string_view text, std::vector<Parameter>* params, std::string* error) {
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != ';') {
      *error = "expected ';' before " + Quote(text.substr(i));
      return false;
    }
    ++i;
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i == text.size() || text[i] == ';') continue;  // empty element, allowed by the grammar
    const size_t name_start = i;
    while (i < text.size() && IsTokenChar(text[i])) ++i;
    Parameter param;
    param.name = std::string(text.substr(name_start, i - name_start));
    if (param.name.empty()) {
      *error = "malformed parameter " + Quote(text.substr(name_start));
      return false;
    }
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i == text.size() || text[i] != '=') {
      *error = "parameter " + Quote(param.name) + " has no value";
      return false;
    }
    ++i;
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == text.size()) break;
          c = text[i++];
        }
        param.value.push_back(c);
      }
      if (!closed) {
        *error = "parameter " + Quote(param.name) + " has an unterminated quoted string";
        return false;
      }
    } else {
      const size_t value_start = i;
      while (i < text.size() && text[i] != ';' && text[i] != '"' && !IsSpace(text[i]) &&
             !IsControl(text[i])) {
        ++i;
      }
      param.value = std::string(text.substr(value_start, i - value_start));
      if (param.value.empty()) {
        *error = "parameter " + Quote(param.name) + " has an empty value";
        return false;
      }
    }
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i < text.size() && text[i] != ';') {
      *error = "unexpected " + Quote(text.substr(i)) + " after parameter " + Quote(param.name);
      return false;
    }
    for (const Parameter& seen : *params) {
      if (EqualsIgnoreCase(seen.name, param.name)) {
        *error = "parameter " + Quote(param.name) + " is repeated";
        return false;
      }
    }
    params->push_back(std::move(param));
  }
  return true;
}

// Splits a header value into its trimmed type and the parameter text after it.
std::pair<std::string_view, std::string_view> SplitType(std::string_view value) {
  const size_t semicolon = std::min(value.find(';'), value.size());
  return {Trim(value.substr(0, semicolon)), value.substr(semicolon)};
}

const std::string* FindParameter(const std::vector<Parameter>& params, std::string_view name) {
  for (const Parameter& param : params) {
    if (EqualsIgnoreCase(param.name, name)) return &param.value;
  }
  return nullptr;
}

// RFC 2046 §5.1.1: 1 to 70 characters, not ending in a space. Any printable ASCII is let through
// beyond its bchars: the body is searched for the exact string, so they are harmless, and some
// clients use them.
void CheckBoundary(std::string_view boundary) {
  if (boundary.empty() || boundary.size() > kMaxBoundary) {
    throw InvalidArgument("the multipart boundary must be 1 to 70 characters long (it has " +
                          std::to_string(boundary.size()) + ")");
  }
  for (char c : boundary) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      throw InvalidArgument("the multipart boundary has a byte outside printable ASCII");
    }
  }
  if (boundary.back() == ' ') throw InvalidArgument("the multipart boundary ends with a space");
}

// Decodes an RFC 8187 (formerly 5987) ext-value, charset'language'percent-encoded, to UTF-8.
bool DecodeExtValue(std::string_view ext, std::string* out, std::string* error) {
  const size_t first_quote = ext.find('\'');
  const size_t second_quote =
      first_quote == std::string_view::npos ? first_quote : ext.find('\'', first_quote + 1);
  if (second_quote == std::string_view::npos) {
    *error = "is not charset'language'value (want UTF-8''name)";
    return false;
  }
  const std::string_view charset = ext.substr(0, first_quote);
  const bool latin1 = EqualsIgnoreCase(charset, "ISO-8859-1");
  if (!latin1 && !EqualsIgnoreCase(charset, "UTF-8")) {
    *error = "has charset " + Quote(charset) + " (want UTF-8 or ISO-8859-1)";
    return false;
  }
  const std::string_view encoded = ext.substr(second_quote + 1);
  out->clear();
  for (size_t i = 0; i < encoded.size(); ++i) {
    auto byte = static_cast<unsigned char>(encoded[i]);
    if (byte == '%') {
      const int hi = i + 2 < encoded.size() ? HexValue(encoded[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(encoded[i + 2]) : -1;
      if (lo < 0) {
        *error = "has a malformed percent escape";
        return false;
      }
      byte = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    // A NUL would end the name wherever it reaches a C API.
    if (byte == 0) {
      *error = "contains a NUL byte";
      return false;
    }
    if (latin1 && byte >= 0x80) {
      out->push_back(static_cast<char>(0xc0 | (byte >> 6)));
      out->push_back(static_cast<char>(0x80 | (byte & 0x3f)));
    } else {
      out->push_back(static_cast<char>(byte));
    }
  }
  if (!IsValidUtf8(*out)) {
    *error = "is not valid UTF-8";
    return false;
  }
  return true;
}

std::string PartLabel(size_t number) { return "multipart part " + std::to_string(number); }

void ReadContentDisposition(std::string_view value, size_t number, FormPart* part) {
  const auto [type, parameter_text] = SplitType(value);
  if (!EqualsIgnoreCase(type, "form-data")) {
    throw InvalidArgument(PartLabel(number) + ": Content-Disposition is " + Quote(type) +
                          ", not form-data");
  }
  std::vector<Parameter> params;
  std::string error;
  if (!ParseParameters(parameter_text, &params, &error)) {
    throw InvalidArgument(PartLabel(number) + ": malformed Content-Disposition: " + error);
  }
  const std::string* name = FindParameter(params, "name");
  if (name == nullptr) {
    throw InvalidArgument(PartLabel(number) + ": Content-Disposition has no name parameter");
  }
  part->name = *name;
  // RFC 7578 §4.2 with RFC 6266 §4.3: filename* carries non-ASCII names exactly and wins over
  // the plain filename sent beside it for older readers.
  if (const std::string* extended = FindParameter(params, "filename*")) {
    std::string decoded;
    if (!DecodeExtValue(*extended, &decoded, &error)) {
      throw InvalidArgument(PartLabel(number) + ": filename* " + error);
    }
    part->filename = std::move(decoded);
  } else if (const std::string* filename = FindParameter(params, "filename")) {
    part->filename = *filename;
  }
}

// Reads one part's header section starting at `start` (just after its delimiter line) and
// returns where its data starts (just after the blank line).
size_t ReadPartHeaders(std::string_view body, size_t start, size_t number, FormPart* part) {
  // Lines are searched only within the cap, so a part that never ends its headers costs at most
  // kMaxPartHeaderBytes of scanning.
  const std::string_view window =
      body.substr(0, start + std::min(body.size() - start, kMaxPartHeaderBytes));
  bool has_disposition = false;
  bool has_type = false;
  size_t pos = start;
  while (true) {
    const size_t newline = window.find('\n', pos);
    if (newline == std::string_view::npos) {
      if (window.size() < body.size()) {
        throw InvalidArgument(PartLabel(number) + ": the part headers are larger than " +
                              std::to_string(kMaxPartHeaderBytes) + " bytes");
      }
      throw InvalidArgument(PartLabel(number) +
                            ": the body ends inside the part headers (no blank line after them)");
    }
    std::string_view line = body.substr(pos, newline - pos);
    pos = newline + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (IsSpace(line.front())) {
      throw InvalidArgument(PartLabel(number) + ": folded header lines are not accepted");
    }
    if (std::any_of(line.begin(), line.end(), [](char c) { return IsControl(c) && c != '\t'; })) {
      throw InvalidArgument(PartLabel(number) + ": control character in a header line");
    }
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, std::min(colon, line.size()));
    if (colon == std::string_view::npos || name.empty() ||
        !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      throw InvalidArgument(PartLabel(number) + ": malformed header line " + Quote(line));
    }
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Disposition")) {
      if (has_disposition) {
        throw InvalidArgument(PartLabel(number) + ": more than one Content-Disposition header");
      }
      has_disposition = true;
      ReadContentDisposition(value, number, part);
    } else if (EqualsIgnoreCase(name, "Content-Type")) {
      if (has_type)
        throw InvalidArgument(PartLabel(number) + ": more than one Content-Type header");
      has_type = true;
      part->content_type = std::string(value);
    } else if (EqualsIgnoreCase(name, "Content-Transfer-Encoding")) {
      // RFC 7578 §4.7 deprecates it; an encoding other than identity would make `data` wrong.
      if (!EqualsIgnoreCase(value, "binary") && !EqualsIgnoreCase(value, "8bit") &&
          !EqualsIgnoreCase(value, "7bit")) {
        throw InvalidArgument(PartLabel(number) + ": Content-Transfer-Encoding " + Quote(value) +
                              " is not supported (send the bytes as they are)");
      }
    }
    // RFC 7578 §4.8: any other header field is ignored.
  }
  if (!has_disposition) {
    throw InvalidArgument(PartLabel(number) + " has no Content-Disposition header");
  }
  if (!has_type || part->content_type.empty()) part->content_type = "text/plain";  // §4.4
  return pos;
}

// Where a delimiter line was found: its '\n', the position after its line (or after the "--"
// of a close delimiter), and whether it closes the body.
struct Delimiter {
  size_t newline;
  size_t next;
  bool close;
};

// Finds delimiter lines: "--boundary" at the start of a line, then "--" (close) or transport
// padding and a line break. "--boundary" followed by anything else is data, as the RFC 2046
// grammar reads it.
class DelimiterFinder {
 public:
  DelimiterFinder(std::string_view body, std::string_view boundary)
      : body_(body), needle_("\n--" + std::string(boundary)) {}

  // The first delimiter line of the body, which may start the body or follow the preamble.
  std::optional<Delimiter> First() const {
    const std::string_view dash_boundary = std::string_view(needle_).substr(1);
    if (body_.substr(0, dash_boundary.size()) == dash_boundary) {
      if (auto delimiter = Classify(dash_boundary.size())) return delimiter;
    }
    return Find(0);
  }

  // The first delimiter line whose leading '\n' is at or after `from`. Every candidate rejected
  // moves the search forward, so the total work is linear in the body (times the needle length,
  // at most 73).
  std::optional<Delimiter> Find(size_t from) const {
    while (true) {
      const size_t newline = body_.find(needle_, from);
      if (newline == std::string_view::npos) return std::nullopt;
      if (auto delimiter = Classify(newline + needle_.size())) {
        delimiter->newline = newline;
        return delimiter;
      }
      from = newline + 1;
    }
  }

 private:
  // `after` is just past "--boundary".
  std::optional<Delimiter> Classify(size_t after) const {
    if (body_.substr(after, 2) == "--") return Delimiter{0, after + 2, true};
    size_t i = after;
    while (i < body_.size() && IsSpace(body_[i])) ++i;
    if (i < body_.size() && body_[i] == '\n') return Delimiter{0, i + 1, false};
    if (body_.substr(i, 2) == "\r\n") return Delimiter{0, i + 2, false};
    return std::nullopt;
  }

  std::string_view body_;
  std::string needle_;
};

}  // namespace

std::string MultipartBoundary(std::string_view content_type_header) {
  const auto [type, parameter_text] = SplitType(content_type_header);
  if (type.empty()) {
    throw InvalidArgument("the request has no Content-Type (want multipart/form-data)");
  }
  if (!EqualsIgnoreCase(type, "multipart/form-data")) {
    throw InvalidArgument("the Content-Type is " + Quote(type) + ", not multipart/form-data");
  }
  std::vector<Parameter> params;
  std::string error;
  if (!ParseParameters(parameter_text, &params, &error)) {
    throw InvalidArgument("malformed multipart/form-data Content-Type: " + error);
  }
  const std::string* boundary = FindParameter(params, "boundary");
  if (boundary == nullptr) {
    throw InvalidArgument("the multipart/form-data Content-Type has no boundary parameter");
  }
  CheckBoundary(*boundary);
  return *boundary;
}

std::vector<FormPart> ParseMultipartFormData(std::string_view body, std::string_view boundary,
                                             size_t max_parts) {
  CheckBoundary(boundary);
  const DelimiterFinder finder(body, boundary);
  const std::string dash_boundary = "--" + std::string(boundary);
  std::optional<Delimiter> delimiter = finder.First();
  if (!delimiter) {
    throw InvalidArgument("the multipart body has no \"" + dash_boundary +
                          "\" delimiter line (does the boundary match the Content-Type?)");
  }
  std::vector<FormPart> parts;
  while (!delimiter->close) {
    if (parts.size() >= max_parts) {
      throw InvalidArgument("the multipart body has more than " + std::to_string(max_parts) +
                            " parts");
    }
    const size_t number = parts.size() + 1;
    FormPart part;
    const size_t data_start = ReadPartHeaders(body, delimiter->next, number, &part);
    // Searching from the '\n' that ends the header section lets it double as the delimiter's
    // line break: RFC 2046 allows a part that is headers only.
    delimiter = finder.Find(data_start - 1);
    if (!delimiter) {
      throw InvalidArgument("the multipart body ends inside part " + std::to_string(number) + " (" +
                            Quote(part.name) + ") without the closing \"" + dash_boundary +
                            "--\" delimiter");
    }
    // The line break before the delimiter belongs to the delimiter, not to the data.
    size_t data_end = std::max(delimiter->newline, data_start);
    if (data_end > data_start && body[data_end - 1] == '\r') --data_end;
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
  }
  return parts;
}

const FormPart* FindPart(const std::vector<FormPart>& parts, std::string_view name) {
  for (const FormPart& part : parts) {
    if (part.name == name) return &part;
  }
  return nullptr;
}

}  // namespace bora::server::http
