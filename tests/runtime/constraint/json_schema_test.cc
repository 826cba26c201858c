// Grammar tests: texts each JSON Schema feature (and JSON mode) accepts and rejects.
#include "runtime/constraint/json_schema.h"

#include <gtest/gtest.h>

#include <string>

#include "runtime/constraint/byte_matcher.h"

namespace bora::runtime::constraint {
namespace {

SchemaJson Parse(const char* text) { return SchemaJson::parse(text); }

bool Accepts(const char* schema, const std::string& text, JsonOptions options = {}) {
  return MatchesText(CompileJsonSchema(Parse(schema), options), text);
}

TEST(JsonModeTest, AnyObjectCompact) {
  auto grammar = JsonObjectGrammar();
  EXPECT_TRUE(MatchesText(grammar, "{}"));
  EXPECT_TRUE(MatchesText(grammar, R"({"a":[1,2.5,-3e+2,true,null,{"b":"c"}],"d":"\u00e9\n"})"));
  EXPECT_TRUE(MatchesText(grammar, "{\"h\\u00e9\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}"));
  EXPECT_FALSE(MatchesText(grammar, "[]"));           // an object only
  EXPECT_FALSE(MatchesText(grammar, "{ }"));          // no whitespace
  EXPECT_FALSE(MatchesText(grammar, R"({"a": 1})"));  // compact separators
  EXPECT_FALSE(MatchesText(grammar, R"({"a":1,})"));
  EXPECT_FALSE(MatchesText(grammar, R"({"a":01})"));
  EXPECT_FALSE(MatchesText(grammar, "{\"a\":\"\x01\"}"));              // control character
  EXPECT_FALSE(MatchesText(grammar, "{\"a\":\"\xc0\xaf\"}"));          // overlong
  EXPECT_FALSE(MatchesText(grammar, "{\"a\":\"\xed\xa0\x80\"}"));      // surrogate
  EXPECT_FALSE(MatchesText(grammar, "{\"a\":\"\xf4\x90\x80\x80\"}"));  // > U+10FFFF
  EXPECT_FALSE(MatchesText(grammar, R"({"a":"\ud800"})"));             // escaped surrogate
  EXPECT_FALSE(MatchesText(grammar, R"({"a":"\x"})"));
  EXPECT_FALSE(MatchesText(grammar, "{"));
}

TEST(JsonModeTest, SpacedStyle) {
  JsonOptions options;
  options.spaced = true;
  auto grammar = JsonObjectGrammar(options);
  EXPECT_TRUE(MatchesText(grammar, R"({"a": [1, 2], "b": {}})"));
  EXPECT_FALSE(MatchesText(grammar, R"({"a":[1,2]})"));
}

TEST(JsonSchemaTest, Primitives) {
  EXPECT_TRUE(Accepts(R"({"type":"string"})", R"("hi")"));
  EXPECT_FALSE(Accepts(R"({"type":"string"})", "1"));
  EXPECT_TRUE(Accepts(R"({"type":"boolean"})", "false"));
  EXPECT_TRUE(Accepts(R"({"type":"null"})", "null"));
  EXPECT_TRUE(Accepts(R"({"type":"integer"})", "-120"));
  EXPECT_FALSE(Accepts(R"({"type":"integer"})", "1.5"));
  EXPECT_TRUE(Accepts(R"({"type":"number"})", "1.5e-3"));
  EXPECT_TRUE(Accepts(R"({"type":["string","null"]})", "null"));
  EXPECT_FALSE(Accepts(R"({"type":["string","null"]})", "true"));
  EXPECT_TRUE(Accepts(R"({"type":"string","nullable":true})", "null"));
}

TEST(JsonSchemaTest, NumbersAreBoundedInLength) {
  EXPECT_TRUE(Accepts(R"({"type":"integer"})", "123456789012345"));
  EXPECT_FALSE(Accepts(R"({"type":"integer"})", "1234567890123456"));
  EXPECT_TRUE(Accepts(R"({"type":"number"})", "0.123456789012345"));
  EXPECT_FALSE(Accepts(R"({"type":"number"})", "0.1234567890123456"));
  EXPECT_FALSE(Accepts(R"({"type":"number"})", "1e123"));
}

TEST(JsonSchemaTest, IntegerRanges) {
  const char* schema = R"({"type":"integer","minimum":-15,"maximum":230})";
  for (int v = -40; v <= 300; ++v) {
    EXPECT_EQ(Accepts(schema, std::to_string(v)), v >= -15 && v <= 230) << v;
  }
  EXPECT_FALSE(Accepts(schema, "-0"));
  EXPECT_FALSE(Accepts(schema, "007"));
  const char* exclusive = R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10})";
  EXPECT_FALSE(Accepts(exclusive, "0"));
  EXPECT_TRUE(Accepts(exclusive, "1"));
  EXPECT_TRUE(Accepts(exclusive, "9"));
  EXPECT_FALSE(Accepts(exclusive, "10"));
  EXPECT_TRUE(Accepts(R"({"type":"integer","minimum":1})", "999999999999999"));
  EXPECT_FALSE(Accepts(R"({"type":"integer","minimum":1})", "0"));
}

