// JSON Schema to grammar: keyword checks, $ref resolution, allOf merging, and the object,
// array, string, number and literal constructions.
#include "runtime/constraint/json_schema.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "base/error.h"

namespace bora::runtime::constraint {
namespace {

// Keywords that constrain values and that this compiler does not implement.
constexpr std::string_view kUnsupported[] = {
    "pattern",
    "patternProperties",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "multipleOf",
    "contains",
    "minContains",
    "maxContains",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedItems",
    "$dynamicRef",
    "$recursiveRef",
};

// Keywords that constrain values and are implemented (the rest are annotations: ignored).
constexpr std::string_view kConstraints[] = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "nullable",
    "uniqueItems",
};

constexpr int kMaxMergeDepth = 32;
constexpr int64_t kMaxUnrolledItems = 100000;

bool IsConstraint(std::string_view key) {
  return std::find(std::begin(kConstraints), std::end(kConstraints), key) != std::end(kConstraints);
}

std::string Where(const std::string& path) { return "JSON schema at " + path + ": "; }

void CheckKeywords(const SchemaJson& schema, const std::string& path) {
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), key) !=
        std::end(kUnsupported)) {
      throw InvalidArgument(Where(path) + "keyword '" + key + "' is not supported");
    }
  }
  if (auto unique = schema.find("uniqueItems"); unique != schema.end() && *unique != false) {
    throw InvalidArgument(Where(path) + "keyword 'uniqueItems' (true) is not supported");
  }
}

// A non-negative integer keyword, or `fallback` when absent.
int64_t Count(const SchemaJson& schema, const char* key, int64_t fallback,
              const std::string& path) {
  auto it = schema.find(key);
  if (it == schema.end()) return fallback;
  if (it->is_number_integer() ||
      (it->is_number_float() && it->get<double>() == std::floor(it->get<double>()))) {
    const double v = it->get<double>();
    if (v >= 0 && v <= 2e9) return static_cast<int64_t>(v);
  }
  throw InvalidArgument(Where(path) + "'" + key + "' must be a non-negative integer");
}

std::vector<std::string> Types(const SchemaJson& schema, const std::string& path) {
  static constexpr std::string_view kTypes[] = {"null",   "boolean", "object", "array",
                                                "number", "integer", "string"};
  std::vector<std::string> types;
  auto add = [&](const SchemaJson& value) {
    if (!value.is_string() || std::find(std::begin(kTypes), std::end(kTypes),
                                        value.get<std::string>()) == std::end(kTypes)) {
      throw InvalidArgument(Where(path) + "'type' must name JSON types, got " + value.dump());
    }
    if (std::find(types.begin(), types.end(), value.get<std::string>()) == types.end()) {
      types.push_back(value.get<std::string>());
    }
  };
  const SchemaJson& type = schema.at("type");
  if (type.is_array()) {
    for (const SchemaJson& value : type) add(value);
  } else {
    add(type);
  }
  if (types.empty()) throw InvalidArgument(Where(path) + "'type' is an empty list");
  return types;
}

