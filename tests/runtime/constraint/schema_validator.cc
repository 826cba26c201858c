// JSON Schema validation for tests: types, enum/const, strings, numbers, objects, arrays,
// combinators and local $ref.
#include "schema_validator.h"

#include <cmath>
#include <cstdint>
#include <string_view>

namespace bora::testing {
namespace {

using Json = nlohmann::ordered_json;

size_t CodePoints(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

bool HasType(const Json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    return value.is_number_integer() ||
           (value.is_number_float() && std::floor(value.get<double>()) == value.get<double>());
  }
  return false;
}

bool Equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!Equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !Equal(it.value(), b.at(it.key()))) return false;
    }
    return true;
  }
  return a == b;
}

class Validator {
 public:
  explicit Validator(const Json& root) : root_(root) {}

  std::string Check(const Json& schema, const Json& value, const std::string& path, int depth) {
    if (depth > 200) return path + ": schema recursion too deep";
    if (schema.is_boolean()) return schema.get<bool>() ? "" : path + ": schema false";
    if (!schema.is_object()) return path + ": bad schema";
    std::string error;
    auto fail = [&](const std::string& what) { return path + ": " + what; };
    if (auto ref = schema.find("$ref"); ref != schema.end()) {
      const std::string target = ref->get<std::string>();
      const Json& resolved = target == "#" ? root_ : root_.at(Json::json_pointer(target.substr(1)));
      if (!(error = Check(resolved, value, path, depth + 1)).empty()) return error;
    }
    if (auto all = schema.find("allOf"); all != schema.end()) {
      for (const Json& part : *all) {
        if (!(error = Check(part, value, path, depth + 1)).empty()) return error;
      }
    }
    if (auto any = schema.find("anyOf"); any != schema.end()) {
      bool ok = false;
      for (const Json& part : *any) ok = ok || Check(part, value, path, depth + 1).empty();
      if (!ok) return fail("matches no anyOf alternative");
    }
    if (auto one = schema.find("oneOf"); one != schema.end()) {
      int matches = 0;
      for (const Json& part : *one) matches += Check(part, value, path, depth + 1).empty();
      if (matches != 1) return fail("matches " + std::to_string(matches) + " oneOf alternatives");
    }
    if (auto c = schema.find("const"); c != schema.end() && !Equal(*c, value)) {
      return fail("is not the const value");
    }
    if (auto e = schema.find("enum"); e != schema.end()) {
      bool ok = false;
      for (const Json& option : *e) ok = ok || Equal(option, value);
      if (!ok) return fail("is not an enum value");
    }
    if (auto type = schema.find("type"); type != schema.end()) {
      bool ok = false;
      if (type->is_array()) {
        for (const Json& t : *type) ok = ok || HasType(value, t.get<std::string>());
      } else {
        ok = HasType(value, type->get<std::string>());
      }
      if (schema.value("nullable", false) && value.is_null()) ok = true;
      if (!ok) return fail("has the wrong type: " + value.dump());
    }
    if (value.is_string()) {
      const size_t length = CodePoints(value.get<std::string>());
      if (schema.contains("minLength") && length < schema["minLength"].get<size_t>()) {
        return fail("is shorter than minLength");
      }
      if (schema.contains("maxLength") && length > schema["maxLength"].get<size_t>()) {
        return fail("is longer than maxLength");
      }
    }
    if (value.is_number()) {
      const double v = value.get<double>();
      if (schema.contains("minimum") && v < schema["minimum"].get<double>())
        return fail("< minimum");
      if (schema.contains("maximum") && v > schema["maximum"].get<double>())
        return fail("> maximum");
      if (schema.contains("exclusiveMinimum") && schema["exclusiveMinimum"].is_number() &&
          v <= schema["exclusiveMinimum"].get<double>()) {
        return fail("<= exclusiveMinimum");
      }
      if (schema.contains("exclusiveMaximum") && schema["exclusiveMaximum"].is_number() &&
          v >= schema["exclusiveMaximum"].get<double>()) {
        return fail(">= exclusiveMaximum");
      }
    }
    if (value.is_object()) {
      if (auto required = schema.find("required"); required != schema.end()) {
        for (const Json& name : *required) {
          if (!value.contains(name.get<std::string>())) {
            return fail("lacks required '" + name.get<std::string>() + "'");
          }
        }
      }
      const Json* properties = schema.contains("properties") ? &schema["properties"] : nullptr;
      const Json* additional =
          schema.contains("additionalProperties")
              ? &schema["additionalProperties"]
              : (schema.contains("unevaluatedProperties") ? &schema["unevaluatedProperties"]
                                                          : nullptr);
      for (auto it = value.begin(); it != value.end(); ++it) {
        const std::string child = path + "/" + it.key();
        if (properties != nullptr && properties->contains(it.key())) {
          if (!(error = Check((*properties)[it.key()], it.value(), child, depth + 1)).empty()) {
            return error;
          }
        } else if (additional != nullptr) {
          if (!(error = Check(*additional, it.value(), child, depth + 1)).empty()) return error;
        }
      }
    }
    if (value.is_array()) {
      if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) {
        return fail("has fewer than minItems");
      }
      if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<size_t>()) {
        return fail("has more than maxItems");
      }
      size_t prefix = 0;
      if (auto p = schema.find("prefixItems"); p != schema.end()) {
        prefix = p->size();
        for (size_t i = 0; i < std::min(prefix, value.size()); ++i) {
          if (!(error = Check((*p)[i], value[i], path + "/" + std::to_string(i), depth + 1))
                   .empty()) {
            return error;
          }
        }
      }
      if (auto items = schema.find("items"); items != schema.end()) {
        for (size_t i = prefix; i < value.size(); ++i) {
          if (!(error = Check(*items, value[i], path + "/" + std::to_string(i), depth + 1))
                   .empty()) {
            return error;
          }
        }
      }
    }
    return "";
  }

 private:
  const Json& root_;
};

}  // namespace

std::string ValidateAgainstSchema(const nlohmann::ordered_json& schema,
                                  const nlohmann::ordered_json& value) {
  return Validator(schema).Check(schema, value, "#", 0);
}

}  // namespace bora::testing
