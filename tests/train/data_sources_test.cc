// Source lists, folder listing, whole-file validation reports (skip_invalid, first errors,
// BOM/CRLF/blank lines), loading sources with the v3 tokenizer, and LoadTrainingData.
#include "train/data/data_sources.h"

#include <gtest/gtest.h>

#include "testdata.h"
#include "tokenizer/tokenizer_test_util.h"
#include "train/data/training_data.h"

namespace bora::train {
namespace {

using testing::TempDir;
using testing::WriteFile;

constexpr char kSpmV3[] = "mistral_instruct_tokenizer_240323.model.v3";
constexpr char kGood[] =
    R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";
constexpr char kGoodTools[] =
    R"({"tools": [{"type": "function", "function": {"name": "f", "description": "", "parameters": {}}}], "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "abcDEF123", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]})";

TEST(DataSourceListTest, PathsAndWeights) {
  auto specs = ParseDataSourceList("data/a.jsonl:0.7, data/dir:3,plain.jsonl,/x:y/z.jsonl:1e-1");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].path, "data/a.jsonl");
  EXPECT_DOUBLE_EQ(specs[0].weight, 0.7);
  EXPECT_EQ(specs[1].path, "data/dir");
  EXPECT_DOUBLE_EQ(specs[1].weight, 3);
  EXPECT_EQ(specs[2].path, "plain.jsonl");
  EXPECT_DOUBLE_EQ(specs[2].weight, 1);
  EXPECT_EQ(specs[3].path, "/x:y/z.jsonl");  // a ':' that is not followed by a number stays
  EXPECT_DOUBLE_EQ(specs[3].weight, 0.1);
  auto colon_path = ParseDataSourceList("a:b");
  ASSERT_EQ(colon_path.size(), 1u);
  EXPECT_EQ(colon_path[0].path, "a:b");
}

TEST(DataSourceListTest, BadListsAreTypedErrors) {
  for (const char* bad : {"", "a.jsonl,", ",a.jsonl", "a.jsonl:0", "a.jsonl:-1", "a.jsonl:nan",
                          "a.jsonl:inf", ":2"}) {
    EXPECT_THROW(ParseDataSourceList(bad), InvalidArgument) << bad;
  }
}

TEST(DataSourceListTest, FolderListsItsJsonlFilesSortedByName) {
  TempDir dir;
  WriteFile(dir.File("b.jsonl"), "");
  WriteFile(dir.File("a.jsonl"), "");
  WriteFile(dir.File("notes.txt"), "");
  auto files = ListSourceFiles(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], dir.File("a.jsonl"));
  EXPECT_EQ(files[1], dir.File("b.jsonl"));
  EXPECT_EQ(ListSourceFiles(dir.File("notes.txt")),
            std::vector<std::string>{dir.File("notes.txt")});
  EXPECT_THROW(ListSourceFiles(dir.File("missing")), IoError);
  TempDir empty;
  EXPECT_THROW(ListSourceFiles(empty.path()), InvalidArgument);
}

TEST(ValidationReportTest, CountsKindsAndKeepsTheFirstErrors) {
  const std::string file = std::string("\xEF\xBB\xBF") + kGood + "\r\n" +  // line 1 (BOM, CRLF)
                           "\n" +                                          // line 2 blank
                           R"({"text": "doc"})" + "\n" +                   // line 3
                           "not json\n" +                                  // line 4
                           kGoodTools + "\n" +                             // line 5
                           R"({"messages": []})" + "\n" +                  // line 6
                           "   \n" +                                       // line 7 blank
                           R"({"text": 1})";                               // line 8, no newline
  ValidationReport report = ValidateTrainingFile(file, "up.jsonl", nullptr, 2);
  EXPECT_EQ(report.lines, 6);
  EXPECT_EQ(report.valid, 3);
  EXPECT_EQ(report.invalid, 3);
  EXPECT_EQ(report.pretrain, 1);
  EXPECT_EQ(report.instruct, 1);
  EXPECT_EQ(report.function_calling, 1);
  ASSERT_EQ(report.errors.size(), 2u);  // max_errors
  EXPECT_EQ(report.errors[0].rfind("up.jsonl:4: invalid JSON", 0), 0u) << report.errors[0];
  EXPECT_EQ(report.errors[1], "up.jsonl:6: messages: expected at least one message");
  auto json = report.ToJson();
  EXPECT_EQ(json["invalid"], 3);
  EXPECT_EQ(json["errors"].size(), 2u);
  EXPECT_NE(report.Summary().find("3 valid, 3 invalid"), std::string::npos);

  // Without skip_invalid the first bad line is thrown.
  ValidationReport partial;
  try {
    ReadTrainingJsonl(file, "up.jsonl", nullptr, ValidationOptions{}, partial, nullptr);
    FAIL() << "no error";
  } catch (const RecordError& error) {
    EXPECT_EQ(error.line(), 4);
  }
}

TEST(ValidationReportTest, ArbitraryBytesGiveAReportNotACrash) {
  std::string bytes;
  for (int i = 0; i < 512; ++i) bytes += static_cast<char>((i * 37) % 256);
  ValidationReport report = ValidateTrainingFile(bytes, "noise\xff.jsonl");
  EXPECT_EQ(report.valid, 0);
  EXPECT_EQ(report.invalid, report.lines);
  EXPECT_NO_THROW((void)report.ToJson().dump());  // messages stay valid UTF-8
}

class LoadSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BORA_REQUIRE_SHARED(shared);
    tokenizer_ = testing::SharedTokenizer(shared, kSpmV3).tokenizer.get();
  }
  const tokenizer::Tokenizer* tokenizer_ = nullptr;
};

TEST_F(LoadSourcesTest, WeightsNormaliseAndSamplesKeepFileOrder) {
  TempDir dir;
  std::filesystem::create_directory(dir.File("folder"));
  WriteFile(dir.File("folder/1.jsonl"), std::string(kGood) + "\n" + R"({"text": "x"})" + "\n");
  WriteFile(dir.File("folder/2.jsonl"), std::string(kGoodTools) + "\n");
  WriteFile(dir.File("single.jsonl"), std::string(kGood) + "\n");
  const SampleTokenizer sample_tokenizer(*tokenizer_);
  auto sources = LoadDataSources(dir.File("folder") + ":3," + dir.File("single.jsonl"),
                                 sample_tokenizer, ValidationOptions{});
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_DOUBLE_EQ(sources[0].weight, 0.75);
  EXPECT_DOUBLE_EQ(sources[1].weight, 0.25);
  ASSERT_EQ(sources[0].samples.size(), 3u);
  EXPECT_EQ(sources[0].report.valid, 3);
  EXPECT_GT(sources[0].report.tokens, 0);
  // Second sample is the pretraining one: BOS + "▁x" + EOS.
  EXPECT_EQ(sources[0].samples[1].tokens.front(), 1);
  EXPECT_EQ(sources[0].samples[1].tokens.back(), 2);
  EXPECT_EQ(sources[0].samples[2].tokens[1], 6);  // [AVAILABLE_TOOLS]
}

TEST_F(LoadSourcesTest, InvalidLinesFailOrAreSkippedWithCounts) {
  TempDir dir;
  WriteFile(dir.File("d.jsonl"), std::string(kGood) + "\n" + R"({"messages": 1})" + "\n" + kGood);
  const SampleTokenizer sample_tokenizer(*tokenizer_);
  try {
    LoadDataSources(dir.File("d.jsonl"), sample_tokenizer, ValidationOptions{});
    FAIL() << "no error";
  } catch (const RecordError& error) {
    EXPECT_EQ(std::string(error.what()),
              dir.File("d.jsonl") + ":2: messages: expected a list of messages, got a number");
  }
  ValidationOptions skip;
  skip.skip_invalid = true;
  auto sources = LoadDataSources(dir.File("d.jsonl"), sample_tokenizer, skip);
  EXPECT_EQ(sources[0].samples.size(), 2u);
  EXPECT_EQ(sources[0].report.invalid, 1);
  ASSERT_EQ(sources[0].report.errors.size(), 1u);

  WriteFile(dir.File("bad.jsonl"), "{}\n");
  EXPECT_THROW(LoadDataSources(dir.File("bad.jsonl"), sample_tokenizer, skip), InvalidArgument);
}

TEST_F(LoadSourcesTest, LoadTrainingDataWithSplitOrEvalSource) {
  TempDir dir;
  std::string lines;
  for (int i = 0; i < 40; ++i) {
    lines += R"({"messages": [{"role": "user", "content": "question )" + std::to_string(i) +
             R"("}, {"role": "assistant", "content": "answer"}]})" + "\n";
  }
  WriteFile(dir.File("train.jsonl"), lines);
  WriteFile(dir.File("eval.jsonl"), std::string(kGood) + "\n" + kGood + "\n");
  TrainingDataOptions options;
  options.data = dir.File("train.jsonl");
  options.eval_split = 0.1;
  options.seq_len = 32;
  options.seed = 3;
  TrainingData split = LoadTrainingData(options, *tokenizer_);
  EXPECT_EQ(split.eval_samples, 4);
  EXPECT_EQ(split.train.sources()[0].samples.size(), 36u);
  EXPECT_EQ(split.train_report.valid, 40);
  ASSERT_FALSE(split.eval.empty());
  for (const auto& sequence : split.eval) EXPECT_EQ(sequence.size(), 32);
  EXPECT_EQ(split.train.Next().size(), 32);

  options.eval_split = 0;
  options.eval = dir.File("eval.jsonl");
  TrainingData separate = LoadTrainingData(options, *tokenizer_);
  EXPECT_EQ(separate.eval_samples, 2);
  EXPECT_EQ(separate.eval_report.valid, 2);
  ASSERT_EQ(separate.eval.size(), 1u);  // two 6-token samples fit in one padded sequence
  EXPECT_EQ(separate.eval[0].block_starts, std::vector<int32_t>({0, 5, 10}));
  EXPECT_EQ(separate.train.sources()[0].samples.size(), 40u);

  options.eval_split = 0.1;
  EXPECT_THROW(LoadTrainingData(options, *tokenizer_), InvalidArgument);
  options.eval_split = 0;
  options.data = "";
  EXPECT_THROW(LoadTrainingData(options, *tokenizer_), InvalidArgument);
}

}  // namespace
}  // namespace bora::train
