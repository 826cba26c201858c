// Coverage of a corpus of real-world-style schemas (tests/runtime/constraint/schemas): the
// share that compiles, the documented expected failures, and random documents drawn from each
// compiled grammar that must validate against their schema.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/constraint/byte_matcher.h"
#include "runtime/constraint/json_schema.h"
#include "schema_validator.h"

namespace bora::runtime::constraint {
namespace {

namespace fs = std::filesystem;

// Schemas that must fail, with the keyword the error names.
const std::map<std::string, std::string> kExpectedFailures = {
    {"phone_pattern", "pattern"},           {"unique_tags", "uniqueItems"},
    {"conditional_shipping", "if"},         {"min_properties_map", "minProperties"},
    {"multiple_of_quantity", "multipleOf"}, {"pattern_properties_env", "patternProperties"},
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A random sentence of `grammar`: bytes drawn from printable ASCII and one 2-byte character; past
// `budget` bytes the closing bytes are preferred, which ends every grammar the compiler emits.
std::string RandomDocument(const std::shared_ptr<const Grammar>& grammar, std::mt19937& random,
                           size_t budget) {
  static const std::string kAlphabet = [] {
    std::string bytes = "\xc3\xa9";  // printable ASCII and the bytes of U+00E9
    for (char c = 0x20; c < 0x7f; ++c) bytes += c;
    return bytes;
  }();
  static const std::string kClosers = "\"}]0";
  ByteMatcher matcher(grammar);
  std::vector<Thread> current, next, scratch;
  matcher.Start(current);
  std::string text;
  std::vector<uint8_t> options;
  while (text.size() < 20000) {
    if (ByteMatcher::IsComplete(current) && (text.size() > budget || random() % 8 == 0)) break;
    options.clear();
    for (char c : kAlphabet) {
      const size_t mark = matcher.Mark();
      if (matcher.Step(current, static_cast<uint8_t>(c), scratch)) options.push_back(c);
      matcher.Rollback(mark);
    }
    if (options.empty()) break;
    uint8_t chosen = options[random() % options.size()];
    if (text.size() > budget) {
      for (char c : kClosers) {
        if (std::find(options.begin(), options.end(), static_cast<uint8_t>(c)) != options.end()) {
          chosen = c;
          break;
        }
      }
    }
    matcher.Step(current, chosen, next);
    current.swap(next);
    matcher.Compact(current);
    text += static_cast<char>(chosen);
  }
  return ByteMatcher::IsComplete(current) ? text : "";
}

TEST(SchemaCorpusTest, CompileShareAndRandomDocumentsValidate) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(BORA_SCHEMA_DIR)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 50u);
  int compiled = 0;
  std::mt19937 random(7);
  for (const fs::path& file : files) {
    const std::string name = file.stem().string();
    const SchemaJson schema = SchemaJson::parse(ReadFile(file));
    std::shared_ptr<const Grammar> grammar;
    try {
      grammar = CompileJsonSchema(schema);
    } catch (const InvalidArgument& error) {
      auto expected = kExpectedFailures.find(name);
      if (expected == kExpectedFailures.end()) {
        ADD_FAILURE() << name << ": " << error.what();
      } else {
        EXPECT_NE(std::string(error.what()).find("'" + expected->second + "'"), std::string::npos)
            << name << ": " << error.what();
      }
      continue;
    }
    EXPECT_EQ(kExpectedFailures.count(name), 0u) << name << " compiled but is listed as failing";
    ++compiled;
    for (int sample = 0; sample < 8; ++sample) {
      const std::string document = RandomDocument(grammar, random, 60 + 40 * sample);
      ASSERT_FALSE(document.empty()) << name << ": the random walk did not finish";
      const auto value = SchemaJson::parse(document, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << name << ": not JSON: " << document;
      EXPECT_EQ(testing::ValidateAgainstSchema(schema, value), "") << name << ": " << document;
    }
  }
  const double share = static_cast<double>(compiled) / static_cast<double>(files.size());
  std::printf("schema corpus: %d of %zu compile (%.1f%%); expected failures: %zu\n", compiled,
              files.size(), 100.0 * share, kExpectedFailures.size());
  EXPECT_EQ(compiled + static_cast<int>(kExpectedFailures.size()), static_cast<int>(files.size()));
  EXPECT_GE(share, 0.85);
}

}  // namespace
}  // namespace bora::runtime::constraint
