// JSON mode and JSON Schema compilation into grammars (the subset API clients use); anything
// outside it is an InvalidArgument naming the keyword and where it is.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "runtime/constraint/grammar.h"
#include "runtime/constraint/json_grammar.h"

namespace bora::runtime::constraint {

// Schemas keep their key order: properties are generated in schema order.
using SchemaJson = nlohmann::ordered_json;

// OpenAI `response_format: {"type": "json_object"}`: any single JSON object.
std::shared_ptr<const Grammar> JsonObjectGrammar(const JsonOptions& options = {});

// A JSON Schema (draft 7 / 2020-12 subset): type (or a list), enum, const, properties in
// schema order (optional ones may be skipped), required, additionalProperties false/true/
// schema (absent: no extra properties unless the object lists none), items, prefixItems,
// minItems/maxItems, minLength/maxLength, minimum/maximum/exclusive* (rounded inwards to
// integers), anyOf, oneOf (generated as anyOf), allOf (merged), local $ref ('#', '#/...',
// recursion included), $defs/definitions, nullable; format and annotations are ignored.
// Unsupported: pattern, patternProperties, propertyNames, not, if/then/else, multipleOf,
// uniqueItems, contains, min/maxProperties, dependent*, remote $ref.
std::shared_ptr<const Grammar> CompileJsonSchema(const SchemaJson& schema,
                                                 const JsonOptions& options = {});
// The same for unordered JSON (properties then come in key order).
std::shared_ptr<const Grammar> CompileJsonSchema(const nlohmann::json& schema,
                                                 const JsonOptions& options = {});
// Parses `text` (InvalidArgument when it is not JSON) and compiles it.
std::shared_ptr<const Grammar> CompileJsonSchemaText(std::string_view text,
                                                     const JsonOptions& options = {});

// Compiles one schema document into rules of an existing builder (tool-call grammars compile
// several). `root` must outlive the compiler; `name` prefixes rule names and messages.
class JsonSchemaCompiler {
 public:
  JsonSchemaCompiler(JsonGrammarWriter& writer, const SchemaJson& root, std::string name);
  // The rule matching the whole document.
  int32_t RootRule() { return RuleFor(root_, "#"); }

 private:
  int32_t RuleFor(const SchemaJson& schema, const std::string& path);
  void Emit(const SchemaJson& schema, int32_t from, int32_t to, const std::string& path);
  void EmitType(const SchemaJson& schema, std::string_view type, int32_t from, int32_t to,
                const std::string& path);
  void EmitObject(const SchemaJson& schema, int32_t from, int32_t to, const std::string& path);
  void EmitArray(const SchemaJson& schema, int32_t from, int32_t to, const std::string& path);
  void EmitItem(const SchemaJson& schema, int32_t from, int32_t to, const std::string& path);
  const SchemaJson& Resolve(const std::string& ref, const std::string& path) const;
  // allOf (and $ref with sibling constraints) folded into one schema, kept in owned_.
  const SchemaJson& Merge(const SchemaJson& schema, const std::string& path, int depth);
  int32_t NewState(int32_t near) { return builder_.NewState(builder_.RuleOf(near)); }

  JsonGrammarWriter& writer_;
  GrammarBuilder& builder_;
  const SchemaJson& root_;
  std::string name_;
  std::map<const SchemaJson*, int32_t> rules_;  // compiled schema nodes (stable addresses)
  std::deque<SchemaJson> owned_;                // merged schemas, stable addresses
};

}  // namespace bora::runtime::constraint
