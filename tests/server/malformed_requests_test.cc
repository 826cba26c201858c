// The malformed-request corpus for `bora serve` (reliability-security.md §2 A/H, §4.6): over 200
// bad requests on every route, sent as raw bytes, must each get a 4xx with a readable JSON error,
// quickly, without the server growing or falling over.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "server/server_process.h"
#include "testdata.h"

#if defined(__SANITIZE_ADDRESS__)
#define BORA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BORA_TEST_ASAN 1
#endif
#endif
#ifdef BORA_TEST_ASAN
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace bora::testing {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 exchange over one TCP connection.

struct RawResponse {
  bool answered = false;  // a whole response (status line, headers, body) arrived
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string problem;  // why there is no whole response
  double seconds = 0;

  std::string Header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Parses `data` as one response; false while more bytes are needed (`eof`: no more will come).
bool ParseResponse(const std::string& data, bool eof, RawResponse& out) {
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  const std::string head = data.substr(0, head_end);
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) {
    out.problem = "not an HTTP response: " + head.substr(0, 80);
    return true;
  }
  out.status = std::atoi(head.c_str() + 9);
  size_t line = head.find("\r\n");
  while (line != std::string::npos) {
    const size_t next = head.find("\r\n", line + 2);
    const std::string field =
        head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
    const size_t colon = field.find(':');
    if (colon != std::string::npos) {
      std::string value = field.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      out.headers[Lower(field.substr(0, colon))] = value;
    }
    line = next;
  }
  const std::string rest = data.substr(head_end + 4);
  if (Lower(out.Header("transfer-encoding")).find("chunked") != std::string::npos) {
    std::string body;
    size_t at = 0;
    while (true) {
      const size_t size_end = rest.find("\r\n", at);
      if (size_end == std::string::npos) return eof;
      const size_t size = std::strtoul(rest.c_str() + at, nullptr, 16);
      if (size == 0) {
        out.body = body;
        out.answered = true;
        return true;
      }
      if (rest.size() < size_end + 2 + size + 2) return eof;
      body += rest.substr(size_end + 2, size);
      at = size_end + 2 + size + 2;
    }
  }
  if (!out.Header("content-length").empty()) {
    const size_t length = std::strtoul(out.Header("content-length").c_str(), nullptr, 10);
    if (rest.size() < length) return eof;
    out.body = rest.substr(0, length);
    out.answered = true;
    return true;
  }
  if (!eof) return false;  // the body ends with the connection
  out.body = rest;
  out.answered = true;
  return true;
}

// Sends `request` and reads one response. Sending stops as soon as the server answers (a 413 may
// come before a big body is read), so an early answer is still seen.
RawResponse Exchange(int port, const std::string& request, int timeout_seconds = 20) {
  RawResponse out;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + std::chrono::seconds(timeout_seconds);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    out.problem = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return out;
  }
  size_t sent = 0;
  bool sending = true;
  std::string received;
  bool done = false;
  while (!done) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      out.problem = "no whole response within " + std::to_string(timeout_seconds) + " s (got " +
                    std::to_string(received.size()) + " bytes)";
      break;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    if (sending && (p.revents & POLLOUT)) {
      const size_t chunk = std::min<size_t>(request.size() - sent, 1 << 16);
      const ssize_t n = send(fd, request.data() + sent, chunk, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) sending = false;  // closed early
      if (sent == request.size()) sending = false;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[1 << 16];
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        received.append(buffer, static_cast<size_t>(n));
        sending = false;
        done = ParseResponse(received, false, out);
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        done = ParseResponse(received, true, out);
        if (!done || !out.answered) {
          out.problem = received.empty()
                            ? std::string("connection closed without a response") +
                                  (n < 0 ? std::string(": ") + std::strerror(errno) : "")
                            : "connection closed in the middle of a response";
        }
        done = true;
      }
    }
  }
  close(fd);
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Building requests.

std::string Request(const std::string& method, const std::string& target, const std::string& body,
                    const std::string& content_type = "application/json",
                    const std::string& extra_headers = "") {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!content_type.empty()) out += "Content-Type: " + content_type + "\r\n";
  if (method == "POST" || method == "PUT" || method == "PATCH" || !body.empty())
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return out + extra_headers + "\r\n" + body;
}

std::string Get(const std::string& target) { return Request("GET", target, "", ""); }

std::string Post(const std::string& path, const std::string& body,
                 const std::string& content_type = "application/json") {
  return Request("POST", path, body, content_type);
}

constexpr const char* kChat = "/v1/chat/completions";
constexpr const char* kFim = "/v1/fim/completions";
constexpr const char* kLegacy = "/v1/completions";
constexpr const char* kEmbeddings = "/v1/embeddings";

Json UserMessages(const std::string& text = "Hello") {
  return Json::array({{{"role", "user"}, {"content", text}}});
}

// A valid request body for `path` with `extra` merged over it (a null value removes the key).
Json Body(const std::string& path, const Json& extra = Json::object()) {
  Json body = {{"model", "tiny"}};
  if (path == kChat) {
    body["messages"] = UserMessages();
    body["max_tokens"] = 2;
  } else if (path == kFim || path == kLegacy) {
    body["prompt"] = "def f(x):";
    body["max_tokens"] = 2;
  } else {
    body["input"] = "some text";
  }
  for (const auto& item : extra.items()) {
    if (item.value().is_null()) {
      body.erase(item.key());
    } else {
      body[item.key()] = item.value();
    }
  }
  return body;
}

// The body text of Body(path, extra) with one field set to a literal JSON token (or raw bytes)
// that nlohmann::json would not produce: NaN, 1e400, big integers, invalid UTF-8.
std::string WithLiteral(const std::string& path, const std::string& field,
                        const std::string& literal, const Json& extra = Json::object()) {
  Json body = Body(path, extra);
  body.erase(field);
  std::string text = body.dump();
  text.pop_back();  // the closing brace
  return text + ",\"" + field + "\":" + literal + "}";
}

// A chat body whose only user message has `content` as raw bytes (not escaped by a serializer).
std::string ChatWithRawContent(const std::string& content) {
  return R"({"model":"tiny","max_tokens":2,"messages":[{"role":"user","content":")" + content +
         R"("}]})";
}

Json Tool(const std::string& name, const Json& parameters) {
  return {{"type", "function"},
          {"function", {{"name", name}, {"description", "d"}, {"parameters", parameters}}}};
}

Json ObjectSchema() { return {{"type", "object"}, {"properties", {{"a", {{"type", "string"}}}}}}; }

// user -> assistant (one tool call with id abcdefghi) -> `tool`.
Json ToolConversation(const Json& call, const Json& tool) {
  return Json::array({{{"role", "user"}, {"content", "call it"}},
                      {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}},
                      tool});
}

Json Call(const Json& function = {{"name", "f"}, {"arguments", "{}"}}) {
  return {{"id", "abcdefghi"}, {"type", "function"}, {"function", function}};
}

Json ToolResult(const Json& extra = Json::object()) {
  Json message = {{"role", "tool"}, {"content", "42"}, {"tool_call_id", "abcdefghi"}};
  for (const auto& item : extra.items()) {
    if (item.value().is_null()) {
      message.erase(item.key());
    } else {
      message[item.key()] = item.value();
    }
  }
  return message;
}

