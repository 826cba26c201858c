// Compiler error tests: unsupported or malformed schemas are InvalidArgument with a readable
// message naming the keyword, never a crash.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "runtime/constraint/json_schema.h"

namespace bora::runtime::constraint {
namespace {

std::string CompileError(const std::string& schema) {
  try {
    CompileJsonSchemaText(schema);
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "";
}

TEST(SchemaErrorTest, UnsupportedKeywordsAreNamed) {
  EXPECT_NE(CompileError(R"({"type":"string","pattern":"^a+$"})").find("'pattern'"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"properties":{"x":{"not":{"type":"null"}}}})").find("'not'"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"properties":{"x":{"not":{}}}})").find("#/properties/x"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"type":"integer","multipleOf":5})").find("multipleOf"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"type":"array","uniqueItems":true})").find("uniqueItems"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"if":{},"then":{}})").find("not supported"), std::string::npos);
  EXPECT_EQ(CompileError(R"({"type":"array","uniqueItems":false})"), "");
}

TEST(SchemaErrorTest, MalformedSchemas) {
  EXPECT_NE(CompileError("{not json"), "");
  EXPECT_NE(CompileError(R"({"type":"strin"})"), "");
  EXPECT_NE(CompileError(R"({"type":[]})"), "");
  EXPECT_NE(CompileError(R"({"enum":[]})"), "");
  EXPECT_NE(CompileError(R"({"type":"string","minLength":5,"maxLength":2})"), "");
  EXPECT_NE(CompileError(R"({"type":"string","maxLength":-1})"), "");
  EXPECT_NE(CompileError(R"({"type":"array","minItems":3,"maxItems":1})"), "");
  EXPECT_NE(CompileError(R"({"$ref":"#/$defs/missing"})"), "");
  EXPECT_NE(CompileError(R"({"$ref":"https://example.com/schema.json"})").find("local"),
            std::string::npos);
  EXPECT_NE(CompileError("false"), "");
  EXPECT_NE(CompileError("3"), "");
  EXPECT_NE(CompileError(R"({"type":"number","minimum":0.2,"maximum":0.8})"), "");
  EXPECT_NE(CompileError(R"({"type":"object","required":["a"],"additionalProperties":false})"), "");
  EXPECT_NE(CompileError(R"({"allOf":[{"type":"string"},{"type":"integer"}]})"), "");
  EXPECT_NE(CompileError(R"({"type":"array","maxItems":1000000000})"), "");
  // Found by fuzz_json_schema: a non-boolean 'nullable' aborted the process.
  EXPECT_NE(CompileError(R"({"type":"string","nullable":-16})").find("'nullable'"),
            std::string::npos);
  EXPECT_NE(CompileError(R"({"nullable":"yes","maximum":2})"), "");
}

TEST(SchemaErrorTest, LeftRecursionIsRejected) {
  const std::string error = CompileError(R"({"anyOf":[{"$ref":"#"},{"type":"null"}]})");
  EXPECT_NE(error.find("recurse"), std::string::npos) << error;
  EXPECT_NE(CompileError(R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},
      "$ref":"#/$defs/a"})"),
            "");
}

}  // namespace
}  // namespace bora::runtime::constraint