// Types implied by the keywords of a schema without 'type'; empty when nothing constrains it.
std::vector<std::string> ImpliedTypes(const SchemaJson& schema) {
  std::vector<std::string> types;
  auto has = [&](std::initializer_list<const char*> keys) {
    return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return schema.contains(k); });
  };
  if (has({"properties", "required", "additionalProperties", "unevaluatedProperties"})) {
    types.push_back("object");
  }
  if (has({"items", "prefixItems", "minItems", "maxItems", "additionalItems"})) {
    types.push_back("array");
  }
  if (has({"minLength", "maxLength"})) types.push_back("string");
  if (has({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) {
    types.push_back("number");
  }
  return types;
}

NumberBounds Bounds(const SchemaJson& schema, const std::string& path) {
  NumberBounds bounds;
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = schema.find(key);
    if (it == schema.end() || it->is_boolean()) return std::nullopt;
    if (!it->is_number()) throw InvalidArgument(Where(path) + "'" + key + "' must be a number");
    return it->get<double>();
  };
  bounds.minimum = number("minimum");
  bounds.maximum = number("maximum");
  // Draft 4 booleans modify minimum/maximum; later drafts give the bound itself.
  if (auto e = schema.find("exclusiveMinimum"); e != schema.end()) {
    if (e->is_boolean()) {
      bounds.exclusive_minimum = e->get<bool>();
    } else if (auto v = number("exclusiveMinimum"); !bounds.minimum || *v >= *bounds.minimum) {
      bounds.minimum = v;
      bounds.exclusive_minimum = true;
    }
  }
  if (auto e = schema.find("exclusiveMaximum"); e != schema.end()) {
    if (e->is_boolean()) {
      bounds.exclusive_maximum = e->get<bool>();
    } else if (auto v = number("exclusiveMaximum"); !bounds.maximum || *v <= *bounds.maximum) {
      bounds.maximum = v;
      bounds.exclusive_maximum = true;
    }
  }
  return bounds;
}

bool MatchesType(const SchemaJson& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "integer") {
    return value.is_number_integer() ||
           (value.is_number_float() && value.get<double>() == std::floor(value.get<double>()));
  }
  return value.is_number();
}

}  // namespace

JsonSchemaCompiler::JsonSchemaCompiler(JsonGrammarWriter& writer, const SchemaJson& root,
                                       std::string name)
    : writer_(writer), builder_(writer.builder()), root_(root), name_(std::move(name)) {}

int32_t JsonSchemaCompiler::RuleFor(const SchemaJson& schema, const std::string& path) {
  if (auto it = rules_.find(&schema); it != rules_.end()) return it->second;
  const int32_t rule = builder_.AddRule(name_ + path);
  rules_[&schema] = rule;
  Emit(schema, builder_.Start(rule), builder_.Final(rule), path);
  return rule;
}

const SchemaJson& JsonSchemaCompiler::Resolve(const std::string& ref,
                                              const std::string& path) const {
  if (ref == "#") return root_;
  if (ref.size() < 2 || ref[0] != '#' || ref[1] != '/') {
    throw InvalidArgument(Where(path) + "$ref '" + ref +
                          "' is not supported: only local references ('#' or '#/...')");
  }
  try {
    return root_.at(SchemaJson::json_pointer(ref.substr(1)));
  } catch (const nlohmann::json::exception&) {
    throw InvalidArgument(Where(path) + "$ref '" + ref + "' does not resolve in the schema");
  }
}

