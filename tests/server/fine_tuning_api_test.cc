// The fine-tuning API of `bora serve --state-dir`: /v1/files (multipart upload validated as
// training data, list, get, content, delete, 409 while a job uses a file), /v1/fine_tuning/jobs
// (Mistral JobIn with OpenAI's aliases, validation errors, list filters, start, cancel), a job
// run to SUCCESS whose ft: model then serves chat, a server killed with SIGKILL that resumes its
// running job from the last checkpoint, and a second server on the same state folder (fine-tuning
// off there). Ids that are not UUIDs, path traversal included, are 404s.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/server_process.h"
#include "testdata.h"

namespace bora::testing {
namespace {

using Json = nlohmann::json;

constexpr int kSteps = 20;     // a job run to SUCCESS
constexpr int kSeqLen = 128;   // training sequence length of every job
constexpr double kLr = 1e-3;   // learning rate of every job
constexpr double kWait = 120;  // seconds a job may take to reach a state

std::string Tokenizer() {
  return SharedDir() + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsUuid(const Json& id) {
  static const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  return id.is_string() && std::regex_match(id.get<std::string>(), uuid);
}

// One HTTP exchange: status 0 when no response came; `json` is discarded when the body is not
// JSON.
struct Reply {
  int status = 0;
  std::string text;
  Json json;
};

Reply FromResult(const httplib::Result& result) {
  Reply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.text = result->body;
  reply.json = Json::parse(result->body, nullptr, false);
  return reply;
}

httplib::Client ClientFor(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  return client;
}

Reply Get(int port, const std::string& path) { return FromResult(ClientFor(port).Get(path)); }
Reply Delete(int port, const std::string& path) { return FromResult(ClientFor(port).Delete(path)); }
Reply Post(int port, const std::string& path, const std::string& body,
           const std::string& content_type) {
  return FromResult(ClientFor(port).Post(path, body, content_type));
}
Reply PostJson(int port, const std::string& path, const Json& body) {
  return Post(port, path, body.dump(), "application/json");
}
// A multipart upload to /v1/files: a `file` part (with `filename`) and a `purpose` part (none
// when empty).
Reply Upload(int port, const std::string& filename, const std::string& content,
             const std::string& purpose = "fine-tune") {
  httplib::MultipartFormDataItems items = {{"file", content, filename, "application/jsonl"}};
  if (!purpose.empty()) items.push_back({"purpose", purpose, "", ""});
  return FromResult(ClientFor(port).Post("/v1/files", items));
}

// An error answer: `status`, and a body both SDKs can read (Mistral's top-level `message`,
// OpenAI's `error.message`), whose message contains `fragment`.
void ExpectError(const Reply& reply, int status, const std::string& fragment = "") {
  EXPECT_EQ(reply.status, status) << reply.text;
  ASSERT_TRUE(reply.json.is_object()) << "not a JSON error body: " << reply.text;
  ASSERT_TRUE(reply.json.contains("message") && reply.json["message"].is_string()) << reply.text;
  const std::string message = reply.json["message"].get<std::string>();
  EXPECT_FALSE(message.empty()) << reply.text;
  ASSERT_TRUE(reply.json.contains("error") && reply.json["error"].is_object()) << reply.text;
  EXPECT_EQ(reply.json["error"]["message"], message) << reply.text;
  if (!fragment.empty()) {
    EXPECT_NE(message.find(fragment), std::string::npos) << reply.text;
  }
}

// A refused request: 4xx (never 5xx) with a readable error body.
void ExpectClientError(const Reply& reply) {
  EXPECT_GE(reply.status, 400) << reply.text;
  EXPECT_LT(reply.status, 500) << reply.text;
  ExpectError(reply, reply.status);
}

// A 422 validation error (Mistral's and FastAPI's shape): `detail` entries whose `loc` names
// `field`.
void ExpectValidation(const Reply& reply, const std::string& field) {
  ExpectError(reply, 422, "");
  ASSERT_TRUE(reply.json.is_object());
  const Json detail = reply.json.value("detail", Json());
  ASSERT_TRUE(detail.is_array() && !detail.empty()) << reply.text;
  bool named = false;
  for (const Json& part : detail[0].value("loc", Json::array())) {
    named = named || (part.is_string() && part.get<std::string>().find(field) != std::string::npos);
  }
  EXPECT_TRUE(named) << "detail[0].loc does not name " << field << ": " << reply.text;
}

// The fields Mistral's SDK requires of a file object (and OpenAI's).
void ExpectFileShape(const Json& file) {
  ASSERT_TRUE(file.is_object()) << file;
  EXPECT_TRUE(IsUuid(file["id"])) << file;
  EXPECT_EQ(file["object"], "file");
  EXPECT_TRUE(file["bytes"].is_number_integer()) << file;
  EXPECT_TRUE(file["created_at"].is_number_integer() && file["created_at"].get<int64_t>() > 0)
      << file;
  EXPECT_TRUE(file["filename"].is_string()) << file;
  EXPECT_EQ(file["purpose"], "fine-tune");
  EXPECT_TRUE(file["sample_type"] == "instruct" || file["sample_type"] == "pretrain") << file;
  EXPECT_TRUE(file["num_lines"].is_number_integer()) << file;
  EXPECT_EQ(file["source"], "upload");
}

// The fields Mistral's SDK requires of a job object.
void ExpectJobShape(const Json& job) {
  ASSERT_TRUE(job.is_object()) << job;
  EXPECT_TRUE(IsUuid(job["id"])) << job;
  EXPECT_EQ(job["object"], "job");
  EXPECT_EQ(job["job_type"], "completion");
  EXPECT_TRUE(job["auto_start"].is_boolean()) << job;
  EXPECT_EQ(job["model"], "tiny");
  static const std::set<std::string> statuses = {
      "QUEUED",  "STARTED", "VALIDATED", "RUNNING",
      "SUCCESS", "FAILED",  "CANCELLED", "CANCELLATION_REQUESTED"};
  EXPECT_TRUE(job["status"].is_string() && statuses.count(job["status"].get<std::string>())) << job;
  EXPECT_TRUE(job["created_at"].is_number_integer() && job["created_at"].get<int64_t>() > 0) << job;
  EXPECT_TRUE(job["modified_at"].is_number_integer() &&
              job["modified_at"].get<int64_t>() >= job["created_at"].get<int64_t>())
      << job;
  ASSERT_TRUE(job["training_files"].is_array()) << job;
  for (const Json& id : job["training_files"]) EXPECT_TRUE(IsUuid(id)) << job;
  ASSERT_TRUE(job["hyperparameters"].is_object()) << job;
  EXPECT_TRUE(job["hyperparameters"]["learning_rate"].is_number()) << job;
}

Json JobRequest(const std::string& file_id, int steps, const std::string& suffix = "") {
  Json body = {{"model", "tiny"},
               {"training_files", {{{"file_id", file_id}, {"weight", 1}}}},
               {"hyperparameters",
                {{"training_steps", steps}, {"learning_rate", kLr}, {"seq_len", kSeqLen}}}};
  if (!suffix.empty()) body["suffix"] = suffix;
  return body;
}

// The statuses of a job's status-updated events, in order.
std::vector<std::string> StatusEvents(const Json& job) {
  std::vector<std::string> out;
  for (const Json& event : job.value("events", Json::array())) {
    if (event["name"] == "status-updated") out.push_back(event["data"]["status"]);
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Polls GET /v1/fine_tuning/jobs/ID until `done` holds (returns that job), or fails after
// `seconds` (returns the last job seen).
Json WaitForJob(int port, const std::string& id, const std::function<bool(const Json&)>& done,
                double seconds = kWait, const std::string& what = "") {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  Json job;
  while (std::chrono::steady_clock::now() < deadline) {
    const Reply reply = Get(port, "/v1/fine_tuning/jobs/" + id);
    if (reply.status != 200) {
      ADD_FAILURE() << "GET job " << id << ": " << reply.status << " " << reply.text;
      return Json();
    }
    job = reply.json;
    if (done(job)) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << id << " did not reach " << what << " in " << seconds
                << " s; last status " << job.value("status", "?") << ", error "
                << job.value("error", Json()).dump();
  return job;
}

Json WaitForStatus(int port, const std::string& id, const std::string& status) {
  return WaitForJob(
      port, id, [&](const Json& job) { return job["status"] == status; }, kWait, status);
}

// The /v1/models card with this id, or null.
Json ModelCard(int port, const std::string& id) {
  const Reply reply = Get(port, "/v1/models");
  EXPECT_EQ(reply.status, 200) << reply.text;
  if (!reply.json.is_object()) return Json();
  for (const Json& card : reply.json["data"]) {
    if (card["id"] == id) return card;
  }
  return Json();
}

Reply Chat(int port, const std::string& model) {
  return PostJson(
      port, "/v1/chat/completions",
      {{"model", model},
       {"messages", {{{"role", "user"}, {"content", "What is the capital of France?"}}}},
       {"max_tokens", 8},
       {"temperature", 0}});
}

class FineTuningApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SharedDir().empty()) return;
    dir_ = new TempDir();
    const std::string bora = BORA_BINARY;
    const std::string quiet = " > /dev/null 2>&1";
    ASSERT_EQ(std::system((bora + " make-model --preset tiny --seed 5 --tokenizer " + Tokenizer() +
                           " --out " + dir_->File("tiny") + quiet)
                              .c_str()),
              0);
    ASSERT_EQ(std::system((bora + " make-dataset --out " + dir_->File("train.jsonl") +
                           " --count 200 --seed 1" + quiet)
                              .c_str()),
              0);
    ASSERT_EQ(std::system((bora + " make-dataset --out " + dir_->File("eval.jsonl") +
                           " --count 30 --seed 2" + quiet)
                              .c_str()),
              0);
    train_ = new std::string(ReadText(dir_->File("train.jsonl")));
    eval_ = new std::string(ReadText(dir_->File("eval.jsonl")));
    ASSERT_EQ(std::system((bora + " make-dataset --kind pretrain --out " +
                           dir_->File("pretrain.jsonl") + " --count 20 --seed 3" + quiet)
                              .c_str()),
              0);
    pretrain_ = new std::string(ReadText(dir_->File("pretrain.jsonl")));
    server_ = new ServerProcess(ServerArgs(dir_->File("state")), dir_->File("serve.log"));
  }
  static void TearDownTestSuite() {
    delete server_;
    delete train_;
    delete eval_;
    delete pretrain_;
    delete dir_;
    server_ = nullptr;
    train_ = eval_ = pretrain_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    BORA_REQUIRE_SHARED(shared);
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(server_->port(), 0) << "the server did not start: "
                                  << ReadText(dir_->File("serve.log"));
    port_ = server_->port();
  }

  // --max-body below the uploads and --max-upload above them: uploads get their own limit.
  static std::vector<std::string> ServerArgs(const std::string& state_dir) {
    return {"--model",      "tiny=" + dir_->File("tiny"),
            "--ctx",        "256",
            "--state-dir",  state_dir,
            "--max-body",   "16K",
            "--max-upload", "1M"};
  }

  // Uploads `content` and returns the file id ("" after a failed expectation).
  static std::string UploadOk(int port, const std::string& filename, const std::string& content) {
    const Reply reply = Upload(port, filename, content);
    EXPECT_EQ(reply.status, 200) << reply.text;
    if (reply.status != 200 || !reply.json.is_object()) return "";
    return reply.json["id"];
  }

  static Json CreateJob(int port, const Json& body) {
    const Reply reply = PostJson(port, "/v1/fine_tuning/jobs", body);
    EXPECT_EQ(reply.status, 200) << reply.text;
    return reply.json.is_object() ? reply.json : Json::object();
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string* train_;
  static std::string* eval_;
  static std::string* pretrain_;
  int port_ = 0;
};
TempDir* FineTuningApiTest::dir_ = nullptr;
ServerProcess* FineTuningApiTest::server_ = nullptr;
std::string* FineTuningApiTest::train_ = nullptr;
std::string* FineTuningApiTest::eval_ = nullptr;
std::string* FineTuningApiTest::pretrain_ = nullptr;

TEST_F(FineTuningApiTest, FilesUploadListGetContentDelete) {
  const Reply uploaded = Upload(port_, "train.jsonl", *train_);
  ASSERT_EQ(uploaded.status, 200) << uploaded.text;
  const Json& file = uploaded.json;
  ExpectFileShape(file);
  EXPECT_EQ(file["bytes"], train_->size());
  EXPECT_EQ(file["filename"], "train.jsonl");
  EXPECT_EQ(file["sample_type"], "instruct");
  EXPECT_EQ(file["num_lines"], 200);
  const std::string id = file["id"];

  // A path in the filename keeps its last component only.
  const Reply second = Upload(port_, "../dir/eval.jsonl", *eval_);
  ASSERT_EQ(second.status, 200) << second.text;
  EXPECT_EQ(second.json["filename"], "eval.jsonl");
  EXPECT_EQ(second.json["num_lines"], 30);
  const std::string second_id = second.json["id"];
  EXPECT_NE(second_id, id);

  // No purpose part: fine-tune, as Mistral's API defaults it.
  const Reply no_purpose = Upload(port_, "nopurpose.jsonl", *eval_, "");
  ASSERT_EQ(no_purpose.status, 200) << no_purpose.text;
  EXPECT_EQ(no_purpose.json["purpose"], "fine-tune");
  EXPECT_EQ(Delete(port_, "/v1/files/" + no_purpose.json["id"].get<std::string>()).status, 200);

  // Larger than --max-body but under --max-upload: uploads have their own limit.
  std::string big;
  while (big.size() < 20000) big += *eval_;
  const Reply large = Upload(port_, "big.jsonl", big);
  ASSERT_EQ(large.status, 200) << large.text;
  EXPECT_EQ(large.json["bytes"], big.size());
  const std::string large_id = large.json["id"];

  const Reply list = Get(port_, "/v1/files");
  ASSERT_EQ(list.status, 200) << list.text;
  EXPECT_EQ(list.json["object"], "list");
  ASSERT_TRUE(list.json["data"].is_array());
  EXPECT_GE(list.json["total"].get<int64_t>(), 3);
  std::set<std::string> listed;
  for (const Json& entry : list.json["data"]) {
    ExpectFileShape(entry);
    listed.insert(entry["id"]);
  }
  EXPECT_TRUE(listed.count(id) && listed.count(second_id) && listed.count(large_id));
  // Paging and the purpose filter.
  const Reply page = Get(port_, "/v1/files?page=0&page_size=1&purpose=fine-tune");
  ASSERT_EQ(page.status, 200) << page.text;
  EXPECT_EQ(page.json["data"].size(), 1u);
  EXPECT_EQ(page.json["has_more"], true);
  const Reply other_purpose = Get(port_, "/v1/files?purpose=batch");
  ASSERT_EQ(other_purpose.status, 200) << other_purpose.text;
  EXPECT_EQ(other_purpose.json["data"].size(), 0u);
  EXPECT_EQ(other_purpose.json["total"], 0);
  ExpectClientError(Get(port_, "/v1/files?page_size=abc"));
  ExpectClientError(Get(port_, "/v1/files?page_size=0"));
  ExpectClientError(Get(port_, "/v1/files?page=-1"));

  const Reply one = Get(port_, "/v1/files/" + id);
  ASSERT_EQ(one.status, 200) << one.text;
  ExpectFileShape(one.json);
  EXPECT_EQ(one.json["id"], id);
  EXPECT_EQ(one.json["deleted"], false);
  EXPECT_EQ(one.json["bytes"], train_->size());

  const Reply content = Get(port_, "/v1/files/" + id + "/content");
  ASSERT_EQ(content.status, 200);
  EXPECT_TRUE(content.text == *train_) << "the content differs from the uploaded bytes";

  const Reply deleted = Delete(port_, "/v1/files/" + id);
  ASSERT_EQ(deleted.status, 200) << deleted.text;
  EXPECT_EQ(deleted.json["id"], id);
  EXPECT_EQ(deleted.json["deleted"], true);
  ExpectError(Get(port_, "/v1/files/" + id), 404);
  ExpectError(Get(port_, "/v1/files/" + id + "/content"), 404);
  ExpectError(Delete(port_, "/v1/files/" + id), 404);
  EXPECT_EQ(Get(port_, "/v1/files/" + second_id).status, 200);
  EXPECT_EQ(Delete(port_, "/v1/files/" + second_id).status, 200);
  EXPECT_EQ(Delete(port_, "/v1/files/" + large_id).status, 200);
}

TEST_F(FineTuningApiTest, UploadErrors) {
  // A bad line: 422 naming FILE:LINE.
  std::istringstream lines(*train_);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  const std::string bad = first + "\n" + second + "\n{\"messages\": [}\n";
  ExpectError(Upload(port_, "bad.jsonl", bad), 422, "bad.jsonl:3");
  // Valid JSON that is not a training record.
  ExpectError(Upload(port_, "wrong.jsonl", first + "\n{\"prompt\": \"x\"}\n"), 422,
              "wrong.jsonl:2");
  ExpectError(Upload(port_, "empty.jsonl", ""), 422, "empty");
  ExpectError(Upload(port_, "blank.jsonl", "\n\n"), 422);
  ExpectError(Upload(port_, "train.jsonl", *train_, "batch"), 422, "purpose");
  // Not multipart, and multipart without a file part.
  ExpectError(Post(port_, "/v1/files", *train_, "application/json"), 400);
  ExpectError(Post(port_, "/v1/files", "", "application/octet-stream"), 400);
  const Reply no_file = FromResult(ClientFor(port_).Post(
      "/v1/files", httplib::MultipartFormDataItems{{"purpose", "fine-tune", "", ""}}));
  ExpectError(no_file, 422, "file");
  const Reply no_filename = FromResult(ClientFor(port_).Post(
      "/v1/files", httplib::MultipartFormDataItems{{"file", *train_, "", ""},
                                                   {"purpose", "fine-tune", "", ""}}));
  ExpectError(no_filename, 422, "filename");
  // Over --max-upload.
  std::string huge;
  while (huge.size() < (1u << 20) + 1000) huge += *train_;
  const Reply too_large = Upload(port_, "huge.jsonl", huge);
  EXPECT_EQ(too_large.status, 413) << too_large.text.substr(0, 200);
  // Nothing was stored.
  const Reply list = Get(port_, "/v1/files");
  ASSERT_EQ(list.status, 200);
  for (const Json& file : list.json["data"]) {
    EXPECT_NE(file["filename"], "bad.jsonl");
    EXPECT_NE(file["filename"], "empty.jsonl");
    EXPECT_NE(file["filename"], "huge.jsonl");
  }
}

TEST_F(FineTuningApiTest, IdsThatAreNotUuidsAreNotFound) {
  const std::string id = UploadOk(port_, "train.jsonl", *train_);
  ASSERT_FALSE(id.empty());
  const std::vector<std::string> bad_ids = {
      "..%2F..%2Fetc%2Fpasswd",
      "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
      "%2E%2E%2Fstate.db",
      "..",
      "not-a-uuid",
      "file-abc123",
      id.substr(0, 35),
      id + "0",
      "00000000-0000-4000-8000-000000000000"};  // a UUID no file has
  for (const std::string& bad : bad_ids) {
    SCOPED_TRACE(bad);
    ExpectError(Get(port_, "/v1/files/" + bad), 404);
    ExpectError(Get(port_, "/v1/files/" + bad + "/content"), 404);
    ExpectError(Delete(port_, "/v1/files/" + bad), 404);
    ExpectError(Get(port_, "/v1/fine_tuning/jobs/" + bad), 404);
    ExpectError(Post(port_, "/v1/fine_tuning/jobs/" + bad + "/cancel", "", "application/json"),
                404);
    ExpectError(Post(port_, "/v1/fine_tuning/jobs/" + bad + "/start", "", "application/json"), 404);
  }
  // Raw dot segments and a NUL never reach a file either (400 or 404).
  for (const std::string& path :
       {std::string("/v1/files/../../etc/passwd"), std::string("/v1/files/../state.db"),
        std::string("/v1/files/%2e%2e/lock/content"), "/v1/files/" + id + "%00",
        "/v1/files/" + id + "%00/content", "/v1/files/" + id + "%2F..%2F..%2Fstate.db"}) {
    SCOPED_TRACE(path);
    const Reply reply = Get(port_, path);
    EXPECT_GE(reply.status, 400) << reply.text;
    EXPECT_LT(reply.status, 500) << reply.text;
    EXPECT_EQ(reply.text.find("root:"), std::string::npos);
    EXPECT_EQ(reply.text.find("SQLite"), std::string::npos);
  }
  // The file is still there.
  EXPECT_EQ(Get(port_, "/v1/files/" + id).status, 200);
  EXPECT_EQ(Delete(port_, "/v1/files/" + id).status, 200);
}

TEST_F(FineTuningApiTest, JobValidationErrors) {
  const std::string id = UploadOk(port_, "train.jsonl", *train_);
  ASSERT_FALSE(id.empty());
  const Json good = JobRequest(id, kSteps);
  const auto with = [&](const std::function<void(Json&)>& change) {
    Json body = good;
    change(body);
    return PostJson(port_, "/v1/fine_tuning/jobs", body);
  };
  // Unknown models and files are 404s; the id is not used as a path.
  {
    SCOPED_TRACE("unknown model");
    ExpectError(with([](Json& b) { b["model"] = "no-such-model"; }), 404, "no-such-model");
  }
  {
    SCOPED_TRACE("unknown file id");
    ExpectError(with([](Json& b) {
                  b["training_files"][0]["file_id"] = "00000000-0000-4000-8000-000000000000";
                }),
                404);
  }
  {
    SCOPED_TRACE("malformed file id");
    ExpectError(with([](Json& b) { b["training_files"][0]["file_id"] = "../../etc/passwd"; }), 404);
  }
  {
    SCOPED_TRACE("plain file id list");
    ExpectError(with([](Json& b) { b["training_files"] = {"..%2F..%2Fetc%2Fpasswd"}; }), 404);
  }
  {
    SCOPED_TRACE("unknown validation file");
    ExpectError(with([](Json& b) { b["validation_files"] = {"not-a-file"}; }), 404);
  }
  // Every invalid JobIn field: a 422 validation error naming it, as Mistral answers.
  const std::vector<std::pair<std::string, std::function<void(Json&)>>> invalid = {
      {"model", [](Json& b) { b.erase("model"); }},
      {"model", [](Json& b) { b["model"] = 7; }},
      {"training_files", [](Json& b) { b.erase("training_files"); }},
      {"training_files", [](Json& b) { b["training_files"] = Json::array(); }},
      {"training_files", [](Json& b) { b["training_files"] = 42; }},
      {"training_files",
       [](Json& b) {
         b["training_files"] = {{{"weight", 1}}};
       }},
      {"training_files", [](Json& b) { b["training_files"][0]["weight"] = 0; }},
      {"validation_files", [](Json& b) { b["validation_files"] = "x"; }},
      {"hyperparameters", [](Json& b) { b["hyperparameters"] = "fast"; }},
      {"integrations",
       [](Json& b) {
         b["integrations"] = {{{"type", "wandb"}, {"project", "p"}, {"api_key", "k"}}};
       }},
      {"repositories",
       [](Json& b) {
         b["repositories"] = {{{"type", "github"}, {"name", "n"}, {"owner", "o"}}};
       }},
      {"job_type", [](Json& b) { b["job_type"] = "classifier"; }},
      {"auto_start", [](Json& b) { b["auto_start"] = "yes"; }},
  };
  for (const auto& [field, change] : invalid) {
    Json body = good;
    change(body);
    SCOPED_TRACE(body.dump());
    ExpectValidation(PostJson(port_, "/v1/fine_tuning/jobs", body), field);
  }
  const std::vector<std::pair<std::string, Json>> bad_hyperparameters = {{"learning_rate", 0},
                                                                         {"learning_rate", -0.001},
                                                                         {"learning_rate", "fast"},
                                                                         {"learning_rate", 2},
                                                                         {"training_steps", 0},
                                                                         {"training_steps", -5},
                                                                         {"training_steps", 1.5},
                                                                         {"seq_len", 0},
                                                                         {"epochs", 0},
                                                                         {"weight_decay", -1},
                                                                         {"warmup_fraction", 1.5},
                                                                         {"fim_ratio", 0.5},
                                                                         {"fim_ratio", 1}};
  for (const auto& entry : bad_hyperparameters) {
    // (not a structured binding: clang 14 cannot capture one in a lambda)
    const std::string& name = entry.first;
    const Json& value = entry.second;
    SCOPED_TRACE(name + "=" + value.dump());
    ExpectValidation(with([&](Json& b) { b["hyperparameters"][name] = value; }), name);
  }
  for (const std::string& suffix :
       std::vector<std::string>{"a/b", "../x", "a\\b", "", "has space", std::string(41, 'x')}) {
    SCOPED_TRACE("suffix " + suffix);
    ExpectValidation(with([&](Json& b) { b["suffix"] = suffix; }), "suffix");
  }
  // Bodies that are not a JSON object.
  ExpectError(Post(port_, "/v1/fine_tuning/jobs", good.dump(), "text/plain"), 415);
  ExpectClientError(Post(port_, "/v1/fine_tuning/jobs", "{\"model\": ", "application/json"));
  ExpectClientError(Post(port_, "/v1/fine_tuning/jobs", "[]", "application/json"));
  ExpectClientError(Post(port_, "/v1/fine_tuning/jobs", "", "application/json"));
  // Bad list queries.
  ExpectClientError(Get(port_, "/v1/fine_tuning/jobs?page=-1"));
  ExpectClientError(Get(port_, "/v1/fine_tuning/jobs?page_size=0"));
  ExpectClientError(Get(port_, "/v1/fine_tuning/jobs?created_after=yesterday"));
  // None of them made a job; the file is unused and can go.
  const Reply list = Get(port_, "/v1/fine_tuning/jobs?page_size=100");
  ASSERT_EQ(list.status, 200) << list.text;
  for (const Json& job : list.json["data"]) {
    for (const Json& file : job["training_files"]) EXPECT_NE(file, id);
  }
  EXPECT_EQ(Delete(port_, "/v1/files/" + id).status, 200);
}

TEST_F(FineTuningApiTest, OpenAiAliasesAndDeleteOfAFileInUse) {
  const std::string train = UploadOk(port_, "train.jsonl", *train_);
  const std::string eval = UploadOk(port_, "eval.jsonl", *eval_);
  ASSERT_FALSE(train.empty() || eval.empty());
  const Json job = CreateJob(port_, {{"model", "tiny"},
                                     {"training_file", train},
                                     {"validation_file", eval},
                                     {"seed", 42},
                                     {"suffix", "openai"},
                                     {"auto_start", false},
                                     {"hyperparameters", {{"n_epochs", 2}, {"seq_len", kSeqLen}}}});
  ExpectJobShape(job);
  EXPECT_EQ(job["status"], "VALIDATED");
  EXPECT_EQ(job["auto_start"], false);
  EXPECT_EQ(job["training_files"], Json::array({train}));
  EXPECT_EQ(job["validation_files"], Json::array({eval}));
  EXPECT_EQ(job["training_file"], train);
  EXPECT_EQ(job["validation_file"], eval);
  EXPECT_EQ(job["seed"], 42);
  EXPECT_EQ(job["suffix"], "openai");
  EXPECT_EQ(job["hyperparameters"]["epochs"], 2.0);
  EXPECT_EQ(job["hyperparameters"]["seq_len"], kSeqLen);
  EXPECT_TRUE(job["fine_tuned_model"].is_null());
  const std::string id = job["id"];

  // A VALIDATED job holds its files.
  ExpectError(Delete(port_, "/v1/files/" + train), 409, id);
  ExpectError(Delete(port_, "/v1/files/" + eval), 409, id);
  EXPECT_EQ(Get(port_, "/v1/files/" + train).status, 200);
  // It does not run by itself.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const Reply still = Get(port_, "/v1/fine_tuning/jobs/" + id);
  ASSERT_EQ(still.status, 200);
  EXPECT_EQ(still.json["status"], "VALIDATED");

  const Reply cancelled = Post(port_, "/v1/fine_tuning/jobs/" + id + "/cancel", "", "");
  ASSERT_EQ(cancelled.status, 200) << cancelled.text;
  ExpectJobShape(cancelled.json);
  EXPECT_EQ(cancelled.json["status"], "CANCELLED");
  ExpectError(Post(port_, "/v1/fine_tuning/jobs/" + id + "/start", "", ""), 409);
  // A finished job lets its files go.
  EXPECT_EQ(Delete(port_, "/v1/files/" + train).status, 200);
  EXPECT_EQ(Delete(port_, "/v1/files/" + eval).status, 200);
}

TEST_F(FineTuningApiTest, JobRunsToSuccessAndServesChat) {
  const std::string train = UploadOk(port_, "train.jsonl", *train_);
  const std::string eval = UploadOk(port_, "eval.jsonl", *eval_);
  ASSERT_FALSE(train.empty() || eval.empty());
  Json request = JobRequest(train, kSteps, "e2e");
  request["validation_files"] = {eval};
  const auto start = std::chrono::steady_clock::now();
  const Json created = CreateJob(port_, request);
  ExpectJobShape(created);
  EXPECT_EQ(created["auto_start"], true);
  EXPECT_TRUE(created["status"] == "QUEUED" || created["status"] == "STARTED") << created;
  EXPECT_EQ(created["training_files"], Json::array({train}));
  EXPECT_EQ(created["validation_files"], Json::array({eval}));
  EXPECT_EQ(created["suffix"], "e2e");
  EXPECT_EQ(created["hyperparameters"]["training_steps"], kSteps);
  EXPECT_DOUBLE_EQ(created["hyperparameters"]["learning_rate"].get<double>(), kLr);
  EXPECT_EQ(created["hyperparameters"]["seq_len"], kSeqLen);
  EXPECT_TRUE(created["fine_tuned_model"].is_null());
  EXPECT_TRUE(created["integrations"].is_array());
  const std::string id = created["id"];

  // While it is unfinished its files cannot be deleted.
  ExpectError(Delete(port_, "/v1/files/" + train), 409, id);
  ExpectError(Delete(port_, "/v1/files/" + eval), 409, id);

  const Json job = WaitForJob(
      port_, id,
      [](const Json& j) {
        return j["status"] == "SUCCESS" || j["status"] == "FAILED" || j["status"] == "CANCELLED";
      },
      kWait, "a final status");
  std::printf("[ timing ] %d-step job: %.1f s\n", kSteps,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  ASSERT_EQ(job["status"], "SUCCESS") << job.dump(1);
  ExpectJobShape(job);
  const std::string model = "ft:tiny:e2e:" + id.substr(0, 8);
  EXPECT_EQ(job["fine_tuned_model"], model);
  EXPECT_GT(job["trained_tokens"].get<int64_t>(), 0);
  EXPECT_TRUE(job["finished_at"].is_number_integer()) << job;
  EXPECT_TRUE(job["error"].is_null()) << job;
  const std::vector<std::string> statuses = StatusEvents(job);
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(statuses.front(), "QUEUED");
  EXPECT_TRUE(Contains(statuses, "RUNNING"));
  EXPECT_EQ(statuses.back(), "SUCCESS");
  int metrics = 0;
  bool valid_loss = false;
  for (const Json& event : job["events"]) {
    EXPECT_TRUE(event["created_at"].is_number_integer()) << event;
    if (event["name"] != "metrics") continue;
    ++metrics;
    if (event["data"].contains("valid_loss")) valid_loss = true;
  }
  EXPECT_GT(metrics, 0);
  EXPECT_TRUE(valid_loss) << "no validation metrics although validation_files were given";
  ASSERT_TRUE(job["checkpoints"].is_array());
  ASSERT_FALSE(job["checkpoints"].empty());
  EXPECT_EQ(job["checkpoints"].back()["step_number"], kSteps);
  EXPECT_TRUE(job["checkpoints"].back()["metrics"]["train_loss"].is_number());

  // The fine-tuned model is served at once.
  const Json card = ModelCard(port_, model);
  ASSERT_TRUE(card.is_object()) << model << " is not listed in /v1/models";
  EXPECT_EQ(card["job"], id);
  EXPECT_EQ(card["root"], "tiny");
  EXPECT_EQ(card["type"], "fine-tuned");
  EXPECT_EQ(Get(port_, "/v1/models/" + model).status, 200);
  const Reply chat = Chat(port_, model);
  ASSERT_EQ(chat.status, 200) << chat.text;
  EXPECT_EQ(chat.json["model"], model);
  EXPECT_TRUE(chat.json["choices"][0]["message"]["content"].is_string()) << chat.text;
  EXPECT_EQ(Chat(port_, "tiny").status, 200);
  // Fine-tuning starts from a base model, not from a fine-tuned one.
  Json from_adapter = JobRequest(eval, kSteps);
  from_adapter["model"] = model;
  ExpectError(PostJson(port_, "/v1/fine_tuning/jobs", from_adapter), 404);

  // Listing with filters.
  const Reply listed = Get(port_, "/v1/fine_tuning/jobs?status=SUCCESS&model=tiny");
  ASSERT_EQ(listed.status, 200) << listed.text;
  EXPECT_EQ(listed.json["object"], "list");
  bool found = false;
  for (const Json& entry : listed.json["data"]) {
    ExpectJobShape(entry);
    EXPECT_EQ(entry["status"], "SUCCESS");
    found = found || entry["id"] == id;
  }
  EXPECT_TRUE(found);
  const Reply other_model = Get(port_, "/v1/fine_tuning/jobs?model=other");
  ASSERT_EQ(other_model.status, 200);
  EXPECT_EQ(other_model.json["total"], 0);
  const Reply queued = Get(port_, "/v1/fine_tuning/jobs?status=QUEUED");
  ASSERT_EQ(queued.status, 200);
  for (const Json& entry : queued.json["data"]) EXPECT_NE(entry["id"], id);
  const Reply page = Get(port_, "/v1/fine_tuning/jobs?page=0&page_size=1");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.json["data"].size(), 1u);
  // Cancelling or starting a finished job changes nothing.
  const Reply cancel = Post(port_, "/v1/fine_tuning/jobs/" + id + "/cancel", "", "");
  ASSERT_EQ(cancel.status, 200) << cancel.text;
  EXPECT_EQ(cancel.json["status"], "SUCCESS");
  ExpectError(Post(port_, "/v1/fine_tuning/jobs/" + id + "/start", "", ""), 409);
  // A finished job lets its files go; the model stays.
  EXPECT_EQ(Delete(port_, "/v1/files/" + train).status, 200);
  EXPECT_EQ(Delete(port_, "/v1/files/" + eval).status, 200);
  EXPECT_EQ(Chat(port_, model).status, 200);
}

// Without training_steps, the steps come from epochs over the data's tokens; pretrain data too.
TEST_F(FineTuningApiTest, EpochsBecomeTrainingSteps) {
  const Reply uploaded = Upload(port_, "pretrain.jsonl", *pretrain_);
  ASSERT_EQ(uploaded.status, 200) << uploaded.text;
  ExpectFileShape(uploaded.json);
  EXPECT_EQ(uploaded.json["sample_type"], "pretrain");
  EXPECT_EQ(uploaded.json["num_lines"], 20);
  const std::string file = uploaded.json["id"];
  const Json created = CreateJob(port_, {{"model", "tiny"},
                                         {"training_files", {file}},
                                         {"hyperparameters",
                                          {{"n_epochs", 1},
                                           {"learning_rate", kLr},
                                           {"seq_len", kSeqLen},
                                           {"weight_decay", 0},
                                           {"warmup_fraction", 0},
                                           {"fim_ratio", 0}}}});
  ExpectJobShape(created);
  EXPECT_TRUE(created["hyperparameters"]["training_steps"].is_null()) << created;
  EXPECT_EQ(created["hyperparameters"]["epochs"], 1.0);
  EXPECT_EQ(created["hyperparameters"]["weight_decay"], 0.0);
  EXPECT_TRUE(created["hyperparameters"]["fim_ratio"].is_null());
  const std::string id = created.value("id", "");
  ASSERT_FALSE(id.empty());
  const Json job = WaitForJob(
      port_, id,
      [](const Json& j) {
        return j["status"] == "SUCCESS" || j["status"] == "FAILED" || j["status"] == "CANCELLED";
      },
      kWait, "a final status");
  ASSERT_EQ(job["status"], "SUCCESS") << job.dump(1);
  ASSERT_TRUE(job["hyperparameters"]["training_steps"].is_number_integer()) << job;
  const int64_t steps = job["hyperparameters"]["training_steps"];
  ASSERT_TRUE(job["metadata"]["data_tokens"].is_number_integer()) << job;
  const int64_t tokens = job["metadata"]["data_tokens"];
  EXPECT_GT(tokens, 0);
  EXPECT_EQ(steps, std::max<int64_t>(1, (tokens + kSeqLen - 1) / kSeqLen)) << job["metadata"];
  EXPECT_EQ(job["metadata"]["train_tokens"], steps * kSeqLen);
  EXPECT_EQ(job["checkpoints"].back()["step_number"], steps);
  // No suffix: ft:BASE:JOB.
  EXPECT_EQ(job["fine_tuned_model"], "ft:tiny:" + id.substr(0, 8));
  EXPECT_TRUE(ModelCard(port_, job["fine_tuned_model"]).is_object());
  EXPECT_EQ(Delete(port_, "/v1/files/" + file).status, 200);
}

TEST_F(FineTuningApiTest, AutoStartFalseWaitsForStart) {
  const std::string train = UploadOk(port_, "train.jsonl", *train_);
  ASSERT_FALSE(train.empty());
  Json request = JobRequest(train, kSteps, "manual");
  request["auto_start"] = false;
  const Json created = CreateJob(port_, request);
  ExpectJobShape(created);
  EXPECT_EQ(created["status"], "VALIDATED");
  EXPECT_EQ(created["auto_start"], false);
  const std::string id = created["id"];
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const Reply waiting = Get(port_, "/v1/fine_tuning/jobs/" + id);
  ASSERT_EQ(waiting.status, 200);
  EXPECT_EQ(waiting.json["status"], "VALIDATED");
  const Reply listed = Get(port_, "/v1/fine_tuning/jobs?status=VALIDATED");
  ASSERT_EQ(listed.status, 200);
  ASSERT_FALSE(listed.json["data"].empty());
  EXPECT_EQ(listed.json["data"][0]["id"], id);

  const Reply started = Post(port_, "/v1/fine_tuning/jobs/" + id + "/start", "", "");
  ASSERT_EQ(started.status, 200) << started.text;
  ExpectJobShape(started.json);
  EXPECT_NE(started.json["status"], "VALIDATED");
  const Json job = WaitForJob(
      port_, id,
      [](const Json& j) {
        return j["status"] == "SUCCESS" || j["status"] == "FAILED" || j["status"] == "CANCELLED";
      },
      kWait, "a final status");
  ASSERT_EQ(job["status"], "SUCCESS") << job.dump(1);
  const std::vector<std::string> statuses = StatusEvents(job);
  ASSERT_GE(statuses.size(), 4u);
  EXPECT_EQ(statuses[0], "VALIDATED");
  EXPECT_EQ(statuses[1], "QUEUED");
  EXPECT_TRUE(Contains(statuses, "RUNNING"));
  EXPECT_EQ(job["fine_tuned_model"], "ft:tiny:manual:" + id.substr(0, 8));
  EXPECT_TRUE(ModelCard(port_, job["fine_tuned_model"]).is_object());
  EXPECT_EQ(Delete(port_, "/v1/files/" + train).status, 200);
}

TEST_F(FineTuningApiTest, CancelRunningJob) {
  const std::string train = UploadOk(port_, "train.jsonl", *train_);
  ASSERT_FALSE(train.empty());
  const Json created = CreateJob(port_, JobRequest(train, 2000, "cancel"));
  ExpectJobShape(created);
  const std::string id = created["id"];
  const Json running = WaitForStatus(port_, id, "RUNNING");
  ASSERT_EQ(running["status"], "RUNNING");

  ExpectError(Delete(port_, "/v1/files/" + train), 409, id);
  const auto asked = std::chrono::steady_clock::now();
  const Reply cancel = Post(port_, "/v1/fine_tuning/jobs/" + id + "/cancel", "", "");
  ASSERT_EQ(cancel.status, 200) << cancel.text;
  ExpectJobShape(cancel.json);
  EXPECT_TRUE(cancel.json["status"] == "CANCELLATION_REQUESTED" ||
              cancel.json["status"] == "CANCELLED")
      << cancel.json["status"];
  const Json job = WaitForStatus(port_, id, "CANCELLED");
  ASSERT_EQ(job["status"], "CANCELLED");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count(), 10)
      << "cancelling took more than a few steps";
  const std::vector<std::string> statuses = StatusEvents(job);
  EXPECT_TRUE(Contains(statuses, "RUNNING"));
  EXPECT_TRUE(Contains(statuses, "CANCELLATION_REQUESTED"));
  EXPECT_EQ(statuses.back(), "CANCELLED");
  EXPECT_TRUE(job["fine_tuned_model"].is_null());
  EXPECT_TRUE(job["finished_at"].is_number_integer());
  EXPECT_FALSE(ModelCard(port_, "ft:tiny:cancel:" + id.substr(0, 8)).is_object());
  // A second cancel leaves it as it is; it cannot be started again.
  const Reply again = Post(port_, "/v1/fine_tuning/jobs/" + id + "/cancel", "", "");
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.json["status"], "CANCELLED");
  ExpectError(Post(port_, "/v1/fine_tuning/jobs/" + id + "/start", "", ""), 409);
  // The worker is free for the next job, and the file can go.
  EXPECT_EQ(Delete(port_, "/v1/files/" + train).status, 200);
  const Reply cancelled = Get(port_, "/v1/fine_tuning/jobs?status=CANCELLED");
  ASSERT_EQ(cancelled.status, 200);
  EXPECT_GE(cancelled.json["total"].get<int64_t>(), 1);
}

TEST_F(FineTuningApiTest, SecondServerOnTheSameStateDirHasFineTuningOff) {
  const std::string log = dir_->File("second.log");
  {
    ServerProcess second(ServerArgs(dir_->File("state")), log);
    ASSERT_NE(second.port(), 0) << ReadText(log);
    EXPECT_NE(ReadText(log).find("warning"), std::string::npos) << ReadText(log);
    ExpectError(Get(second.port(), "/v1/files"), 404);
    const Reply files = Get(second.port(), "/v1/files");
    EXPECT_EQ(files.json.value("code", Json()), "fine_tuning_disabled") << files.text;
    EXPECT_EQ(files.json["error"].value("code", Json()), "fine_tuning_disabled") << files.text;
    // Without file routes an upload gets no larger body limit than any request (413 before
    // a byte is stored); a small one is answered as the route is: off.
    ExpectError(Upload(second.port(), "train.jsonl", *train_), 413);
    ExpectError(Upload(second.port(), "small.jsonl", train_->substr(0, 2000)), 404);
    ExpectError(Get(second.port(), "/v1/fine_tuning/jobs"), 404);
    ExpectError(PostJson(second.port(), "/v1/fine_tuning/jobs",
                         JobRequest("00000000-0000-4000-8000-000000000000", kSteps)),
                404);
    // It serves models all the same.
    EXPECT_EQ(Get(second.port(), "/v1/models").status, 200);
    EXPECT_EQ(Chat(second.port(), "tiny").status, 200);
  }
  // The first server keeps its state folder.
  EXPECT_EQ(Get(port_, "/v1/files").status, 200);
  const std::string id = UploadOk(port_, "train.jsonl", *train_);
  EXPECT_EQ(Delete(port_, "/v1/files/" + id).status, 200);
}

// Files and jobs belong to the API key that created them (rule S1 and "never leak one user's
// data to another"); each key has its own storage quota; uploads stream to unnamed temporary
// files, so an upload cut off mid-body leaves nothing in the state folder.
TEST_F(FineTuningApiTest, TenantsSeeOnlyTheirOwnFilesAndJobsWithinTheirQuota) {
  const std::string log = dir_->File("tenants.log");
  const std::string state = dir_->File("tenants-state");
  ServerProcess server({"--model", "tiny=" + dir_->File("tiny"), "--ctx", "256", "--state-dir",
                        state, "--max-upload", "1M", "--upload-quota", "40K", "--api-key",
                        "tenant-a-key", "--api-key", "tenant-b-key"},
                       log);
  ASSERT_NE(server.port(), 0) << ReadText(log);
  const auto client = [&](const std::string& key) {
    httplib::Client c = ClientFor(server.port());
    c.set_bearer_token_auth(key);
    return c;
  };
  const std::string data = train_->substr(0, train_->find('\n', 14000) + 1);
  ASSERT_GT(data.size(), 14000u);
  ASSERT_LT(data.size(), 20000u);
  const auto upload = [&](const std::string& key, const std::string& name) {
    return FromResult(client(key).Post(
        "/v1/files", httplib::MultipartFormDataItems{{"file", data, name, "application/jsonl"},
                                                     {"purpose", "fine-tune", "", ""}}));
  };
  const Reply a_file = upload("tenant-a-key", "a.jsonl");
  ASSERT_EQ(a_file.status, 200) << a_file.text;
  const std::string a_id = a_file.json["id"];
  // Tenant B cannot see, read, delete or train on A's file: 404 as for an unknown id.
  EXPECT_EQ(FromResult(client("tenant-b-key").Get("/v1/files")).json["data"].size(), 0u);
  EXPECT_EQ(FromResult(client("tenant-b-key").Get("/v1/files/" + a_id)).status, 404);
  EXPECT_EQ(FromResult(client("tenant-b-key").Get("/v1/files/" + a_id + "/content")).status, 404);
  EXPECT_EQ(FromResult(client("tenant-b-key").Delete("/v1/files/" + a_id)).status, 404);
  const Reply b_job =
      FromResult(client("tenant-b-key")
                     .Post("/v1/fine_tuning/jobs", JobRequest(a_id, 2).dump(), "application/json"));
  EXPECT_EQ(b_job.status, 404) << b_job.text;
  // A sees it, and its job; B does not see A's job.
  Json job_body = JobRequest(a_id, 2);
  job_body["auto_start"] = false;
  const Reply a_job = FromResult(
      client("tenant-a-key").Post("/v1/fine_tuning/jobs", job_body.dump(), "application/json"));
  ASSERT_EQ(a_job.status, 200) << a_job.text;
  const std::string job_id = a_job.json["id"];
  EXPECT_EQ(FromResult(client("tenant-a-key").Get("/v1/fine_tuning/jobs/" + job_id)).status, 200);
  EXPECT_EQ(FromResult(client("tenant-b-key").Get("/v1/fine_tuning/jobs/" + job_id)).status, 404);
  EXPECT_EQ(
      FromResult(client("tenant-b-key")
                     .Post("/v1/fine_tuning/jobs/" + job_id + "/cancel", "", "application/json"))
          .status,
      404);
  EXPECT_EQ(FromResult(client("tenant-b-key").Get("/v1/fine_tuning/jobs")).json["data"].size(), 0u);
  EXPECT_EQ(FromResult(client("tenant-a-key").Get("/v1/fine_tuning/jobs")).json["data"].size(), 1u);
  // Quota 40K: A's third upload of 14-20K goes over, with a clear 403; B still has room.
  ASSERT_EQ(upload("tenant-a-key", "a2.jsonl").status, 200);
  const Reply over = upload("tenant-a-key", "a3.jsonl");
  ExpectError(over, 403, "quota");
  EXPECT_EQ(upload("tenant-b-key", "b.jsonl").status, 200);

  // An upload cut off mid-body: nothing stored, nothing left in the folder.
  const int fd = ConnectLoopback(server.port());
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tenant-b-key\r\n"
      "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 500000\r\n\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.jsonl\"\r\n\r\n";
  const std::string partial = head + data;
  ASSERT_EQ(send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int stored = 0;
  for (const auto& entry : std::filesystem::directory_iterator(state + "/files")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.size(), 36u + 6u) << "unexpected file in the store: " << name;
    ++stored;
  }
  EXPECT_EQ(stored, 3);  // a.jsonl, a2.jsonl, b.jsonl
  EXPECT_TRUE(server.alive());
}

TEST_F(FineTuningApiTest, StateDirNoneHasFineTuningOff) {
  const std::string log = dir_->File("none.log");
  ServerProcess server(
      {"--model", "tiny=" + dir_->File("tiny"), "--ctx", "256", "--state-dir", "none"}, log);
  ASSERT_NE(server.port(), 0) << ReadText(log);
  const Reply files = Get(server.port(), "/v1/files");
  ExpectError(files, 404);
  EXPECT_EQ(files.json.value("code", Json()), "fine_tuning_disabled") << files.text;
  ExpectError(Get(server.port(), "/v1/fine_tuning/jobs"), 404);
}

// SIGKILL while a job is RUNNING: the restarted server has the files and the job, resumes it
// from its last checkpoint and finishes it; the model is still served after another restart.
TEST_F(FineTuningApiTest, KilledServerResumesItsJob) {
  constexpr int kResumeSteps = 40;  // checkpoints every 4 steps
  const std::string state = dir_->File("state-kill");
  const std::string log = dir_->File("kill.log");
  auto server = std::make_unique<ServerProcess>(ServerArgs(state), log + ".1");
  ASSERT_NE(server->port(), 0) << ReadText(log + ".1");
  const std::string train = UploadOk(server->port(), "train.jsonl", *train_);
  const std::string eval = UploadOk(server->port(), "eval.jsonl", *eval_);
  ASSERT_FALSE(train.empty() || eval.empty());
  Json request = JobRequest(train, kResumeSteps, "resume");
  request["validation_files"] = {eval};
  const Json created = CreateJob(server->port(), request);
  const std::string id = created.value("id", "");
  ASSERT_FALSE(id.empty());
  // Running, with a checkpoint behind it and most steps still ahead.
  const Json before = WaitForJob(
      server->port(), id,
      [](const Json& j) { return j["status"] == "RUNNING" && !j["checkpoints"].empty(); }, kWait,
      "RUNNING with a checkpoint");
  server->Kill();
  ASSERT_EQ(before["status"], "RUNNING") << before.dump(1);
  const int64_t checkpoint = before["checkpoints"].back()["step_number"];
  ASSERT_LT(checkpoint, kResumeSteps);

  server = std::make_unique<ServerProcess>(ServerArgs(state), log + ".2");
  ASSERT_NE(server->port(), 0) << ReadText(log + ".2");
  const int port = server->port();
  // Files survive the kill.
  const Reply file = Get(port, "/v1/files/" + train);
  ASSERT_EQ(file.status, 200) << file.text;
  EXPECT_EQ(file.json["bytes"], train_->size());
  const Reply content = Get(port, "/v1/files/" + eval + "/content");
  ASSERT_EQ(content.status, 200);
  EXPECT_TRUE(content.text == *eval_);
  const Json job = WaitForJob(
      port, id,
      [](const Json& j) {
        return j["status"] == "SUCCESS" || j["status"] == "FAILED" || j["status"] == "CANCELLED";
      },
      kWait, "a final status");
  ASSERT_EQ(job["status"], "SUCCESS") << job.dump(1);
  int64_t resumed_from = -1;
  for (const Json& event : job["events"]) {
    if (event["name"] == "status-updated" && event["data"].contains("resumed_from_step")) {
      resumed_from = event["data"]["resumed_from_step"];
    }
  }
  EXPECT_GT(resumed_from, 0) << "no status-updated event with resumed_from_step: "
                             << job["events"].dump();
  EXPECT_GE(resumed_from, checkpoint);
  EXPECT_LT(resumed_from, kResumeSteps);
  EXPECT_EQ(job["checkpoints"].back()["step_number"], kResumeSteps);
  // Metrics steps are not logged twice after the resume.
  std::set<int64_t> steps;
  for (const Json& event : job["events"]) {
    if (event["name"] != "metrics" || !event["data"].contains("train_loss")) continue;
    EXPECT_TRUE(steps.insert(event["data"]["step"].get<int64_t>()).second)
        << "step " << event["data"]["step"] << " logged twice";
  }
  EXPECT_TRUE(steps.count(kResumeSteps));
  const std::string model = "ft:tiny:resume:" + id.substr(0, 8);
  EXPECT_EQ(job["fine_tuned_model"], model);
  EXPECT_TRUE(ModelCard(port, model).is_object());
  EXPECT_EQ(Chat(port, model).status, 200);

  // A clean restart still offers the model, the job and the files.
  server.reset();
  server = std::make_unique<ServerProcess>(ServerArgs(state), log + ".3");
  ASSERT_NE(server->port(), 0) << ReadText(log + ".3");
  const Json card = ModelCard(server->port(), model);
  ASSERT_TRUE(card.is_object()) << model << " is not listed after a restart";
  EXPECT_EQ(card["job"], id);
  const Reply chat = Chat(server->port(), model);
  EXPECT_EQ(chat.status, 200) << chat.text;
  const Reply after = Get(server->port(), "/v1/fine_tuning/jobs/" + id);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.json["status"], "SUCCESS");
  EXPECT_EQ(after.json["fine_tuned_model"], model);
  EXPECT_EQ(Get(server->port(), "/v1/files/" + train).status, 200);
}

// A server killed right after a running job was asked to cancel: after the restart the job is
// CANCELLED (whether or not the worker got to record it), not resumed; queued work behind it
// still runs.
TEST_F(FineTuningApiTest, KilledWhileCancellingStaysCancelled) {
  const std::string state = dir_->File("state-cancel");
  const std::string log = dir_->File("cancel.log");
  auto server = std::make_unique<ServerProcess>(ServerArgs(state), log + ".1");
  ASSERT_NE(server->port(), 0) << ReadText(log + ".1");
  const std::string train = UploadOk(server->port(), "train.jsonl", *train_);
  ASSERT_FALSE(train.empty());
  const std::string long_job = CreateJob(server->port(), JobRequest(train, 2000)).value("id", "");
  const std::string next_job =
      CreateJob(server->port(), JobRequest(train, 4, "next")).value("id", "");
  ASSERT_FALSE(long_job.empty() || next_job.empty());
  ASSERT_EQ(WaitForStatus(server->port(), long_job, "RUNNING")["status"], "RUNNING");
  const Reply queued = Get(server->port(), "/v1/fine_tuning/jobs/" + next_job);
  ASSERT_EQ(queued.status, 200);
  EXPECT_EQ(queued.json["status"], "QUEUED");
  const Reply cancel = Post(server->port(), "/v1/fine_tuning/jobs/" + long_job + "/cancel", "", "");
  server->Kill();
  ASSERT_EQ(cancel.status, 200) << cancel.text;
  EXPECT_TRUE(cancel.json["status"] == "CANCELLATION_REQUESTED" ||
              cancel.json["status"] == "CANCELLED")
      << cancel.json["status"];

  server = std::make_unique<ServerProcess>(ServerArgs(state), log + ".2");
  ASSERT_NE(server->port(), 0) << ReadText(log + ".2");
  const Reply after = Get(server->port(), "/v1/fine_tuning/jobs/" + long_job);
  ASSERT_EQ(after.status, 200) << after.text;
  EXPECT_EQ(after.json["status"], "CANCELLED") << after.json.dump(1);
  const Json next = WaitForJob(
      server->port(), next_job,
      [](const Json& j) {
        return j["status"] == "SUCCESS" || j["status"] == "FAILED" || j["status"] == "CANCELLED";
      },
      kWait, "a final status");
  EXPECT_EQ(next["status"], "SUCCESS") << next.dump(1);
  // The cancelled job never ran again.
  const Reply final_state = Get(server->port(), "/v1/fine_tuning/jobs/" + long_job);
  ASSERT_EQ(final_state.status, 200);
  EXPECT_EQ(final_state.json["status"], "CANCELLED");
  EXPECT_EQ(StatusEvents(final_state.json).back(), "CANCELLED");
  EXPECT_FALSE(Contains(StatusEvents(final_state.json), "SUCCESS"));
  EXPECT_TRUE(final_state.json["fine_tuned_model"].is_null());
}

}  // namespace
}  // namespace bora::testing