// A string literal with its embedded NUL bytes.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

std::string Nested(const std::string& open, const std::string& close, int depth,
                   const std::string& inner = "1") {
  std::string out;
  out.reserve((open.size() + close.size()) * static_cast<size_t>(depth) + inner.size());
  for (int i = 0; i < depth; ++i) out += open;
  out += inner;
  for (int i = 0; i < depth; ++i) out += close;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The corpus.

struct Case {
  std::string group;
  std::string name;
  std::string request;
  std::set<int> statuses;  // the status the spec asks for (two where it allows either)
};

class Corpus {
 public:
  void Add(const std::string& group, const std::string& name, std::string request,
           std::set<int> statuses) {
    cases_.push_back({group, name, std::move(request), std::move(statuses)});
  }
  void AddPost(const std::string& group, const std::string& name, const std::string& path,
               const std::string& body, int status) {
    Add(group, name + " (" + path + ")", Post(path, body), {status});
  }
  void AddJson(const std::string& group, const std::string& name, const std::string& path,
               const Json& body, int status) {
    AddPost(group, name, path, body.dump(), status);
  }
  const std::vector<Case>& cases() const { return cases_; }

 private:
  std::vector<Case> cases_;
};

void AddWrongTypes(Corpus& c) {
  const std::string g = "wrong type";
  const Json wrong_for_number = Json::array({"0.5", true, Json::array({0.5}), {{"v", 0.5}}});
  for (const char* field : {"temperature", "top_p", "min_p", "presence_penalty",
                            "frequency_penalty", "repetition_penalty"}) {
    for (const Json& value : wrong_for_number)
      c.AddJson(g, std::string(field) + "=" + value.dump(), kChat, Body(kChat, {{field, value}}),
                422);
  }
  const Json wrong_for_int = Json::array({"2", 1.5, true, Json::array({2}), {{"v", 2}}});
  for (const char* field : {"max_tokens", "max_completion_tokens", "n", "top_k", "random_seed",
                            "seed", "min_tokens", "top_logprobs"}) {
    for (const Json& value : wrong_for_int) {
      Json extra = {{field, value}};
      if (std::string(field) == "max_completion_tokens") extra["max_tokens"] = nullptr;
      c.AddJson(g, std::string(field) + "=" + value.dump(), kChat, Body(kChat, extra), 422);
    }
  }
  for (const Json& value : Json::array({"yes", 1.5, Json::array({true}), Json::object()}))
    c.AddJson(g, "logprobs=" + value.dump(), kChat, Body(kChat, {{"logprobs", value}}), 422);
  for (const char* field : {"stream", "safe_prompt", "parallel_tool_calls"}) {
    for (const Json& value : Json::array({"true", 1, Json::array({true}), Json::object()}))
      c.AddJson(g, std::string(field) + "=" + value.dump(), kChat, Body(kChat, {{field, value}}),
                422);
  }
  for (const Json& value : Json::array({"true", 1}))
    c.AddJson(g, "continue_final_message=" + value.dump(), kChat,
              Body(kChat, {{"continue_final_message", value}}), 400);
  for (const Json& value : Json::array({"usage", 5, Json::array()}))
    c.AddJson(g, "stream_options=" + value.dump(), kChat,
              Body(kChat, {{"stream", true}, {"stream_options", value}}), 422);
  c.AddJson(g, "stream_options.include_usage=\"yes\"", kChat,
            Body(kChat, {{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}}), 422);
  for (const Json& value : Json::array({5, true, Json::array({"tiny"}), {{"id", "tiny"}}}))
    c.AddJson(g, "model=" + value.dump(), kChat, Body(kChat, {{"model", value}}), 422);
  for (const Json& value :
       Json::array({5, true, Json::object(), Json::array({5}), Json::array({nullptr})}))
    c.AddJson(g, "stop=" + value.dump(), kChat, Body(kChat, {{"stop", value}}), 422);
  for (const Json& value : Json::array({"Hello", 5, true, Json::object()}))
    c.AddJson(g, "messages=" + value.dump(), kChat, Body(kChat, {{"messages", value}}), 422);
  c.AddPost(g, "messages=null", kChat, R"({"model":"tiny","max_tokens":2,"messages":null})", 422);
  for (const Json& value : Json::array({"json_object", 5, Json::array()}))
    c.AddJson(g, "response_format=" + value.dump(), kChat,
              Body(kChat, {{"response_format", value}}), 422);
  c.AddJson(g, "response_format.type=5", kChat, Body(kChat, {{"response_format", {{"type", 5}}}}),
            422);
  for (const Json& value : Json::array({3, true, Json::array({"auto"})}))
    c.AddJson(g, "tool_choice=" + value.dump(), kChat, Body(kChat, {{"tool_choice", value}}), 422);
  for (const Json& value : Json::array({Json::array({1, 2}), "5:10", 5}))
    c.AddJson(g, "logit_bias=" + value.dump(), kChat, Body(kChat, {{"logit_bias", value}}), 422);
  // Message fields are checked by the chat parser (400 naming the field).
  for (const Json& value : Json::array({5, true, {{"text", "x"}}}))
    c.AddJson(g, "messages[0].content=" + value.dump(), kChat,
              Body(kChat, {{"messages", {{{"role", "user"}, {"content", value}}}}}), 400);
  for (const Json& value : Json::array({5, nullptr, Json::array({"user"})}))
    c.AddJson(g, "messages[0].role=" + value.dump(), kChat,
              Body(kChat, {{"messages", {{{"role", value}, {"content", "x"}}}}}), 400);
  for (const Json& value : Json::array({"Hello", 5, Json::array({5})}))
    c.AddJson(g, "messages=[" + value.dump() + "]", kChat,
              Body(kChat, {{"messages", Json::array({value})}}), 400);
  for (const Json& value : Json::array({{{"name", "f"}}, "f", 5}))
    c.AddJson(g, "tools=" + value.dump(), kChat, Body(kChat, {{"tools", value}}), 400);

  // FIM and legacy completions.
  for (const Json& value : Json::array({5, Json::array({"a"}), Json::object(), true}))
    c.AddJson(g, "prompt=" + value.dump(), kFim, Body(kFim, {{"prompt", value}}), 422);
  c.AddPost(g, "prompt=null", kFim, R"({"model":"tiny","prompt":null})", 422);
  for (const Json& value : Json::array({5, Json::array({"a"}), Json::object()}))
    c.AddJson(g, "suffix=" + value.dump(), kFim, Body(kFim, {{"suffix", value}}), 422);
  c.AddJson(g, "temperature=\"hot\"", kFim, Body(kFim, {{"temperature", "hot"}}), 422);
  c.AddJson(g, "max_tokens=\"5\"", kFim, Body(kFim, {{"max_tokens", "5"}}), 422);
  c.AddJson(g, "stream=\"yes\"", kFim, Body(kFim, {{"stream", "yes"}}), 422);
  c.AddJson(g, "stop=5", kFim, Body(kFim, {{"stop", 5}}), 422);
  c.AddJson(g, "random_seed=1.5", kFim, Body(kFim, {{"random_seed", 1.5}}), 422);
  for (const Json& value : Json::array({5, Json::object(), true}))
    c.AddJson(g, "prompt=" + value.dump(), kLegacy, Body(kLegacy, {{"prompt", value}}), 400);
  c.AddJson(g, "suffix=5", kLegacy, Body(kLegacy, {{"suffix", 5}}), 422);
  c.AddJson(g, "echo=\"yes\"", kLegacy, Body(kLegacy, {{"echo", "yes"}}), 422);
  c.AddJson(g, "best_of=\"3\"", kLegacy, Body(kLegacy, {{"best_of", "3"}}), 422);
  c.AddJson(g, "logprobs=\"5\"", kLegacy, Body(kLegacy, {{"logprobs", "5"}}), 422);
  c.AddJson(g, "n=2.5", kLegacy, Body(kLegacy, {{"n", 2.5}}), 422);

  // Embeddings.
  for (const Json& value :
       Json::array({5, true, Json::object(), Json::array({true}), Json::array({Json::array({1.5})}),
                    Json::array({nullptr}), Json::array({"a", 5})}))
    c.AddJson(g, "input=" + value.dump(), kEmbeddings, Body(kEmbeddings, {{"input", value}}), 422);
  c.AddPost(g, "input=null", kEmbeddings, R"({"model":"tiny","input":null})", 422);
  for (const Json& value : Json::array({"5", 1.5, true}))
    c.AddJson(g, "dimensions=" + value.dump(), kEmbeddings,
              Body(kEmbeddings, {{"dimensions", value}}), 422);
  c.AddJson(g, "output_dimension=[8]", kEmbeddings,
            Body(kEmbeddings, {{"output_dimension", Json::array({8})}}), 422);
  c.AddJson(g, "encoding_format=5", kEmbeddings, Body(kEmbeddings, {{"encoding_format", 5}}), 422);
  c.AddJson(g, "output_dtype=[]", kEmbeddings, Body(kEmbeddings, {{"output_dtype", Json::array()}}),
            422);
}

void AddOutOfRange(Corpus& c) {
  const std::string g = "out of range";
  const std::vector<std::pair<std::string, Json>> chat = {
      {"max_tokens", -1},
      {"max_tokens", 0},
      {"max_tokens", 100000},  // past --ctx
      {"max_tokens", 2147483648LL},
      {"n", 0},
      {"n", 9},
      {"n", -1},
      {"n", 1000000000},
      {"n", 1e9},
      {"temperature", -1},
      {"temperature", 3},
      {"temperature", 2.0001},
      {"temperature", 1e308},
      {"temperature", -1e-6},
      {"top_p", 0},
      {"top_p", -0.1},
      {"top_p", 1.5},
      {"top_p", 1.0000001},
      {"top_k", -1},
      {"top_k", 32769},  // past the vocabulary
      {"top_k", 1000000000000LL},
      {"min_p", -0.1},
      {"min_p", 1.5},
      {"top_logprobs", 21},
      {"top_logprobs", -1},
      {"top_logprobs", 1000000000},
      {"presence_penalty", -2.5},
      {"presence_penalty", 3},
      {"frequency_penalty", -3},
      {"frequency_penalty", 2.5},
      {"repetition_penalty", 0},
      {"repetition_penalty", -1},
      {"repetition_penalty", 11},
      {"min_tokens", -1},
      {"min_tokens", 5},  // above max_tokens 2
      {"random_seed", 1e30},
      {"seed", -1e19},
  };
  for (const auto& [field, value] : chat)
    c.AddJson(g, field + "=" + value.dump(), kChat, Body(kChat, {{field, value}}), 400);
  c.AddJson(g, "max_completion_tokens=0", kChat,
            Body(kChat, {{"max_tokens", nullptr}, {"max_completion_tokens", 0}}), 400);
  c.AddJson(g, "min_tokens above the context without max_tokens", kChat,
            Body(kChat, {{"max_tokens", nullptr}, {"min_tokens", 1000000}}), 400);
  c.AddJson(g, "max_tokens=0", kFim, Body(kFim, {{"max_tokens", 0}}), 400);
  c.AddJson(g, "temperature=5", kFim, Body(kFim, {{"temperature", 5}}), 400);
  c.AddJson(g, "n=9", kLegacy, Body(kLegacy, {{"n", 9}}), 400);
  c.AddJson(g, "logprobs=21", kLegacy, Body(kLegacy, {{"logprobs", 21}}), 400);
  c.AddJson(g, "logprobs=-1", kLegacy, Body(kLegacy, {{"logprobs", -1}}), 400);
  c.AddJson(g, "best_of=3 above n=1", kLegacy, Body(kLegacy, {{"best_of", 3}}), 400);
  for (const Json& value : Json::array({0, 257, -1}))
    c.AddJson(g, "dimensions=" + value.dump(), kEmbeddings,
              Body(kEmbeddings, {{"dimensions", value}}), 400);
  c.AddJson(g, "encoding_format=hex", kEmbeddings, Body(kEmbeddings, {{"encoding_format", "hex"}}),
            400);
  c.AddJson(g, "output_dtype=int4", kEmbeddings, Body(kEmbeddings, {{"output_dtype", "int4"}}),
            400);
  c.AddJson(g, "257 inputs", kEmbeddings,
            Body(kEmbeddings, {{"input", Json(std::vector<std::string>(257, "a"))}}), 400);
  for (const Json& id : Json::array({-1, 32768}))
    c.AddJson(g, "token id " + id.dump(), kEmbeddings,
              Body(kEmbeddings, {{"input", Json::array({Json::array({1, id})})}}), 400);
  // Prompts that cannot fit: refused, never truncated.
  std::string words;
  for (int i = 0; i < 40000; ++i) words += "word ";
  c.AddJson(g, "200 KB message over the context", kChat,
            Body(kChat, {{"messages", UserMessages(words)}}), 400);
  c.AddJson(g, "200 KB prompt over the context", kLegacy, Body(kLegacy, {{"prompt", words}}), 400);
  c.AddJson(g, "200 KB input over the context", kEmbeddings, Body(kEmbeddings, {{"input", words}}),
            400);
}

void AddIntegerOverflow(Corpus& c) {
  const std::string g = "int64 overflow and non-finite literals";
  const std::vector<std::pair<std::string, std::string>> literals = {
      {"max_tokens", "9223372036854775808"},
      {"max_tokens", "99999999999999999999999"},
      {"max_tokens", "-9223372036854775809"},
      {"n", "18446744073709551615"},
      {"top_k", "-9223372036854775809"},
      {"random_seed", "18446744073709551616"},
      {"random_seed", "18446744073709551615"},
      {"seed", "-99999999999999999999"},
      {"min_tokens", "9223372036854775807"},
      {"top_logprobs", "1e400"},
      {"temperature", "NaN"},
      {"temperature", "nan"},
      {"temperature", "Infinity"},
      {"temperature", "-Infinity"},
      {"temperature", "1e999"},
      {"top_p", "-1e999"},
      {"presence_penalty", "0x10"},
      {"max_tokens", "+5"},
      {"max_tokens", "05"},
      {"n", "1."},
  };
  for (const auto& [field, literal] : literals)
    c.AddPost(g, field + "=" + literal, kChat, WithLiteral(kChat, field, literal), 400);
  c.AddPost(g, "max_tokens=2^63", kFim, WithLiteral(kFim, "max_tokens", "9223372036854775808"),
            400);
  c.AddPost(g, "max_tokens=NaN", kLegacy, WithLiteral(kLegacy, "max_tokens", "NaN"), 400);
  c.AddPost(g, "token id 2^64-1", kEmbeddings,
            R"({"model":"tiny","input":[[1,18446744073709551615]]})", 400);
  c.AddPost(g, "dimensions=2^63", kEmbeddings,
            WithLiteral(kEmbeddings, "dimensions", "9223372036854775808"), 400);
}

void AddInvalidUtf8(Corpus& c) {
  const std::string g = "invalid UTF-8";
  const std::vector<std::pair<std::string, std::string>> bytes = {
      {"0xff", "\xff"},
      {"0xc3 0x28", "\xc3\x28"},
      {"overlong slash", "\xc0\xaf"},
      {"encoded surrogate", "\xed\xa0\x80"},
      {"truncated 3-byte", "ab\xe2\x82"},
      {"5-byte form", "\xf8\x88\x80\x80\x80"},
      {"above U+10FFFF", "\xf4\x90\x80\x80"},
      {"lone continuation", "\x80"},
  };
  for (const auto& [name, raw] : bytes)
    c.AddPost(g, "content " + name, kChat, ChatWithRawContent(raw), 400);
  for (const auto& [name, escaped] :
       std::vector<std::pair<std::string, std::string>>{{"lone high surrogate", "\\ud800"},
                                                        {"lone low surrogate", "\\udc00"},
                                                        {"high surrogate then A", "\\ud800\\u0041"},
                                                        {"bad escape", "\\q"},
                                                        {"short unicode escape", "\\u12"},
                                                        {"raw control character", "\x01"}}) {
    c.AddPost(g, "content " + name, kChat, ChatWithRawContent(escaped), 400);
  }
  c.AddPost(g, "key", kChat,
            R"({"model":"tiny","max_tokens":2,")" + std::string("\xc3\x28") +
                R"(":1,"messages":[{"role":"user","content":"x"}]})",
            400);
  c.AddPost(g, "message key", kChat,
            R"({"model":"tiny","messages":[{"role":"user","cont)" + std::string("\xff") +
                R"(ent":"x"}]})",
            400);
  c.AddPost(g, "model", kChat,
            R"({"model":"ti)" + std::string("\xff") +
                R"(ny","messages":[{"role":"user","content":"x"}]})",
            400);
  c.AddPost(g, "role", kChat,
            R"({"model":"tiny","messages":[{"role":"us)" + std::string("\xfe") +
                R"(er","content":"x"}]})",
            400);
  c.AddPost(g, "stop", kChat, WithLiteral(kChat, "stop", "[\"\xff\"]"), 400);
  c.AddPost(g, "tool name", kChat,
            WithLiteral(kChat, "tools",
                        R"([{"type":"function","function":{"name":"f)" + std::string("\xff") +
                            R"(","parameters":{}}}])"),
            400);
  c.AddPost(g, "prompt", kFim, WithLiteral(kFim, "prompt", "\"def \xff\""), 400);
  c.AddPost(g, "suffix", kFim, WithLiteral(kFim, "suffix", "\"\xc0\x80\""), 400);
  c.AddPost(g, "prompt", kLegacy, WithLiteral(kLegacy, "prompt", "\"\xed\xbf\xbf\""), 400);
  c.AddPost(g, "input", kEmbeddings, WithLiteral(kEmbeddings, "input", "[\"ok\",\"\xff\"]"), 400);
}

