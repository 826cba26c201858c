// Raw-HTTP tests of `bora serve` (the real binary on 127.0.0.1 with a tiny random model and the
// real v3 tokenizer): auth, error bodies and statuses, limits, SSE framing, determinism, n,
// embeddings, metrics, 429 under overload, and cancellation when a streaming client goes away.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/server_process.h"
#include "testdata.h"

namespace bora::testing {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SharedDir().empty()) return;
    dir_ = new TempDir();
    const std::string tokenizer = SharedDir() + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
    const std::string command = std::string(BORA_BINARY) + " make-model --preset tiny --seed 3 --tokenizer " +
                                tokenizer + " --out " + dir_->path() + "/tiny > /dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
    server_ = new ServerProcess({"--model", "tiny=" + dir_->path() + "/tiny", "--api-key", "secret", "--ctx", "256",
                                 "--max-body", "64K"},
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
    ASSERT_NE(server_->port(), 0) << "the server did not start";
  }

  static httplib::Client Client(const std::string& key = "secret") {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(60, 0);
    if (!key.empty()) client.set_default_headers({{"Authorization", "Bearer " + key}});
    return client;
  }
  static httplib::Result Post(const std::string& path, const std::string& body, const std::string& key = "secret") {
    return Client(key).Post(path, body, "application/json");
  }
  static Json Chat(Json extra) {
    Json body = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "Hello there"}}}}, {"max_tokens", 6}};
    if (extra.is_object()) body.update(extra);
    return body;
  }
  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* ServerTest::dir_ = nullptr;
ServerProcess* ServerTest::server_ = nullptr;

// Error bodies both SDKs read: Mistral's top-level message/type/code and OpenAI's error object.
void ExpectErrorBody(const httplib::Result& result, int status) {
  ASSERT_TRUE(result) << "no response";
  EXPECT_EQ(result->status, status) << result->body;
  EXPECT_NE(result->get_header_value("Content-Type").find("application/json"), std::string::npos);
  EXPECT_FALSE(result->get_header_value("x-request-id").empty());
  const Json body = Json::parse(result->body);
  EXPECT_EQ(body["object"], "error");
  EXPECT_FALSE(body["message"].get<std::string>().empty());
  EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  EXPECT_TRUE(body["error"].contains("type"));
}

TEST_F(ServerTest, AuthIsRequiredOnApiRoutesOnly) {
  ExpectErrorBody(Client("").Get("/v1/models"), 401);
  ExpectErrorBody(Client("wrong").Get("/v1/models"), 401);
  ExpectErrorBody(Client("secre").Get("/v1/models"), 401);
  auto ok = Client().Get("/v1/models");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  const Json models = Json::parse(ok->body);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["type"], "base");
  EXPECT_TRUE(models["data"][0]["capabilities"]["completion_chat"].get<bool>());
  auto health = Client("").Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(ServerTest, ClientMistakesAre4xxWithReadableBodies) {
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"model", "nope"}}).dump()), 404);
  ExpectErrorBody(Client().Get("/v1/models/nope"), 404);
  ExpectErrorBody(Post("/v1/chat/completions", "{\"model\": \"tiny\", "), 400);
  auto missing = Post("/v1/chat/completions", Json{{"model", "tiny"}}.dump());
  ExpectErrorBody(missing, 422);
  const Json detail = Json::parse(missing->body)["detail"];
  ASSERT_TRUE(detail.is_array());
  EXPECT_EQ(detail[0]["loc"], Json::array({"body", "messages"}));
  EXPECT_EQ(detail[0]["type"], "missing");
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"max_tokens", -1}}).dump()), 400);
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"max_tokens", 100000}}).dump()), 400);  // past --ctx 256
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"temperature", "hot"}}).dump()), 422);
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"temperature", 7}}).dump()), 400);
  ExpectErrorBody(Post("/v1/chat/completions", Chat({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}).dump()),
                  400);
  ExpectErrorBody(Client().Post("/v1/chat/completions", Chat({}).dump(), "text/plain"), 415);
  ExpectErrorBody(Post("/v1/chat/completions", std::string(100000, '[')), 413);  // over --max-body 64K
  ExpectErrorBody(Post("/v1/chat/completions", std::string(200, '[') + std::string(200, ']')), 400);  // nesting
  ExpectErrorBody(Client().Get("/v1/nothing/here"), 404);
  // A prompt longer than the context is refused, never truncated.
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  ExpectErrorBody(Post("/v1/chat/completions",
                       Chat({{"messages", {{{"role", "user"}, {"content", long_text}}}}, {"max_tokens", 1}}).dump()),
                  400);
  // A prompt whose bytes alone need more tokens than the context is refused before tokenizing.
  auto huge = Post("/v1/chat/completions",
                   Chat({{"messages", {{{"role", "user"}, {"content", std::string(60000, 'a')}}}}}).dump());
  ExpectErrorBody(huge, 400);
  EXPECT_NE(huge->body.find("at least"), std::string::npos) << huge->body;
  EXPECT_NE(huge->body.find("context_length_exceeded"), std::string::npos) << huge->body;
  // And the server still answers a normal request.
  auto ok = Post("/v1/chat/completions", Chat({}).dump());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerTest, ChatResponsesCarryBothDialectsFields) {
  auto result = Post("/v1/chat/completions", Chat({{"n", 2}, {"random_seed", 5}, {"unknown_field", true}}).dump());
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  const Json body = Json::parse(result->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["choices"].size(), 2u);
  for (const Json& choice : body["choices"]) {
    EXPECT_EQ(choice["message"]["role"], "assistant");
    EXPECT_EQ(choice["finish_reason"], "length");
  }
  EXPECT_EQ(body["usage"]["completion_tokens"], 12);
  EXPECT_EQ(body["usage"]["total_tokens"].get<int>(),
            body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>());
  // The same seed gives the same text at temperature 0.7, in both dialects' spellings.
  auto a = Json::parse(Post("/v1/chat/completions", Chat({{"random_seed", 11}, {"temperature", 0.7}}).dump())->body);
  auto b = Json::parse(Post("/v1/chat/completions", Chat({{"seed", 11}, {"temperature", 0.7}}).dump())->body);
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
}