const SchemaJson& JsonSchemaCompiler::Merge(const SchemaJson& schema, const std::string& path,
                                            int depth) {
  if (depth > kMaxMergeDepth) {
    throw InvalidArgument(Where(path) + "allOf/$ref nesting is too deep or cyclic");
  }
  std::vector<const SchemaJson*> parts;
  SchemaJson base = SchemaJson::object();
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    if (it.key() != "allOf" && it.key() != "$ref") base[it.key()] = it.value();
  }
  parts.push_back(&base);
  if (auto ref = schema.find("$ref"); ref != schema.end()) {
    if (!ref->is_string()) throw InvalidArgument(Where(path) + "$ref must be a string");
    parts.push_back(&Resolve(ref->get<std::string>(), path));
  }
  if (auto all = schema.find("allOf"); all != schema.end()) {
    if (!all->is_array() || all->empty()) {
      throw InvalidArgument(Where(path) + "allOf must be a non-empty array");
    }
    for (const SchemaJson& part : *all) parts.push_back(&part);
  }
  SchemaJson result = SchemaJson::object();
  for (const SchemaJson* raw : parts) {
    const SchemaJson* part = raw;
    if (part->is_boolean()) {
      if (!part->get<bool>()) throw InvalidArgument(Where(path) + "allOf contains false");
      continue;
    }
    if (!part->is_object()) throw InvalidArgument(Where(path) + "allOf items must be schemas");
    if (part != &base && (part->contains("allOf") || part->contains("$ref"))) {
      part = &Merge(*part, path + "/allOf", depth + 1);
    }
    CheckKeywords(*part, path);
    for (auto it = part->begin(); it != part->end(); ++it) {
      const std::string& key = it.key();
      const SchemaJson& value = it.value();
      if (!IsConstraint(key) || key == "allOf" || key == "$ref") continue;
      if (!result.contains(key)) {
        result[key] = value;
      } else if (result[key] == value) {
        continue;
      } else if (key == "properties") {
        if (!value.is_object()) throw InvalidArgument(Where(path) + "properties must be an object");
        for (auto p = value.begin(); p != value.end(); ++p) {
          SchemaJson& target = result[key];
          if (!target.contains(p.key())) {
            target[p.key()] = p.value();
          } else if (target[p.key()] != p.value()) {
            target[p.key()] =
                SchemaJson{{"allOf", SchemaJson::array({target[p.key()], p.value()})}};
          }
        }
      } else if (key == "required") {
        for (const SchemaJson& name : value) {
          if (std::find(result[key].begin(), result[key].end(), name) == result[key].end()) {
            result[key].push_back(name);
          }
        }
      } else if (key == "type") {
        auto as_list = [](const SchemaJson& t) {
          return t.is_array() ? t : SchemaJson::array({t});
        };
        SchemaJson common = SchemaJson::array();
        for (const SchemaJson& t : as_list(result[key])) {
          for (const SchemaJson& u : as_list(value)) {
            if (t == u || (t == "number" && u == "integer"))
              common.push_back(u);
            else if (t == "integer" && u == "number")
              common.push_back(t);
          }
        }
        if (common.empty()) throw InvalidArgument(Where(path) + "allOf combines disjoint types");
        result[key] = common;
      } else if ((key == "minLength" || key == "minItems" || key == "minimum") &&
                 value.is_number() && result[key].is_number()) {
        result[key] = std::max(result[key].get<double>(), value.get<double>());
      } else if ((key == "maxLength" || key == "maxItems" || key == "maximum") &&
                 value.is_number() && result[key].is_number()) {
        result[key] = std::min(result[key].get<double>(), value.get<double>());
      } else if (key == "additionalProperties" && (value == false || result[key] == false)) {
        result[key] = false;
      } else {
        throw InvalidArgument(Where(path) + "allOf combines different values of '" + key +
                              "', which is not supported");
      }
    }
  }
  owned_.push_back(std::move(result));
  return owned_.back();
}

