// Python json.dumps compatibility of the serialiser used for tools and tool calls, and UTF-8
// repair exactly as Python's errors="replace".
#include "tokenizer/python_json.h"

#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace bora::tokenizer {
namespace {

std::string Dumps(const char* json, bool ensure_ascii = false) {
  return PythonJsonDumps(OrderedJson::parse(json), ensure_ascii);
}

TEST(PythonJsonTest, SeparatorsOrderAndLiterals) {
  EXPECT_EQ(Dumps(R"({"b":1,"a":[true,false,null],"c":{}})"),
            R"({"b": 1, "a": [true, false, null], "c": {}})");
  EXPECT_EQ(Dumps("[]"), "[]");
  EXPECT_EQ(Dumps("-0"), "0");
  EXPECT_EQ(Dumps("18446744073709551615"), "18446744073709551615");
}

TEST(PythonJsonTest, FloatsUsePythonRepr) {
  const std::pair<const char*, const char*> cases[] = {
      {"1.0", "1.0"},
      {"2.50", "2.5"},
      {"1e2", "100.0"},
      {"1e-7", "1e-07"},
      {"0.0001", "0.0001"},
      {"0.00001", "1e-05"},
      {"1e15", "1000000000000000.0"},
      {"1e16", "1e+16"},
      {"123456789012345678.0", "1.2345678901234568e+17"},
      {"-0.0", "-0.0"},
      {"0.1", "0.1"},
      {"3.14159", "3.14159"},
      {"1.5e300", "1.5e+300"},
      {"5e-324", "5e-324"},
  };
  for (const auto& [input, expected] : cases) EXPECT_EQ(Dumps(input), expected) << input;
}

TEST(PythonJsonTest, StringEscapes) {
  EXPECT_EQ(Dumps(R"("a\"b\\c\n\r\t\b\f\u0001\u007f/")"),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\x7f/\"");
  EXPECT_EQ(Dumps(R"("é☺😀")"), "\"é☺😀\"");
  EXPECT_EQ(Dumps(R"("é☺😀")", true), "\"\\u00e9\\u263a\\ud83d\\ude00\"");
}

TEST(PythonJsonTest, LoadsAcceptsOnlyValidJson) {
  EXPECT_TRUE(PythonJsonLoads(" {\"a\": 1} ").has_value());
  EXPECT_FALSE(PythonJsonLoads("blabla").has_value());
  EXPECT_FALSE(PythonJsonLoads("").has_value());
  EXPECT_FALSE(PythonJsonLoads("{\"a\": 1} x").has_value());
  EXPECT_EQ(PythonJsonLoads("22")->get<int>(), 22);
}

TEST(Utf8Test, ReplacementFollowsMaximalSubparts) {
  // Python: b"a\xe2\x82b\xff\xf0\x9f\x98\x80\xed\xa0\x80".decode("utf-8", "replace")
  EXPECT_EQ(ReplaceInvalidUtf8("a\xE2\x82"
                               "b\xFF\xF0\x9F\x98\x80\xED\xA0\x80"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xF0\x9F\x98\x80\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ReplaceInvalidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ReplaceInvalidUtf8("\xF4\x90\x80\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(ReplaceInvalidUtf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");
}

TEST(Utf8Test, CompletePrefixHoldsBackOnlyUnfinishedSequences) {
  EXPECT_EQ(CompleteUtf8Prefix("ab"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xF0\x9F\x98\x80"), 5u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xE2"), 1u);
  EXPECT_EQ(CompleteUtf8Prefix("a\xFF"), 2u);      // can never complete: not held
  EXPECT_EQ(CompleteUtf8Prefix("a\xE2\x28"), 3u);  // broken already: not held
}

}  // namespace
}  // namespace bora::tokenizer