TEST(JsonSchemaTest, NumberRanges) {
  const char* unit = R"({"type":"number","minimum":0,"maximum":1})";
  EXPECT_TRUE(Accepts(unit, "0"));
  EXPECT_TRUE(Accepts(unit, "0.75"));
  EXPECT_TRUE(Accepts(unit, "1"));
  EXPECT_TRUE(Accepts(unit, "1.000"));
  EXPECT_FALSE(Accepts(unit, "1.01"));
  EXPECT_FALSE(Accepts(unit, "-0.5"));
  const char* latitude = R"({"type":"number","minimum":-90,"maximum":90})";
  EXPECT_TRUE(Accepts(latitude, "-89.99"));
  EXPECT_TRUE(Accepts(latitude, "-90"));
  EXPECT_FALSE(Accepts(latitude, "-90.5"));
  EXPECT_TRUE(Accepts(latitude, "45.5"));
  EXPECT_FALSE(Accepts(latitude, "91"));
  const char* negative = R"({"type":"number","maximum":-2})";
  EXPECT_TRUE(Accepts(negative, "-2"));
  EXPECT_TRUE(Accepts(negative, "-2.5"));
  EXPECT_FALSE(Accepts(negative, "-1.5"));
  EXPECT_FALSE(Accepts(negative, "0"));
}

TEST(JsonSchemaTest, StringLengths) {
  const char* schema = R"({"type":"string","minLength":2,"maxLength":3})";
  EXPECT_FALSE(Accepts(schema, R"("a")"));
  EXPECT_TRUE(Accepts(schema, R"("ab")"));
  EXPECT_TRUE(Accepts(schema, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""));  // 3 characters
  EXPECT_TRUE(Accepts(schema, R"("a\nb")"));                                 // escape = 1
  EXPECT_TRUE(Accepts(schema, R"("\u00e9\u00e9")"));
  EXPECT_FALSE(Accepts(schema, R"("abcd")"));
  EXPECT_TRUE(Accepts(R"({"type":"string","format":"date-time"})", R"("2024-01-01T00:00:00Z")"));
}

TEST(JsonSchemaTest, EnumAndConst) {
  const char* schema = R"({"enum":["red","green",3,null,{"a":[1]}]})";
  EXPECT_TRUE(Accepts(schema, R"("red")"));
  EXPECT_TRUE(Accepts(schema, "3"));
  EXPECT_TRUE(Accepts(schema, "null"));
  EXPECT_TRUE(Accepts(schema, R"({"a":[1]})"));
  EXPECT_FALSE(Accepts(schema, R"("blue")"));
  EXPECT_FALSE(Accepts(schema, R"("re")"));
  EXPECT_TRUE(Accepts(R"({"type":"string","enum":["a",1]})", R"("a")"));
  EXPECT_FALSE(Accepts(R"({"type":"string","enum":["a",1]})", "1"));  // filtered by type
  EXPECT_TRUE(Accepts(R"({"const":"fixed"})", R"("fixed")"));
  EXPECT_FALSE(Accepts(R"({"const":"fixed"})", R"("other")"));
}