void JsonSchemaCompiler::Emit(const SchemaJson& schema, int32_t from, int32_t to,
                              const std::string& path) {
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) throw InvalidArgument(Where(path) + "schema false admits no value");
    writer_.AnyValue(from, to);
    return;
  }
  if (!schema.is_object()) {
    throw InvalidArgument(Where(path) + "a schema must be an object or a boolean");
  }
  CheckKeywords(schema, path);
  auto ref = schema.find("$ref");
  bool ref_siblings = false;
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    if (it.key() != "$ref" && IsConstraint(it.key())) ref_siblings = true;
  }
  if (ref != schema.end() && !ref_siblings) {
    if (!ref->is_string()) throw InvalidArgument(Where(path) + "$ref must be a string");
    const std::string target = ref->get<std::string>();
    builder_.CallRule(from, to, RuleFor(Resolve(target, path), target));
    return;
  }
  if (ref != schema.end() || schema.contains("allOf")) {
    Emit(Merge(schema, path, 0), from, to, path);
    return;
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    auto alternatives = schema.find(key);
    if (alternatives == schema.end()) continue;
    if (!alternatives->is_array() || alternatives->empty()) {
      throw InvalidArgument(Where(path) + key + " must be a non-empty array");
    }
    bool base_constraints = false;
    for (auto it = schema.begin(); it != schema.end(); ++it) {
      if (it.key() != key && IsConstraint(it.key())) base_constraints = true;
    }
    for (size_t i = 0; i < alternatives->size(); ++i) {
      const std::string alt_path = path + "/" + key + "/" + std::to_string(i);
      const SchemaJson& alternative = (*alternatives)[i];
      if (!base_constraints) {
        Emit(alternative, from, to, alt_path);
        continue;
      }
      // Keywords beside anyOf apply to every alternative.
      SchemaJson combined = SchemaJson::object();
      for (auto it = schema.begin(); it != schema.end(); ++it) {
        if (it.key() != key) combined[it.key()] = it.value();
      }
      combined["allOf"] = SchemaJson::array({alternative});
      owned_.push_back(std::move(combined));
      Emit(Merge(owned_.back(), alt_path, 0), from, to, alt_path);
    }
    return;
  }
  if (auto value = schema.find("const"); value != schema.end()) {
    writer_.Literal(from, to, writer_.Serialize(*value));
    return;
  }
  std::vector<std::string> types =
      schema.contains("type") ? Types(schema, path) : ImpliedTypes(schema);
  bool nullable = false;
  if (auto it = schema.find("nullable"); it != schema.end()) {
    if (!it->is_boolean()) throw InvalidArgument(Where(path) + "'nullable' must be true or false");
    nullable = it->get<bool>();
  }
  if (nullable && std::find(types.begin(), types.end(), "null") == types.end() && !types.empty()) {
    types.push_back("null");
  }
  if (auto values = schema.find("enum"); values != schema.end()) {
    if (!values->is_array() || values->empty()) {
      throw InvalidArgument(Where(path) + "enum must be a non-empty array");
    }
    bool any = false;
    for (const SchemaJson& value : *values) {
      const bool typed = types.empty() || std::any_of(types.begin(), types.end(), [&](auto& t) {
                           return MatchesType(value, t);
                         });
      if (!typed) continue;
      writer_.Literal(from, to, writer_.Serialize(value));
      any = true;
    }
    if (!any) throw InvalidArgument(Where(path) + "no enum value has the schema's type");
    return;
  }
  if (types.empty()) {
    writer_.AnyValue(from, to);
    return;
  }
  for (const std::string& type : types) EmitType(schema, type, from, to, path);
}

void JsonSchemaCompiler::EmitType(const SchemaJson& schema, std::string_view type, int32_t from,
                                  int32_t to, const std::string& path) {
  if (type == "null") {
    writer_.Literal(from, to, "null");
  } else if (type == "boolean") {
    writer_.Literal(from, to, "true");
    writer_.Literal(from, to, "false");
  } else if (type == "string") {
    const int64_t min = Count(schema, "minLength", 0, path);
    const int64_t max = Count(schema, "maxLength", -1, path);
    if (max >= 0 && min > max) throw InvalidArgument(Where(path) + "minLength > maxLength");
    writer_.String(from, to, static_cast<int32_t>(min), static_cast<int32_t>(max));
  } else if (type == "number" || type == "integer") {
    try {
      writer_.Number(from, to, type == "integer", Bounds(schema, path));
    } catch (const InvalidArgument& error) {
      throw InvalidArgument(Where(path) + error.what());
    }
  } else if (type == "object") {
    EmitObject(schema, from, to, path);
  } else {
    EmitArray(schema, from, to, path);
  }
}