TEST_F(ServerTest, StreamsAreWellFramedServerSentEvents) {
  auto result = Post("/v1/chat/completions",
                     Chat({{"stream", true}, {"stream_options", {{"include_usage", true}}}, {"n", 2}}).dump());
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_NE(result->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const std::string& text = result->body;
  EXPECT_EQ(text.find("\"usage\":null"), std::string::npos);
  ASSERT_GE(text.size(), 14u);
  EXPECT_EQ(text.substr(text.size() - 14), "data: [DONE]\n\n");
  std::vector<Json> chunks;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find("\n\n", start);
    ASSERT_NE(end, std::string::npos);
    const std::string event = text.substr(start, end - start);
    start = end + 2;
    ASSERT_EQ(event.rfind("data: ", 0), 0u) << event;
    if (event == "data: [DONE]") break;
    chunks.push_back(Json::parse(event.substr(6)));
  }
  ASSERT_GE(chunks.size(), 4u);
  std::set<int> roles;
  int finishes = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Json& chunk = chunks[i];
    EXPECT_EQ(chunk["id"], chunks[0]["id"]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    for (const Json& choice : chunk["choices"]) {
      EXPECT_TRUE(choice.contains("finish_reason"));
      if (choice["delta"].contains("role")) roles.insert(choice["index"].get<int>());
      if (!choice["finish_reason"].is_null()) ++finishes;
    }
  }
  EXPECT_EQ(roles, (std::set<int>{0, 1}));  // every choice opens with the role
  EXPECT_EQ(finishes, 2);
  EXPECT_TRUE(chunks.back()["choices"].empty());  // include_usage: the extra usage chunk
  EXPECT_EQ(chunks.back()["usage"]["completion_tokens"], 12);
}