TEST(JsonSchemaTest, ObjectsInSchemaOrder) {
  const char* schema = R"({"type":"object","properties":{"name":{"type":"string"},
      "age":{"type":"integer"},"email":{"type":"string"}},"required":["name"],
      "additionalProperties":false})";
  EXPECT_TRUE(Accepts(schema, R"({"name":"x"})"));
  EXPECT_TRUE(Accepts(schema, R"({"name":"x","age":3})"));
  EXPECT_TRUE(Accepts(schema, R"({"name":"x","email":"e"})"));
  EXPECT_TRUE(Accepts(schema, R"({"name":"x","age":3,"email":"e"})"));
  EXPECT_FALSE(Accepts(schema, R"({"age":3,"name":"x"})"));  // schema order
  EXPECT_FALSE(Accepts(schema, R"({"age":3})"));             // required
  EXPECT_FALSE(Accepts(schema, R"({"name":"x","other":1})"));
  EXPECT_FALSE(Accepts(schema, R"({"name":"x",})"));
  EXPECT_FALSE(Accepts(schema, R"({,"name":"x"})"));
  // All optional: the empty object and any subset in order.
  const char* optional = R"({"properties":{"a":{"type":"integer"},"b":{"type":"integer"}}})";
  EXPECT_TRUE(Accepts(optional, "{}"));
  EXPECT_TRUE(Accepts(optional, R"({"b":2})"));
  EXPECT_TRUE(Accepts(optional, R"({"a":1,"b":2})"));
  EXPECT_FALSE(Accepts(optional, R"({"c":2})"));  // no extras unless additionalProperties says so
}

TEST(JsonSchemaTest, AdditionalProperties) {
  const char* open = R"({"type":"object","properties":{"id":{"type":"integer"}},
      "required":["id"],"additionalProperties":{"type":"string"}})";
  EXPECT_TRUE(Accepts(open, R"({"id":1})"));
  EXPECT_TRUE(Accepts(open, R"({"id":1,"x":"y","z":"w"})"));
  EXPECT_FALSE(Accepts(open, R"({"id":1,"x":2})"));
  const char* map = R"({"type":"object","additionalProperties":{"type":"number"}})";
  EXPECT_TRUE(Accepts(map, "{}"));
  EXPECT_TRUE(Accepts(map, R"({"a":1,"b":2.5})"));
  EXPECT_FALSE(Accepts(map, R"({"a":"1"})"));
  EXPECT_TRUE(Accepts(R"({"type":"object"})", R"({"any":[{"thing":null}]})"));
}

TEST(JsonSchemaTest, Arrays) {
  const char* bounded = R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})";
  EXPECT_FALSE(Accepts(bounded, "[]"));
  EXPECT_TRUE(Accepts(bounded, "[1]"));
  EXPECT_TRUE(Accepts(bounded, "[1,2,3]"));
  EXPECT_FALSE(Accepts(bounded, "[1,2,3,4]"));
  EXPECT_FALSE(Accepts(bounded, "[1,]"));
  EXPECT_FALSE(Accepts(bounded, R"(["a"])"));
  const char* unbounded = R"({"type":"array","items":{"type":"string"}})";
  EXPECT_TRUE(Accepts(unbounded, "[]"));
  EXPECT_TRUE(Accepts(unbounded, R"(["a","b","c","d","e"])"));
  const char* tuple = R"({"type":"array","prefixItems":[{"type":"number"},{"type":"string"}],
      "items":false})";
  EXPECT_TRUE(Accepts(tuple, R"([1,"a"])"));
  EXPECT_TRUE(Accepts(tuple, "[1]"));
  EXPECT_FALSE(Accepts(tuple, R"([1,"a",2])"));
  EXPECT_FALSE(Accepts(tuple, R"(["a",1])"));
  EXPECT_TRUE(Accepts(R"({"type":"array","items":true})", R"([1,"x",[null]])"));
}

