// `bora serve --lora`: adapters listed in /v1/models as fine-tuned cards (id and ft: alias),
// served on the base model's engine with their own instruct version, their output equal to
// `bora generate --lora`, unknown adapters a 404, and bad adapters (unknown instruct version,
// missing folder, unknown base, taken name) refused at start.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "formats/model_folder.h"
#include "model/lora_adapter.h"
#include "model/lora_test_util.h"
#include "server/server_process.h"
#include "testdata.h"

namespace bora::testing {
namespace {

using Json = nlohmann::json;

std::string Tokenizer() {
  return SharedDir() + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ServerLoraTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SharedDir().empty()) return;
    dir_ = new TempDir();
    const std::string command = std::string(BORA_BINARY) +
                                " make-model --preset tiny --seed 3 --tokenizer " + Tokenizer() +
                                " --out " + dir_->path() + "/tiny > /dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
    const formats::ModelParams params = formats::InspectModelFolder(dir_->path() + "/tiny").params;
    model::LoraAdapter tuned = RandomAdapter(params, 4, 2.0f, 7, 0.3f);
    tuned.instruct_version = "v3";
    model::SaveLoraAdapter(tuned, params, dir_->path() + "/tuned", Tokenizer());
    model::LoraAdapter old_format = RandomAdapter(params, 2, 2.0f, 8, 0.3f);
    old_format.instruct_version = "v1";  // prompts rendered with [INST] as plain text
    model::SaveLoraAdapter(old_format, params, dir_->path() + "/v1", "");
    WritePeftAdapter(RandomAdapter(params, 2, 2.0f, 9, 0.3f), params, dir_->path() + "/peft");
    server_ = new ServerProcess(
        {"--model", "tiny=" + dir_->path() + "/tiny", "--lora", "tuned=" + dir_->path() + "/tuned",
         "--lora", "v1=" + dir_->path() + "/v1", "--lora", "tiny:peft=" + dir_->path() + "/peft/",
         "--ctx", "256", "--parallel", "4"},
        dir_->path() + "/serve.log");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    BORA_REQUIRE_SHARED(shared);
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(server_->port(), 0) << "the server did not start: "
                                  << ReadText(dir_->path() + "/serve.log");
  }

  static httplib::Client Client() {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(60, 0);
    return client;
  }
  static Json PostJson(const std::string& path, const Json& body, int expected_status = 200) {
    auto result = Client().Post(path, body.dump(), "application/json");
    if (!result) {
      ADD_FAILURE() << "no response";
      return Json();
    }
    EXPECT_EQ(result->status, expected_status) << result->body;
    return Json::parse(result->body);
  }
  static Json Chat(const std::string& model) {
    return PostJson("/v1/chat/completions",
                    {{"model", model},
                     {"messages", {{{"role", "user"}, {"content", "Hello there"}}}},
                     {"max_tokens", 8},
                     {"temperature", 0}});
  }

  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* ServerLoraTest::dir_ = nullptr;
ServerProcess* ServerLoraTest::server_ = nullptr;

TEST_F(ServerLoraTest, AdaptersAreListedAsFineTunedModels) {
  auto result = Client().Get("/v1/models");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  const Json data = Json::parse(result->body)["data"];
  ASSERT_EQ(data.size(), 4u);
  EXPECT_EQ(data[0]["id"], "tiny");
  EXPECT_EQ(data[0]["type"], "base");
  const Json& card = data[1];
  EXPECT_EQ(card["id"], "tuned");
  EXPECT_EQ(card["object"], "model");
  EXPECT_EQ(card["type"], "fine-tuned");
  EXPECT_EQ(card["root"], "tiny");
  EXPECT_EQ(card["parent"], "tiny");
  EXPECT_EQ(card["aliases"], Json::array({"ft:tiny:tuned"}));
  EXPECT_TRUE(card["job"].is_string());
  EXPECT_EQ(card["archived"], false);
  EXPECT_TRUE(card["capabilities"]["completion_chat"].get<bool>());
  EXPECT_EQ(card["max_context_length"], 256);
  EXPECT_EQ(data[3]["id"], "peft");
  EXPECT_EQ(data[3]["root"], "tiny");
  for (const std::string id : {"tuned", "ft:tiny:tuned", "ft:tiny:peft"}) {
    auto one = Client().Get("/v1/models/" + id);
    ASSERT_TRUE(one);
    EXPECT_EQ(one->status, 200) << id;
    EXPECT_EQ(Json::parse(one->body)["root"], "tiny");
  }
  // Adapters run on the base model's engine: /health lists the engines.
  auto health = Client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(Json::parse(health->body)["models"].size(), 1u);
}

TEST_F(ServerLoraTest, RequestsRunWithTheirAdapter) {
  const Json base = Chat("tiny");
  const Json tuned = Chat("tuned");
  const Json alias = Chat("ft:tiny:tuned");
  const Json peft = Chat("peft");
  EXPECT_EQ(tuned["model"], "tuned");
  EXPECT_EQ(alias["model"], "tuned");
  const auto content = [](const Json& body) {
    return body["choices"][0]["message"]["content"].get<std::string>();
  };
  EXPECT_EQ(content(tuned), content(alias));
  EXPECT_NE(content(tuned), content(base));
  EXPECT_NE(content(peft), content(base));
  EXPECT_NE(content(peft), content(tuned));
  // Interleaved requests for the base and the adapter (batched together) keep their outputs.
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(content(Chat("tiny")), content(base));
    EXPECT_EQ(content(Chat("tuned")), content(tuned));
  }
}