void JsonSchemaCompiler::EmitObject(const SchemaJson& schema, int32_t from, int32_t to,
                                    const std::string& path) {
  static const SchemaJson kEmpty = SchemaJson::object();
  static const SchemaJson kTrue = true;
  const SchemaJson* properties = &kEmpty;
  if (auto it = schema.find("properties"); it != schema.end()) {
    if (!it->is_object()) throw InvalidArgument(Where(path) + "properties must be an object");
    properties = &*it;
  }
  std::set<std::string> required;
  if (auto it = schema.find("required"); it != schema.end()) {
    if (!it->is_array()) throw InvalidArgument(Where(path) + "required must be an array");
    for (const SchemaJson& name : *it) {
      if (!name.is_string()) throw InvalidArgument(Where(path) + "required names must be strings");
      required.insert(name.get<std::string>());
    }
  }
  // Extra properties: additionalProperties (or unevaluatedProperties) when given; when both are
  // absent only an object without listed properties takes any members.
  const SchemaJson* extra = nullptr;
  auto additional = schema.find("additionalProperties");
  if (additional == schema.end()) additional = schema.find("unevaluatedProperties");
  if (additional != schema.end()) {
    if (!additional->is_boolean() && !additional->is_object()) {
      throw InvalidArgument(Where(path) + "additionalProperties must be a boolean or a schema");
    }
    if (*additional != false) extra = &*additional;
  } else if (properties->empty() && required.empty()) {
    extra = &kTrue;
  }
  // Listed properties in order, then required names the list lacks (as extra members).
  struct Member {
    std::string name;
    const SchemaJson* schema;
    bool required;
    std::string path;
  };
  std::vector<Member> members;
  for (auto it = properties->begin(); it != properties->end(); ++it) {
    members.push_back(
        {it.key(), &it.value(), required.count(it.key()) > 0, path + "/properties/" + it.key()});
  }
  for (const std::string& name : required) {
    if (properties->contains(name)) continue;
    if (extra == nullptr) {
      throw InvalidArgument(Where(path) + "required property '" + name +
                            "' is not in properties and additionalProperties is false");
    }
    members.push_back({name, extra, true, path + "/required/" + name});
  }
  // States after member i, with (1) or without (0) a member written so far.
  const size_t n = members.size();
  std::vector<std::array<int32_t, 2>> at(n + 1, {-1, -1});
  auto state = [&](size_t i, int e) {
    if (at[i][e] < 0) at[i][e] = NewState(from);
    return at[i][e];
  };
  builder_.Byte(from, state(0, 0), '{');
  for (size_t i = 0; i < n; ++i) {
    const Member& member = members[i];
    const std::string key = writer_.Serialize(SchemaJson(member.name));
    for (int e = 0; e < 2; ++e) {
      if (at[i][e] < 0) continue;
      if (!member.required) builder_.Epsilon(at[i][e], state(i + 1, e));
      const int32_t value_start = NewState(from);
      std::string prefix = e ? std::string(writer_.item_separator()) : std::string();
      prefix += key;
      prefix += writer_.key_separator();
      writer_.Literal(at[i][e], value_start, prefix);
      Emit(*member.schema, value_start, state(i + 1, 1), member.path);
    }
  }
  // After the listed members: "}" or, when allowed, members of other names (extra values
  // share one rule).
  const int32_t more = extra != nullptr ? NewState(from) : -1;
  auto extra_member = [&](int32_t start, int32_t end, bool separator) {
    const int32_t key = NewState(from), colon = NewState(from), value_start = NewState(from);
    writer_.Literal(start, key, separator ? writer_.item_separator() : "");
    writer_.String(key, colon, 0, -1);
    writer_.Literal(colon, value_start, writer_.key_separator());
    EmitItem(*extra, value_start, end, path + "/additionalProperties");
  };
  for (int e = 0; e < 2; ++e) {
    if (at[n][e] < 0) continue;
    builder_.Byte(at[n][e], to, '}');
    if (more >= 0) extra_member(at[n][e], more, e == 1);
  }
  if (more >= 0) {
    builder_.Byte(more, to, '}');
    extra_member(more, more, true);
  }
}

void JsonSchemaCompiler::EmitItem(const SchemaJson& schema, int32_t from, int32_t to,
                                  const std::string& path) {
  builder_.CallRule(from, to, RuleFor(schema, path));
}