TEST(JsonSchemaTest, AnyOfAndOneOf) {
  const char* schema = R"({"anyOf":[{"type":"object","properties":{"kind":{"const":"circle"},
      "radius":{"type":"number"}},"required":["kind","radius"],"additionalProperties":false},
      {"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"number"}},
      "required":["kind","side"],"additionalProperties":false}]})";
  EXPECT_TRUE(Accepts(schema, R"({"kind":"circle","radius":1})"));
  EXPECT_TRUE(Accepts(schema, R"({"kind":"square","side":2})"));
  EXPECT_FALSE(Accepts(schema, R"({"kind":"circle","side":2})"));
  EXPECT_TRUE(Accepts(R"({"oneOf":[{"type":"string"},{"type":"integer"}]})", "7"));
  // Keywords beside anyOf apply to each alternative.
  const char* shared = R"({"type":"object","properties":{"a":{"type":"integer"},
      "b":{"type":"integer"}},"additionalProperties":false,
      "anyOf":[{"required":["a"]},{"required":["b"]}]})";
  EXPECT_TRUE(Accepts(shared, R"({"a":1})"));
  EXPECT_TRUE(Accepts(shared, R"({"b":1})"));
  EXPECT_FALSE(Accepts(shared, "{}"));
}

TEST(JsonSchemaTest, AllOfMerges) {
  const char* schema = R"({"$defs":{"base":{"type":"object","properties":{"id":{"type":"integer"}},
      "required":["id"]}},"allOf":[{"$ref":"#/$defs/base"},{"properties":{"name":
      {"type":"string"}},"required":["name"]}],"additionalProperties":false})";
  EXPECT_TRUE(Accepts(schema, R"({"id":1,"name":"n"})"));
  EXPECT_FALSE(Accepts(schema, R"({"id":1})"));
  EXPECT_TRUE(Accepts(R"({"allOf":[{"type":"string","maxLength":2}]})", R"("ab")"));
  EXPECT_FALSE(Accepts(R"({"allOf":[{"type":"string","maxLength":2}]})", R"("abc")"));
}

TEST(JsonSchemaTest, RefsAndRecursion) {
  const char* tree = R"({"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
      "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["value"],
      "additionalProperties":false}},"$ref":"#/$defs/node"})";
  EXPECT_TRUE(Accepts(tree, R"({"value":1})"));
  EXPECT_TRUE(Accepts(tree, R"({"value":1,"children":[{"value":2,"children":[{"value":3}]},)"
                            R"({"value":4}]})"));
  EXPECT_FALSE(Accepts(tree, R"({"value":1,"children":[{"children":[]}]})"));
  const char* root_ref = R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},
      {"type":"null"}]}},"required":["next"],"additionalProperties":false})";
  EXPECT_TRUE(Accepts(root_ref, R"({"next":{"next":{"next":null}}})"));
  const char* definitions = R"({"definitions":{"a":{"type":"string"}},"type":"object",
      "properties":{"x":{"$ref":"#/definitions/a"}},"required":["x"]})";
  EXPECT_TRUE(Accepts(definitions, R"({"x":"s"})"));
}

TEST(JsonSchemaTest, PropertiesWithSpecialNames) {
  const char* schema = R"({"type":"object","properties":{"a\"b":{"type":"integer"},
      "caf\u00e9":{"type":"integer"}},"required":["a\"b","caf\u00e9"]})";
  EXPECT_TRUE(Accepts(schema, "{\"a\\\"b\":1,\"caf\xc3\xa9\":2}"));
}

TEST(JsonSchemaTest, SpacedSeparators) {
  JsonOptions options;
  options.spaced = true;
  const char* schema = R"({"type":"object","properties":{"a":{"type":"array",
      "items":{"type":"integer"}},"b":{"type":"string"}},"required":["a","b"]})";
  EXPECT_TRUE(Accepts(schema, R"({"a": [1, 2], "b": "x"})", options));
  EXPECT_FALSE(Accepts(schema, R"({"a":[1,2],"b":"x"})", options));
}

}  // namespace
}  // namespace bora::runtime::constraint