void AddDeepNesting(Corpus& c) {
  const std::string g = "deep nesting";
  for (const char* path : {kChat, kFim, kLegacy, kEmbeddings})
    c.AddPost(g, "10^5 '['", path, std::string(100000, '['), 400);
  c.AddPost(g, "10^5 '[' closed", kChat, Nested("[", "]", 100000), 400);
  c.AddPost(g, "10^5 objects", kChat, Nested("{\"a\":", "}", 100000), 400);
  c.AddPost(g, "100 levels inside content", kChat,
            WithLiteral(kChat, "messages",
                        R"([{"role":"user","content":)" + Nested("[", "]", 100, "\"x\"") + "}]"),
            400);
  c.AddPost(g, "100 levels in a tool schema", kChat,
            WithLiteral(kChat, "tools",
                        R"([{"type":"function","function":{"name":"f","parameters":)" +
                            Nested("{\"items\":", "}", 100, "{}") + "}}]"),
            400);
  c.AddPost(g, "100 levels in metadata", kEmbeddings,
            WithLiteral(kEmbeddings, "metadata", Nested("{\"a\":", "}", 100)), 400);
}

void AddHugeBodies(Corpus& c) {
  const std::string g = "over --max-body";
  const std::string big(10 << 20, 'a');  // 10 MiB, over the default 8 MiB
  c.AddJson(g, "10 MB message", kChat, Body(kChat, {{"messages", UserMessages(big)}}), 413);
  c.AddJson(g, "10 MB prompt", kFim, Body(kFim, {{"prompt", big}}), 413);
  c.AddJson(g, "10 MB prompt", kLegacy, Body(kLegacy, {{"prompt", big}}), 413);
  c.AddJson(g, "10 MB input", kEmbeddings, Body(kEmbeddings, {{"input", big}}), 413);
}