TEST_F(ServerLoraTest, OutputEqualsGenerateWithTheSameAdapter) {
  const Json served = PostJson(
      "/v1/completions",
      {{"model", "tuned"}, {"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}});
  const std::string out = dir_->path() + "/generate.json";
  const std::string command = std::string(BORA_BINARY) + " generate --model " + dir_->path() +
                              "/tiny --lora " + dir_->path() +
                              "/tuned --prompt 'Once upon a time' --temperature 0 --max-tokens 8 "
                              "--ctx 256 --json > " +
                              out + " 2> /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const Json generated = Json::parse(ReadText(out));
  EXPECT_EQ(served["choices"][0]["text"], generated["text"]);
  const std::string plain =
      std::string(BORA_BINARY) + " generate --model " + dir_->path() +
      "/tiny --prompt 'Once upon a time' --temperature 0 --max-tokens 8 --ctx 256 --json > " + out +
      " 2> /dev/null";
  ASSERT_EQ(std::system(plain.c_str()), 0);
  EXPECT_NE(served["choices"][0]["text"], Json::parse(ReadText(out))["text"]);
}

TEST_F(ServerLoraTest, AdapterInstructVersionBuildsItsPrompts) {
  // v3 renders [INST] as a control token (5 prompt tokens), v1 as text (10).
  EXPECT_EQ(Chat("tiny")["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(Chat("tuned")["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(Chat("v1")["usage"]["prompt_tokens"], 10);
}

TEST_F(ServerLoraTest, UnknownAdapterIsModelNotFound) {
  const Json body = PostJson(
      "/v1/chat/completions",
      {{"model", "ft:tiny:nope"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, 404);
  EXPECT_EQ(body["object"], "error");
  auto card = Client().Get("/v1/models/nope");
  ASSERT_TRUE(card);
  EXPECT_EQ(card->status, 404);
}

TEST_F(ServerLoraTest, BadAdaptersStopTheServerAtStart) {
  const formats::ModelParams params = formats::InspectModelFolder(dir_->path() + "/tiny").params;
  model::LoraAdapter unknown_version = RandomAdapter(params, 2, 2.0f, 10, 0.1f);
  unknown_version.instruct_version = "v99";  // no such instruct format
  model::SaveLoraAdapter(unknown_version, params, dir_->path() + "/v99", "");
  const std::string serve =
      std::string(BORA_BINARY) + " serve --port 0 --model tiny=" + dir_->path() + "/tiny ";
  const std::string log = dir_->path() + "/bad.log";
  const std::vector<std::string> specs = {
      "x=" + dir_->path() + "/v99", "x=" + dir_->path() + "/missing",
      "nope:x=" + dir_->path() + "/tuned", "tiny=" + dir_->path() + "/tuned", "x"};
  for (const std::string& lora : specs) {
    const std::string command = "timeout 60 " + serve + "--lora " + lora + " > " + log + " 2>&1";
    const int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << lora << ": " << ReadText(log);
    EXPECT_NE(ReadText(log).find("bora: error:"), std::string::npos) << ReadText(log);
  }
  EXPECT_NE(ReadText(log).find("--lora"), std::string::npos);
}

}  // namespace
}  // namespace bora::testing
