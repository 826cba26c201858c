// Python-compatible JSON serialisation (json.dumps defaults) over nlohmann::ordered_json.
#include "tokenizer/python_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

// Python float repr: shortest round-trip digits; fixed notation when -4 <= exponent < 16
// (always with a fractional part), else d[.ddd]e±XX with at least two exponent digits.
void AppendPythonFloat(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-Infinity" : "Infinity";
    return;
  }
  char buffer[64];
  auto result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string_view sci(buffer, result.ptr - buffer);  // e.g. "-1.2345e+02"
  bool negative = !sci.empty() && sci[0] == '-';
  if (negative) sci.remove_prefix(1);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (negative) out += '-';
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out += digits;
      out.append(static_cast<size_t>(exponent + 1 - static_cast<int>(digits.size())), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exponent + 1));
      out += '.';
      out += digits.substr(static_cast<size_t>(exponent + 1));
    }
    return;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d", exponent < 0 ? '-' : '+',
                std::abs(exponent));
  out += exponent_text;
}

void AppendEscapedUnit(uint32_t unit, std::string& out) {
  char escaped[16];
  std::snprintf(escaped, sizeof(escaped), "\\u%04x", unit);
  out += escaped;
}

void AppendPythonString(const std::string& text, bool ensure_ascii, std::string& out) {
  out += '"';
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t code_point;
    size_t length = DecodeUtf8(text, pos, code_point);
    if (length == 0) {  // invalid byte: Python strings cannot hold it; use U+FFFD
      code_point = 0xFFFD;
      length = 1;
    }
    switch (code_point) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (code_point < 0x20) {
          AppendEscapedUnit(code_point, out);
        } else if (code_point < 0x80 || !ensure_ascii) {
          AppendUtf8(code_point, out);
        } else if (code_point < 0x10000) {
          AppendEscapedUnit(code_point, out);
        } else {
          uint32_t v = code_point - 0x10000;
          AppendEscapedUnit(0xD800 + (v >> 10), out);
          AppendEscapedUnit(0xDC00 + (v & 0x3FF), out);
        }
    }
    pos += length;
  }
  out += '"';
}

void AppendPythonJson(const OrderedJson& value, bool ensure_ascii, std::string& out) {
  switch (value.type()) {
    case OrderedJson::value_t::null:
      out += "null";
      break;
    case OrderedJson::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      break;
    case OrderedJson::value_t::number_integer:
      out += std::to_string(value.get<int64_t>());
      break;
    case OrderedJson::value_t::number_unsigned:
      out += std::to_string(value.get<uint64_t>());
      break;
    case OrderedJson::value_t::number_float:
      AppendPythonFloat(value.get<double>(), out);
      break;
    case OrderedJson::value_t::string:
      AppendPythonString(value.get_ref<const std::string&>(), ensure_ascii, out);
      break;
    case OrderedJson::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : value) {
        if (!first) out += ", ";
        first = false;
        AppendPythonJson(item, ensure_ascii, out);
      }
      out += ']';
      break;
    }
    case OrderedJson::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ", ";
        first = false;
        AppendPythonString(key, ensure_ascii, out);
        out += ": ";
        AppendPythonJson(item, ensure_ascii, out);
      }
      out += '}';
      break;
    }
    default:
      out += "null";
      break;  // binary / discarded never come out of parsing
  }
}

}  // namespace

std::string PythonJsonDumps(const OrderedJson& value, bool ensure_ascii) {
  std::string out;
  AppendPythonJson(value, ensure_ascii, out);
  return out;
}

std::optional<OrderedJson> PythonJsonLoads(std::string_view text) {
  OrderedJson parsed = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

}  // namespace bora::tokenizer