void AddUnknownModels(Corpus& c) {
  const std::string g = "unknown model";
  for (const char* model : {"nope", "", "TINY", " tiny", "tiny ", "../tiny", "tiny/../tiny"})
    c.AddJson(g, std::string("model=\"") + model + "\"", kChat, Body(kChat, {{"model", model}}),
              404);
  c.AddPost(g, "model with NUL", kChat, WithLiteral(kChat, "model", R"("tiny\u0000")"), 404);
  c.AddPost(g, "model=null", kChat, WithLiteral(kChat, "model", "null"), 404);
  c.AddJson(g, "model missing", kChat, Body(kChat, {{"model", nullptr}}), 422);
  c.AddJson(g, "model=nope", kFim, Body(kFim, {{"model", "nope"}}), 404);
  c.AddJson(g, "model=nope", kLegacy, Body(kLegacy, {{"model", "nope"}}), 404);
  c.AddJson(g, "model=nope", kEmbeddings, Body(kEmbeddings, {{"model", "nope"}}), 404);
  c.AddJson(g, "model missing", kEmbeddings, Body(kEmbeddings, {{"model", nullptr}}), 422);
  for (const char* target :
       {"/v1/models/nope", "/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/models/..%2f..%2fetc%2fpasswd",
        "/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/v1/models/%ff%fe", "/v1/models/tiny/..",
        "/v1/models/%2Fetc%2Fpasswd"}) {
    c.Add(g, std::string("GET ") + target, Get(target), {404});
  }
  c.Add(g, "GET /v1/models/tiny%00", Get("/v1/models/tiny%00"), {400, 404});
  c.Add(g, "GET /v1/models/../../etc/passwd", Get("/v1/models/../../etc/passwd"), {400, 404});
  c.Add(g, "GET /v1/files/..%2f..%2fetc%2fpasswd", Get("/v1/files/..%2f..%2fetc%2fpasswd"), {404});
  c.Add(g, "GET /../../etc/passwd", Get("/../../etc/passwd"), {400, 404});
}