TEST_F(ServerTest, EmbeddingsAsFloatsAndBase64Agree) {
  const Json request = {{"model", "tiny"}, {"input", {"first text", "second"}}};
  const Json floats = Json::parse(Post("/v1/embeddings", request.dump())->body);
  Json base64_request = request;
  base64_request["encoding_format"] = "base64";
  const Json encoded = Json::parse(Post("/v1/embeddings", base64_request.dump())->body);
  ASSERT_EQ(floats["data"].size(), 2u);
  ASSERT_EQ(encoded["data"].size(), 2u);
  const std::vector<float> vector = floats["data"][0]["embedding"].get<std::vector<float>>();
  EXPECT_EQ(vector.size(), 256u);
  double norm = 0;
  for (float x : vector) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  // Decode the base64 little-endian float32.
  const std::string b64 = encoded["data"][0]["embedding"];
  std::string bytes;
  int value = 0, bits = -8;
  for (char c : b64) {
    const size_t index = std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/").find(c);
    if (index == std::string::npos) break;
    value = (value << 6) + static_cast<int>(index);
    bits += 6;
    if (bits >= 0) {
      bytes.push_back(static_cast<char>((value >> bits) & 0xFF));
      bits -= 8;
    }
  }
  ASSERT_EQ(bytes.size(), vector.size() * 4);
  std::vector<float> decoded(vector.size());
  std::memcpy(decoded.data(), bytes.data(), bytes.size());
  EXPECT_EQ(decoded, vector);
  EXPECT_GT(floats["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST_F(ServerTest, MetricsExposeRequestsLatencyAndKvUsage) {
  Post("/v1/chat/completions", Chat({}).dump());
  auto metrics = Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  // Without the key: refused, like every route but /health and the page (rule S1).
  EXPECT_EQ(Client("").Get("/metrics")->status, 401);
  ASSERT_TRUE(metrics);
  for (const char* name : {"bora_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}",
                           "bora_time_to_first_token_seconds_bucket", "bora_time_per_output_token_seconds_count",
                           "bora_kv_usage_ratio{model=\"tiny\"}", "bora_prefix_cache_hit_ratio",
                           "bora_queue_depth", "bora_running_sequences"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
  }
}

// Reads /metrics until `gauge{model="tiny"}` reads `want` (or a timeout).
bool WaitForGauge(int port, const std::string& gauge, const std::string& want) {
  for (int i = 0; i < 200; ++i) {
    httplib::Client client("127.0.0.1", port);
    client.set_default_headers({{"Authorization", "Bearer secret"}});  // ignored without keys
    auto metrics = client.Get("/metrics");
    if (metrics && metrics->body.find(gauge + "{model=\"tiny\"} " + want + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(ServerTest, AClientThatGoesAwayMidStreamCancelsItsRequest) {
  const int fd = ConnectLoopback(server_->port());
  ASSERT_GE(fd, 0);
  const std::string body = Chat({{"stream", true}, {"max_tokens", 200}, {"ignore_eos", true}}).dump();
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer secret\r\n"
                              "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  char buffer[512];
  ASSERT_GT(recv(fd, buffer, sizeof(buffer), 0), 0);  // the stream has started
  EXPECT_TRUE(WaitForGauge(server_->port(), "bora_running_sequences", "1"));
  close(fd);
  EXPECT_TRUE(WaitForGauge(server_->port(), "bora_running_sequences", "0"));
  EXPECT_TRUE(WaitForGauge(server_->port(), "bora_kv_blocks_used", "0"));
  EXPECT_TRUE(server_->alive());
}

// The value of an unlabelled counter in /metrics, or -1.
int64_t Counter(int port, const std::string& name) {
  httplib::Client client("127.0.0.1", port);
  auto metrics = client.Get("/metrics");
  if (!metrics) return -1;
  const size_t at = metrics->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(metrics->body.substr(at + name.size() + 2));
}

// Rule H5 for requests that are not streamed: nothing is written until the answer, so only
// polling the socket can notice that the client left. The request asks for 1900 tokens; it
// must stop long before them (the tokens it did generate are counted when it ends).
TEST_F(ServerTest, AClientThatGoesAwayBeforeAnUnstreamedAnswerCancelsItsRequest) {
  ServerProcess server({"--model", "tiny=" + dir_->path() + "/tiny", "--ctx", "2048"},
                       dir_->path() + "/unstreamed.log");
  ASSERT_NE(server.port(), 0);
  const int64_t before = Counter(server.port(), "bora_completion_tokens_total");
  ASSERT_EQ(before, 0);
  const int fd = ConnectLoopback(server.port());
  ASSERT_GE(fd, 0);
  const std::string body = Chat({{"max_tokens", 1900}, {"ignore_eos", true}}).dump();
  const std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  EXPECT_TRUE(WaitForGauge(server.port(), "bora_running_sequences", "1"));
  close(fd);
  EXPECT_TRUE(WaitForGauge(server.port(), "bora_running_sequences", "0"));
  EXPECT_TRUE(WaitForGauge(server.port(), "bora_kv_blocks_used", "0"));
  const int64_t generated = Counter(server.port(), "bora_completion_tokens_total");
  EXPECT_GE(generated, 0);
  EXPECT_LT(generated, 1500) << "the request ran on after its client left";
  EXPECT_TRUE(server.alive());
}

TEST_F(ServerTest, AFullQueueAnswers429WithRetryAfter) {
  auto busy = std::make_unique<ServerProcess>(
      std::vector<std::string>{"--model", "tiny=" + dir_->path() + "/tiny", "--parallel", "1", "--max-queue", "1",
                               "--ctx", "2048"},
      dir_->path() + "/busy.log");
  const int port = busy->port();
  ASSERT_NE(port, 0);
  const std::string body = Chat({{"max_tokens", 1500}}).dump();
  auto long_request = [&] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(120, 0);
    client.Post("/v1/chat/completions", body, "application/json");
  };
  std::thread running(long_request);
  ASSERT_TRUE(WaitForGauge(port, "bora_running_sequences", "1"));
  std::thread queued(long_request);
  ASSERT_TRUE(WaitForGauge(port, "bora_queue_depth", "1"));
  httplib::Client client("127.0.0.1", port);
  auto refused = client.Post("/v1/chat/completions", Chat({}).dump(), "application/json");
  ExpectErrorBody(refused, 429);
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
  busy.reset();  // SIGTERM: stops cleanly once the two requests are answered
  running.join();
  queued.join();
}

}  // namespace
}  // namespace bora::testing