void JsonSchemaCompiler::EmitArray(const SchemaJson& schema, int32_t from, int32_t to,
                                   const std::string& path) {
  static const SchemaJson kTrue = true;
  std::vector<const SchemaJson*> prefix;
  const SchemaJson* items = &kTrue;
  bool closed = false;  // no items beyond the prefix
  auto take_rest = [&](const SchemaJson& rest) {
    if (rest == false) {
      closed = true;
    } else if (rest.is_object() || rest.is_boolean()) {
      items = &rest;
    } else {
      throw InvalidArgument(Where(path) + "items must be a schema");
    }
  };
  if (auto it = schema.find("prefixItems"); it != schema.end()) {
    if (!it->is_array()) throw InvalidArgument(Where(path) + "prefixItems must be an array");
    for (const SchemaJson& item : *it) prefix.push_back(&item);
    if (auto rest = schema.find("items"); rest != schema.end()) take_rest(*rest);
  } else if (auto it = schema.find("items"); it != schema.end() && it->is_array()) {
    for (const SchemaJson& item : *it) prefix.push_back(&item);  // draft 4 tuple
    if (auto rest = schema.find("additionalItems"); rest != schema.end()) take_rest(*rest);
  } else if (it != schema.end()) {
    take_rest(*it);
  }
  const int64_t k = static_cast<int64_t>(prefix.size());
  const int64_t min = Count(schema, "minItems", 0, path);
  int64_t max = Count(schema, "maxItems", -1, path);
  if (closed) max = max < 0 ? k : std::min(max, k);
  if (max >= 0 && min > max) {
    throw InvalidArgument(Where(path) + "minItems exceeds the items the schema allows");
  }
  // Positions 0..unrolled are explicit states; an unbounded array then loops on the last.
  const int64_t unrolled = max >= 0 ? max : std::max<int64_t>({min, k, 1});
  if (unrolled > kMaxUnrolledItems) {
    throw InvalidArgument(Where(path) + "maxItems/minItems above " +
                          std::to_string(kMaxUnrolledItems) + " are not supported");
  }
  auto item_schema = [&](int64_t j) -> const SchemaJson& { return j < k ? *prefix[j] : *items; };
  auto item_path = [&](int64_t j) {
    return j < k ? path + "/prefixItems/" + std::to_string(j) : path + "/items";
  };
  int32_t position = NewState(from);
  builder_.Byte(from, position, '[');
  for (int64_t j = 0; j <= unrolled; ++j) {
    if (j >= min) builder_.Byte(position, to, ']');
    if (j == unrolled) break;
    const int32_t start = j > 0 ? NewState(from) : position;
    if (j > 0) writer_.Literal(position, start, writer_.item_separator());
    const int32_t next = NewState(from);
    EmitItem(item_schema(j), start, next, item_path(j));
    position = next;
  }
  if (max < 0) {
    const int32_t start = NewState(from);
    writer_.Literal(position, start, writer_.item_separator());
    EmitItem(*items, start, position, path + "/items");
  }
}

std::shared_ptr<const Grammar> JsonObjectGrammar(const JsonOptions& options) {
  GrammarBuilder builder;
  JsonGrammarWriter writer(builder, options);
  const int32_t root = builder.AddRule("json_mode");
  writer.AnyObject(builder.Start(root), builder.Final(root));
  return builder.Build(root);
}

std::shared_ptr<const Grammar> CompileJsonSchema(const SchemaJson& schema,
                                                 const JsonOptions& options) {
  GrammarBuilder builder;
  JsonGrammarWriter writer(builder, options);
  JsonSchemaCompiler compiler(writer, schema, "schema");
  try {
    return builder.Build(compiler.RootRule());
  } catch (const nlohmann::json::exception& e) {
    // Every keyword is type-checked before use; this keeps a missed check a 400, not an abort.
    throw InvalidArgument(std::string("JSON schema: ") + e.what());
  }
}

std::shared_ptr<const Grammar> CompileJsonSchema(const nlohmann::json& schema,
                                                 const JsonOptions& options) {
  return CompileJsonSchema(SchemaJson::parse(schema.dump()), options);
}

std::shared_ptr<const Grammar> CompileJsonSchemaText(std::string_view text,
                                                     const JsonOptions& options) {
  SchemaJson schema = SchemaJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) throw InvalidArgument("JSON schema: the text is not valid JSON");
  return CompileJsonSchema(schema, options);
}

}  // namespace bora::runtime::constraint