void AddMessages(Corpus& c) {
  const std::string g = "messages";
  for (const char* role : {"wizard", "", "USER", "function", "developer ", "assistant\n"})
    c.AddJson(g, std::string("role \"") + role + "\"", kChat,
              Body(kChat, {{"messages", {{{"role", role}, {"content", "x"}}}}}), 400);
  c.AddJson(g, "role missing", kChat, Body(kChat, {{"messages", {{{"content", "x"}}}}}), 400);
  c.AddJson(g, "empty messages", kChat, Body(kChat, {{"messages", Json::array()}}), 400);
  c.AddJson(g, "messages missing", kChat, Body(kChat, {{"messages", nullptr}}), 422);
  c.AddJson(g, "user content null", kChat,
            Body(kChat, {{"messages", {{{"role", "user"}, {"content", nullptr}}}}}), 400);
  c.AddJson(g, "user content missing", kChat, Body(kChat, {{"messages", {{{"role", "user"}}}}}),
            400);
  c.AddJson(
      g, "system content missing", kChat,
      Body(kChat, {{"messages", {{{"role", "system"}}, {{"role", "user"}, {"content", "x"}}}}}),
      400);
  // Order.
  c.AddJson(g, "a lone assistant message", kChat,
            Body(kChat, {{"messages", {{{"role", "assistant"}, {"content", "a"}}}}}), 400);
  c.AddJson(g, "tool first", kChat, Body(kChat, {{"messages", Json::array({ToolResult()})}}), 400);
  c.AddJson(g, "tool after user without a call", kChat,
            Body(kChat, {{"messages", {{{"role", "user"}, {"content", "x"}}, ToolResult()}}}), 400);
  c.AddJson(g, "system after assistant", kChat,
            Body(kChat, {{"messages",
                          {{{"role", "user"}, {"content", "x"}},
                           {{"role", "assistant"}, {"content", "a"}},
                           {{"role", "system"}, {"content", "s"}},
                           {{"role", "user"}, {"content", "y"}}}}}),
            400);
  c.AddJson(g, "prefix assistant not last", kChat,
            Body(kChat, {{"messages",
                          {{{"role", "user"}, {"content", "x"}},
                           {{"role", "assistant"}, {"content", "a"}, {"prefix", true}},
                           {{"role", "user"}, {"content", "y"}}}}}),
            400);
  c.AddJson(
      g, "assistant last without prefix", kChat,
      Body(kChat,
           {{"messages",
             {{{"role", "user"}, {"content", "x"}}, {{"role", "assistant"}, {"content", "a"}}}}}),
      400);
  c.AddJson(g, "continue_final_message after user", kChat,
            Body(kChat, {{"continue_final_message", true}}), 400);
  c.AddJson(g, "assistant without content or calls", kChat,
            Body(kChat, {{"messages",
                          {{{"role", "user"}, {"content", "x"}},
                           {{"role", "assistant"}, {"tool_calls", Json::array()}},
                           {{"role", "user"}, {"content", "y"}}}}}),
            400);
  c.AddJson(g, "prefix=\"yes\"", kChat,
            Body(kChat, {{"messages",
                          {{{"role", "user"}, {"content", "x"}},
                           {{"role", "assistant"}, {"content", "a"}, {"prefix", "yes"}}}}}),
            400);
  Json many = Json::array();
  for (int i = 0; i < 5000; ++i) many.push_back({{"role", "user"}, {"content", "x"}});
  c.AddJson(g, "5000 messages", kChat, Body(kChat, {{"messages", many}}), 400);
  // Content chunks.
  const std::vector<std::pair<std::string, Json>> chunks = {
      {"image_url chunk", {{"type", "image_url"}, {"image_url", "http://x/y.png"}}},
      {"input_audio chunk", {{"type", "input_audio"}, {"input_audio", "AAAA"}}},
      {"unknown chunk type", {{"type", "video"}}},
      {"chunk without type", {{"text", "x"}}},
      {"text chunk without text", {{"type", "text"}}},
      {"text chunk with a number", {{"type", "text"}, {"text", 5}}},
      {"chunk type number", {{"type", 5}, {"text", "x"}}},
      {"thinking chunk before v13", {{"type", "thinking"}, {"thinking", "hm"}}},
      {"chunk is a string", "x"},
  };
  for (const auto& [name, chunk] : chunks)
    c.AddJson(g, name, kChat,
              Body(kChat, {{"messages", {{{"role", "user"}, {"content", Json::array({chunk})}}}}}),
              400);
  Json parts = Json::array();
  for (int i = 0; i < 1025; ++i) parts.push_back({{"type", "text"}, {"text", "x"}});
  c.AddJson(g, "1025 content parts", kChat,
            Body(kChat, {{"messages", {{{"role", "user"}, {"content", parts}}}}}), 400);
}

void AddTools(Corpus& c) {
  const std::string g = "tools";
  // Tool results and calls in the history.
  c.AddJson(g, "tool message without tool_call_id", kChat,
            Body(kChat,
                 {{"messages", ToolConversation(Call(), ToolResult({{"tool_call_id", nullptr}}))}}),
            400);
  c.AddJson(
      g, "tool_call_id=5", kChat,
      Body(kChat, {{"messages", ToolConversation(Call(), ToolResult({{"tool_call_id", 5}}))}}),
      400);
  c.AddJson(g, "tool name=5", kChat,
            Body(kChat, {{"messages", ToolConversation(Call(), ToolResult({{"name", 5}}))}}), 400);
  c.AddJson(
      g, "tool content missing", kChat,
      Body(kChat, {{"messages", ToolConversation(Call(), ToolResult({{"content", nullptr}}))}}),
      400);
  c.AddJson(
      g, "tool call without name", kChat,
      Body(kChat, {{"messages", ToolConversation(Call({{"arguments", "{}"}}), ToolResult())}}),
      400);
  c.AddJson(
      g, "tool call arguments=5", kChat,
      Body(kChat,
           {{"messages", ToolConversation(Call({{"name", "f"}, {"arguments", 5}}), ToolResult())}}),
      400);
  c.AddJson(
      g, "tool call name with spaces", kChat,
      Body(kChat, {{"messages", ToolConversation(Call({{"name", "a b!"}, {"arguments", "{}"}}),
                                                 ToolResult())}}),
      400);
  Json typed = Call();
  typed["type"] = "retrieval";
  c.AddJson(g, "tool call type retrieval", kChat,
            Body(kChat, {{"messages", ToolConversation(typed, ToolResult())}}), 400);
  Json numbered = Call();
  numbered["id"] = 5;
  c.AddJson(g, "tool call id=5", kChat,
            Body(kChat, {{"messages", ToolConversation(numbered, ToolResult())}}), 400);
  c.AddJson(g, "tool_calls=object", kChat,
            Body(kChat, {{"messages",
                          {{{"role", "user"}, {"content", "x"}},
                           {{"role", "assistant"}, {"tool_calls", {{"id", "abcdefghi"}}}}}}}),
            400);
  // Tool definitions.
  for (const Json& parameters : Json::array({Json::array({1}), "object", 5, true}))
    c.AddJson(g, "parameters=" + parameters.dump(), kChat,
              Body(kChat, {{"tools", {Tool("f", parameters)}}}), 400);
  c.AddJson(g, "tool without function", kChat, Body(kChat, {{"tools", {{{"type", "function"}}}}}),
            400);
  c.AddJson(g, "tool type retrieval", kChat,
            Body(kChat, {{"tools", {{{"type", "retrieval"}, {"function", {{"name", "f"}}}}}}}),
            400);
  c.AddJson(g, "function name=5", kChat,
            Body(kChat, {{"tools", {{{"type", "function"}, {"function", {{"name", 5}}}}}}}), 400);
  for (const std::string& name : {std::string(""), std::string("a b"), std::string(65, 'f')})
    c.AddJson(
        g,
        "function name \"" + name.substr(0, 8) + "\" (" + std::to_string(name.size()) + " bytes)",
        kChat, Body(kChat, {{"tools", {Tool(name, ObjectSchema())}}}), 400);
  Json described = Tool("f", ObjectSchema());
  described["function"]["description"] = 5;
  c.AddJson(g, "description=5", kChat, Body(kChat, {{"tools", {described}}}), 400);
  c.AddJson(g, "duplicate names with tool_choice any", kChat,
            Body(kChat, {{"tools", {Tool("f", ObjectSchema()), Tool("f", ObjectSchema())}},
                         {"tool_choice", "any"}}),
            400);
  c.AddJson(g, "$ref cycle with tool_choice any", kChat,
            Body(kChat, {{"tools", {Tool("f", {{"$ref", "#"}})}}, {"tool_choice", "any"}}), 400);
  c.AddJson(
      g, "type banana with tool_choice required", kChat,
      Body(kChat, {{"tools", {Tool("f", {{"type", "banana"}})}}, {"tool_choice", "required"}}),
      400);
  Json tools = Json::array();
  // Names built with append: GCC 12 flags "literal" + std::string&& with a false -Wrestrict.
  for (int i = 0; i < 129; ++i) {
    tools.push_back(Tool(std::string("f").append(std::to_string(i)), ObjectSchema()));
  }
  c.AddJson(g, "129 tools", kChat, Body(kChat, {{"tools", tools}}), 400);
  Json big_enum = Json::array();
  for (int i = 0; i < 60000; ++i) big_enum.push_back(std::string("v").append(std::to_string(i)));
  c.AddJson(
      g, "a 500 KB schema", kChat,
      Body(kChat,
           {{"tools",
             {Tool("f", {{"type", "object"}, {"properties", {{"a", {{"enum", big_enum}}}}}})}},
            {"tool_choice", "any"}}),
      400);
  // tool_choice.
  const Json tools_f = Json::array({Tool("f", ObjectSchema())});
  c.AddJson(g, "tool_choice names an unknown function", kChat,
            Body(kChat, {{"tools", tools_f},
                         {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}),
            400);
  c.AddJson(g, "tool_choice sometimes", kChat,
            Body(kChat, {{"tools", tools_f}, {"tool_choice", "sometimes"}}), 400);
  c.AddJson(g, "tool_choice without function", kChat,
            Body(kChat, {{"tools", tools_f}, {"tool_choice", {{"type", "function"}}}}), 422);
  c.AddJson(g, "tool_choice function name=5", kChat,
            Body(kChat, {{"tools", tools_f},
                         {"tool_choice", {{"type", "function"}, {"function", {{"name", 5}}}}}}),
            422);
  c.AddJson(g, "tool_choice any without tools", kChat, Body(kChat, {{"tool_choice", "any"}}), 400);
  c.AddJson(g, "tool_choice required without tools", kChat,
            Body(kChat, {{"tool_choice", "required"}}), 400);
  c.AddJson(g, "tool_choice named without tools", kChat,
            Body(kChat, {{"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}}),
            400);
}

void AddResponseFormat(Corpus& c) {
  const std::string g = "response_format";
  auto schema = [](const Json& value) {
    return Json{{"type", "json_schema"}, {"json_schema", {{"name", "s"}, {"schema", value}}}};
  };
  c.AddJson(g, "type yaml", kChat, Body(kChat, {{"response_format", {{"type", "yaml"}}}}), 400);
  c.AddJson(g, "json_schema missing", kChat,
            Body(kChat, {{"response_format", {{"type", "json_schema"}}}}), 422);
  c.AddJson(g, "json_schema a string", kChat,
            Body(kChat, {{"response_format", {{"type", "json_schema"}, {"json_schema", "{}"}}}}),
            422);
  c.AddJson(g, "schema a string", kChat, Body(kChat, {{"response_format", schema("object")}}), 422);
  c.AddJson(g, "schema type banana", kChat,
            Body(kChat, {{"response_format", schema({{"type", "banana"}})}}), 400);
  c.AddJson(
      g, "schema pattern", kChat,
      Body(kChat, {{"response_format", schema({{"type", "string"}, {"pattern", "(a|a)*$"}})}}),
      400);
  c.AddJson(g, "schema $ref cycle", kChat,
            Body(kChat, {{"response_format", schema({{"$ref", "#"}})}}), 400);
  c.AddJson(
      g, "schema minItems 10^9", kChat,
      Body(kChat, {{"response_format", schema({{"type", "array"}, {"minItems", 1000000000}})}}),
      400);
  c.AddJson(g, "schema $ref to nowhere", kChat,
            Body(kChat, {{"response_format", schema({{"$ref", "#/$defs/missing"}})}}), 400);
}

void AddStopAndBias(Corpus& c) {
  const std::string g = "stop and logit_bias";
  c.AddJson(g, "17 stop strings", kChat,
            Body(kChat, {{"stop", Json(std::vector<std::string>(17, "a"))}}), 400);
  c.AddJson(g, "a 1025-byte stop string", kChat, Body(kChat, {{"stop", std::string(1025, 'a')}}),
            400);
  c.AddJson(g, "stop \"\"", kChat, Body(kChat, {{"stop", ""}}), 400);
  c.AddJson(g, "stop [\"\"]", kChat, Body(kChat, {{"stop", Json::array({""})}}), 400);
  c.AddJson(g, "stop [\"a\", \"\"]", kChat, Body(kChat, {{"stop", Json::array({"a", ""})}}), 400);
  c.AddJson(g, "stop [\"\"]", kFim, Body(kFim, {{"stop", Json::array({""})}}), 400);
  c.AddJson(g, "17 stop strings", kLegacy,
            Body(kLegacy, {{"stop", Json(std::vector<std::string>(17, "a"))}}), 400);
  for (const char* key :
       {"-1", "32768", "abc", " 5", "+5", "5.0", "", "0x10", "99999999999999999999"})
    c.AddJson(g, std::string("logit_bias key \"") + key + "\"", kChat,
              Body(kChat, {{"logit_bias", {{key, 1}}}}), 400);
  for (const Json& value : Json::array({"x", 101, -1e30, nullptr, true, Json::array({1})}))
    c.AddJson(g, "logit_bias value " + value.dump(), kChat,
              Body(kChat, {{"logit_bias", {{"5", value}}}}), 400);
  Json bias = Json::object();
  for (int i = 0; i < 1025; ++i) bias[std::to_string(i)] = 1;
  c.AddJson(g, "1025 logit_bias entries", kChat, Body(kChat, {{"logit_bias", bias}}), 400);
}

void AddEmptyInputs(Corpus& c) {
  const std::string g = "empty input";
  c.AddJson(g, "prompt \"\"", kFim, Body(kFim, {{"prompt", ""}}), 400);
  c.AddJson(g, "prompt \"\" suffix \"\"", kFim, Body(kFim, {{"prompt", ""}, {"suffix", ""}}), 400);
  c.AddJson(g, "prompt missing", kFim, Body(kFim, {{"prompt", nullptr}}), 422);
  c.AddJson(g, "prompt missing", kLegacy, Body(kLegacy, {{"prompt", nullptr}}), 422);
  c.AddJson(g, "prompt []", kLegacy, Body(kLegacy, {{"prompt", Json::array()}}), 400);
  c.AddJson(g, "input missing", kEmbeddings, Body(kEmbeddings, {{"input", nullptr}}), 422);
  c.AddJson(g, "input []", kEmbeddings, Body(kEmbeddings, {{"input", Json::array()}}), 400);
  c.AddJson(g, "input \"\"", kEmbeddings, Body(kEmbeddings, {{"input", ""}}), 400);
  c.AddJson(g, "input [\"a\", \"\"]", kEmbeddings,
            Body(kEmbeddings, {{"input", Json::array({"a", ""})}}), 400);
  c.AddJson(g, "input [[]]", kEmbeddings,
            Body(kEmbeddings, {{"input", Json::array({Json::array()})}}), 400);
}

void AddBadJson(Corpus& c) {
  const std::string g = "not JSON";
  const std::vector<std::pair<std::string, std::string>> texts = {
      {"truncated string", R"({"model":"ti)"},
      {"lone brace", "{"},
      {"truncated list", R"({"model":"tiny","messages":[)"},
      {"missing final brace", R"({"model":"tiny","messages":[{"role":"user","content":"x"}])"},
      {"trailing comma", R"({"model":"tiny",})"},
      {"single quotes", R"({'model':'tiny'})"},
      {"trailing garbage", R"({"model":"tiny"} x)"},
      {"two objects", R"({"model":"tiny"}{"model":"tiny"})"},
      {"empty body", ""},
      {"whitespace only", " \r\n\t "},
      {"nul", "nul"},
      {"comment", R"({"model":"tiny"/* c */})"},
      {"leading zero", R"({"model":"tiny","n":01})"},
      {"bare decimal point", R"({"model":"tiny","top_p":.5})"},
      {"unquoted key", R"({model:"tiny"})"},
      {"NUL byte", Bytes("{\"model\":\"tiny\"\0}")},
      {"UTF-16", Bytes("{\0\"\0m\0\"\0:\0\"\0t\0\"\0}\0")},
  };
  for (const auto& [name, text] : texts) c.AddPost(g, name, kChat, text, 400);
  // A byte-order mark is skipped (RFC 8259 allows it); what follows still lacks messages.
  c.AddPost(g, "UTF-8 BOM before an incomplete body", kChat, "\xef\xbb\xbf{\"model\":\"tiny\"}",
            422);
  for (const char* path : {kFim, kLegacy, kEmbeddings}) {
    c.AddPost(g, "truncated", path, R"({"model":"tiny","input":"a)", 400);
    c.AddPost(g, "empty body", path, "", 400);
  }
  const std::string n = "not an object";
  for (const char* text : {"[]", "\"tiny\"", "5", "null", "true", R"([{"model":"tiny"}])"})
    c.AddPost(n, text, kChat, text, 422);
  for (const char* path : {kFim, kLegacy, kEmbeddings}) c.AddPost(n, "[]", path, "[]", 422);
}

void AddContentTypes(Corpus& c) {
  const std::string g = "content type";
  const std::string body = Body(kChat).dump();
  for (const char* type :
       {"text/plain", "", "application/x-www-form-urlencoded", "application/xml", "text/json"}) {
    c.Add(g, std::string("Content-Type \"") + type + "\"", Post(kChat, body, type), {415});
  }
  c.Add(g, "Content-Type multipart", Post(kChat, body, "multipart/form-data; boundary=x"),
        {400, 415});
  c.Add(g, "text/plain embeddings", Post(kEmbeddings, Body(kEmbeddings).dump(), "text/plain"),
        {415});
  c.Add(g, "text/plain FIM", Post(kFim, Body(kFim).dump(), "text/plain"), {415});
}

void AddRoutesAndMethods(Corpus& c) {
  const std::string g = "routes and methods";
  const std::string body = Body(kChat).dump();
  for (const char* target : {kChat, kFim, kLegacy, kEmbeddings})
    c.Add(g, std::string("GET ") + target, Get(target), {404, 405});
  c.Add(g, "PUT chat", Request("PUT", kChat, body), {404, 405});
  c.Add(g, "DELETE model", Request("DELETE", "/v1/models/tiny", ""), {404, 405});
  c.Add(g, "PATCH model", Request("PATCH", "/v1/models/tiny", "{}"), {404, 405});
  c.Add(g, "POST models", Post("/v1/models", "{}"), {404, 405});
  c.Add(g, "POST health", Post("/health", "{}"), {404, 405});
  c.Add(g, "POST metrics", Post("/metrics", "{}"), {404, 405});
  c.Add(g, "POST /", Post("/", "{}"), {404, 405});
  for (const char* target : {"/v2/chat/completions", "/v1/chat/completion", "/v1/chat/completions/",
                             "/v1/CHAT/COMPLETIONS", "/v1", "/v1/", "/v1/moderations", "/v1/files",
                             "/api/generate", "/v1/models/", "//v1/chat/completions"}) {
    c.Add(g, std::string("POST ") + target, Post(target, body), {404, 405});
  }
}

// Malformed request lines and headers.
void AddHeaderAbuse(Corpus& c) {
  const std::string g = "header abuse";
  c.Add(g, "a 64 KiB header value",
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(64 << 10, 'a') +
            "\r\n\r\n",
        {400, 431});
  c.Add(g, "a 1 MB request target", Get("/v1/models/" + std::string(1 << 20, 'a')), {414});
  c.Add(g, "garbage request line", "HELLO\r\n\r\n", {400});
  c.Add(g, "NUL in the path", Bytes("GET /v1/mo\0dels HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), {400});
  c.Add(
      g, "bad chunk size",
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
      {400});
  c.Add(
      g, "Content-Length abc",
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: abc\r\n\r\n{}",
      {400});
  c.Add(g, "unknown method", "BREW /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        {400, 404, 405});
  // 505 is the status for an unsupported HTTP version: the one 5xx a client mistake may get.
  c.Add(g, "HTTP/2.0 request line", "GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", {400, 505});
}

// Request smuggling and size limits of rule H2.
void AddFramingLimits(Corpus& c) {
  const std::string g = "framing limits";
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  const std::string body = Body(kChat).dump();
  const std::string length = std::to_string(body.size());
  c.Add(g, "Content-Length and Transfer-Encoding",
        head + "Content-Length: " + length + "\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
        {400});
  c.Add(g, "two different Content-Lengths",
        head + "Content-Length: " + length + "\r\nContent-Length: 3\r\n\r\n" + body, {400});
  c.Add(g, "negative Content-Length", head + "Content-Length: -1\r\n\r\n" + body, {400});
  c.Add(g, "Content-Length 10^12", head + "Content-Length: 1000000000000\r\n\r\n" + body, {413});
  std::string many = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 10000; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  c.Add(g, "10000 header fields", many + "\r\n", {400, 431});
  c.Add(g, "POST without a length", head + "\r\n", {400, 411});
}

Corpus ApiCorpus() {
  Corpus c;
  AddWrongTypes(c);
  AddOutOfRange(c);
  AddIntegerOverflow(c);
  AddInvalidUtf8(c);
  AddDeepNesting(c);
  AddHugeBodies(c);
  AddUnknownModels(c);
  AddMessages(c);
  AddTools(c);
  AddResponseFormat(c);
  AddStopAndBias(c);
  AddEmptyInputs(c);
  AddBadJson(c);
  AddContentTypes(c);
  AddRoutesAndMethods(c);
  AddHeaderAbuse(c);
  AddFramingLimits(c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Checks.

// The body every refusal must carry: JSON with a readable error.message (both SDKs read one of
// `message` and `error.message`), and for 422 FastAPI's `detail` list.
std::string ErrorBodyProblem(const RawResponse& r) {
  if (r.Header("content-type").find("application/json") == std::string::npos)
    return "Content-Type is \"" + r.Header("content-type") + "\", not application/json";
  if (r.body.size() > (64u << 10))
    return "the error body is " + std::to_string(r.body.size()) + " bytes (echoing the input?)";
  Json body;
  try {
    body = Json::parse(r.body);
  } catch (const Json::exception& e) {
    return std::string("the body is not JSON: ") + e.what();
  }
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object())
    return "no error object";
  const Json& message = body["error"]["message"];
  if (!message.is_string() || message.get<std::string>().size() < 8)
    return "error.message is not a readable string";
  if (!body["message"].is_string()) return "no top-level message";
  if (body["object"] != "error") return "object is not \"error\"";
  if (r.status == 422) {
    const Json& detail = body["detail"];
    if (!detail.is_array() || detail.empty()) return "a 422 without a detail list";
    for (const Json& entry : detail) {
      if (!entry["loc"].is_array() || !entry["msg"].is_string() || !entry["type"].is_string())
        return "a detail entry without loc/msg/type";
    }
  }
  return "";
}

class MalformedRequestsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (SharedDir().empty()) return;
    dir_ = new TempDir();
    const std::string tokenizer =
        SharedDir() + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
    const std::string command = std::string(BORA_BINARY) +
                                " make-model --preset tiny --seed 5 --tokenizer " + tokenizer +
                                " --out " + dir_->path() + "/tiny > /dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
    server_ = new ServerProcess(
        {"--model", "tiny=" + dir_->path() + "/tiny", "--ctx", "256", "--parallel", "4"},
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

  // Sends every case once; each must be answered with its status and a readable error body,
  // within 5 s. Returns the statuses seen, for the summary.
  static std::map<int, int> RunCorpus(const Corpus& corpus, int timeout_seconds = 20) {
    std::map<int, int> statuses;
    for (const Case& c : corpus.cases()) {
      const RawResponse r = Exchange(server_->port(), c.request, timeout_seconds);
      const std::string label = "[" + c.group + "] " + c.name;
      if (!r.answered) {
        ADD_FAILURE() << label << ": " << r.problem;
        ++statuses[0];
        continue;
      }
      ++statuses[r.status];
      EXPECT_TRUE(c.statuses.count(r.status))
          << label << ": got " << r.status << " " << r.body.substr(0, 300);
      EXPECT_TRUE((r.status >= 400 && r.status < 500) || r.status == 505)
          << label << ": got " << r.status;
      const std::string problem = ErrorBodyProblem(r);
      EXPECT_EQ(problem, "") << label << ": " << r.body.substr(0, 300);
      EXPECT_LT(r.seconds, 5.0) << label << " took " << r.seconds << " s";
    }
    return statuses;
  }

  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* MalformedRequestsTest::dir_ = nullptr;
ServerProcess* MalformedRequestsTest::server_ = nullptr;

TEST(MalformedRequestCorpus, HasOver200DistinctCases) {
  const Corpus corpus = ApiCorpus();
  EXPECT_GE(corpus.cases().size(), 200u);
  std::set<std::string> names;
  std::set<std::string> requests;
  std::map<std::string, int> groups;
  for (const Case& c : corpus.cases()) {
    ++groups[c.group];
    EXPECT_TRUE(names.insert(c.group + "/" + c.name).second) << "duplicate name " << c.name;
    EXPECT_TRUE(requests.insert(c.request).second) << "duplicate request " << c.name;
    EXPECT_FALSE(c.statuses.empty()) << c.name;
  }
  std::string summary;
  for (const auto& [group, count] : groups) summary += " [" + group + "] " + std::to_string(count);
  std::printf("corpus: %zu cases:%s\n", corpus.cases().size(), summary.c_str());
}

TEST_F(MalformedRequestsTest, EveryBadRequestGetsA4xxWithAReadableErrorAndNothingLeaks) {
  const Corpus corpus = ApiCorpus();
  const std::map<int, int> first = RunCorpus(corpus);  // warm-up: arenas, thread stacks
  ASSERT_TRUE(server_->alive()) << "the server died during the corpus";
  const int64_t rss_warm = server_->RssKib();
  const int64_t threads_warm = server_->Status("Threads");
  const std::map<int, int> second = RunCorpus(corpus);
  ASSERT_TRUE(server_->alive()) << "the server died during the corpus";
  const int64_t rss_end = server_->RssKib();
  const int64_t threads_end = server_->Status("Threads");
  EXPECT_EQ(first, second) << "the same corpus got different statuses the second time";
  std::string summary;
  for (const auto& [status, count] : second)
    summary += " " + std::to_string(status) + "x" + std::to_string(count);
  std::printf(
      "corpus: %zu cases, statuses:%s; RSS %lld KiB after pass 1, %lld KiB after pass 2; "
      "threads %lld, %lld\n",
      corpus.cases().size(), summary.c_str(), static_cast<long long>(rss_warm),
      static_cast<long long>(rss_end), static_cast<long long>(threads_warm),
      static_cast<long long>(threads_end));
  ASSERT_GT(rss_warm, 0);
  const int64_t allowed = std::max<int64_t>(8 << 10, rss_warm / 20);  // 8 MiB or 5 %
  if (kAddressSanitizer) {
    // ASan keeps freed memory in its quarantine (256 MiB by default): RSS says nothing there,
    // and leaks are LeakSanitizer's job in that build.
    std::printf("RSS growth not checked under AddressSanitizer\n");
  } else {
    EXPECT_LT(rss_end - rss_warm, allowed)
        << "RSS grew from " << rss_warm << " to " << rss_end << " KiB over one pass of the corpus";
  }

  // And a normal request still works, streamed and not.
  const RawResponse ok = Exchange(server_->port(), Post(kChat, Body(kChat).dump()));
  ASSERT_TRUE(ok.answered) << ok.problem;
  EXPECT_EQ(ok.status, 200) << ok.body;
  const Json answer = Json::parse(ok.body);
  EXPECT_EQ(answer["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(answer["usage"]["completion_tokens"], 2);
  const RawResponse stream =
      Exchange(server_->port(), Post(kChat, Body(kChat, {{"stream", true}}).dump()));
  ASSERT_TRUE(stream.answered) << stream.problem;
  EXPECT_EQ(stream.status, 200);
  EXPECT_NE(stream.body.find("data: [DONE]\n\n"), std::string::npos) << stream.body;
}

}  // namespace
}  // namespace bora::testing
