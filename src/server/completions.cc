// Chat, FIM and legacy completions: prompt building, submission, response and SSE assembly.
#include "server/completions.h"

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <regex>

#include "base/error.h"
#include "runtime/constraint/json_schema.h"
#include "runtime/constraint/tool_call_grammar.h"
#include "server/api_error.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/output_parser.h"
#include "tokenizer/utf8.h"

namespace bora::server {
namespace {

using Clock = std::chrono::steady_clock;

// How often a waiting request checks that its client is still connected (rule H5).
constexpr std::chrono::milliseconds kPeerPollInterval{200};

// Mistral's guardrail system prompt, prepended when a request sets safe_prompt.
constexpr const char* kSafePrompt =
    "Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid "
    "harmful, "
    "unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.";

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::mt19937_64 random((static_cast<uint64_t>(device()) << 32) ^ device());
  std::string out;
  for (size_t i = 0; i < digits; ++i) out += kHex[random() % 16];
  return out;
}

bool IsMistralToolCallId(const std::string& id) {
  if (id.size() != 9) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A foreign id ("call_abc...", a UUID) as a 9-character [A-Za-z0-9] id, the same for the same
// input, so an assistant call and its tool result still pair up.
std::string MistralToolCallId(const std::string& foreign) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : foreign) hash = (hash ^ c) * 1099511628211ull;
  std::string id;
  for (int i = 0; i < 9; ++i) {
    id += kAlphabet[hash % 62];
    hash = hash / 62 + (hash % 62) * 0x9e3779b97f4a7c15ull;
  }
  return id;
}

void RemapForeignToolCallIds(tokenizer::ChatRequest& chat) {
  for (tokenizer::Message& message : chat.messages) {
    if (message.tool_calls) {
      for (tokenizer::ToolCall& call : *message.tool_calls) {
        if (call.id != "null" && !IsMistralToolCallId(call.id))
          call.id = MistralToolCallId(call.id);
      }
    }
    if (message.tool_call_id && !IsMistralToolCallId(*message.tool_call_id)) {
      message.tool_call_id = MistralToolCallId(*message.tool_call_id);
    }
  }
}

// Request size caps of reliability rule A5: checked on the JSON before anything is parsed into
// messages or compiled into a grammar, so a huge list costs one pass over it.
constexpr size_t kMaxMessages = 4096;
constexpr size_t kMaxContentParts = 1024;
constexpr size_t kMaxTools = 128;
constexpr size_t kMaxSchemaBytes = 256 << 10;

void RequireField(const Json& body, const std::string& key) {
  if (!body.contains(key)) throw ApiError::Validation(key, "Field required", "missing");
}

size_t JsonTextSize(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace).size();
}

void CheckChatSizes(const Json& body) {
  const Json& messages = body["messages"];
  if (messages.size() > kMaxMessages) {
    throw ApiError::BadField("messages", "at most " + std::to_string(kMaxMessages) +
                                             " messages per request, got " +
                                             std::to_string(messages.size()));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& message = messages[i];
    if (!message.is_object()) continue;  // the chat parser names the problem
    const auto content = message.find("content");
    if (content != message.end() && content->is_array() && content->size() > kMaxContentParts) {
      throw ApiError::BadField("messages", "messages[" + std::to_string(i) + "].content has " +
                                               std::to_string(content->size()) +
                                               " parts; at most " +
                                               std::to_string(kMaxContentParts) + " are allowed");
    }
  }
  if (const auto tools = body.find("tools"); tools != body.end() && tools->is_array()) {
    if (tools->size() > kMaxTools) {
      throw ApiError::BadField("tools", "at most " + std::to_string(kMaxTools) +
                                            " tools per request, got " +
                                            std::to_string(tools->size()));
    }
    if (const size_t bytes = JsonTextSize(*tools); bytes > kMaxSchemaBytes) {
      throw ApiError::BadField("tools", "the tool definitions take " + std::to_string(bytes) +
                                            " bytes of JSON; at most " +
                                            std::to_string(kMaxSchemaBytes) + " are allowed");
    }
  }
  if (const auto format = body.find("response_format");
      format != body.end() && format->is_object() && format->contains("json_schema")) {
    if (const size_t bytes = JsonTextSize((*format)["json_schema"]); bytes > kMaxSchemaBytes) {
      throw ApiError::BadField("response_format",
                               "response_format.json_schema takes " + std::to_string(bytes) +
                                   " bytes of JSON; at most " + std::to_string(kMaxSchemaBytes) +
                                   " are allowed");
    }
  }
}

// Fills the parts every kind shares: the generation fields, max_tokens against the context.
void FinishPreparing(PreparedCompletion& p, const Json& body, ServedModel& model,
                     std::vector<int32_t> prompt) {
  p.model = &model;
  p.created = UnixSeconds();
  const int64_t prompt_tokens = static_cast<int64_t>(prompt.size());
  p.request.prompt = std::move(prompt);
  p.request.sampling = p.fields.sampling;
  p.request.max_tokens = ResolveMaxTokens(p.fields, prompt_tokens, model.context_length());
  p.request.stop = p.fields.stop;
  p.request.n = p.fields.n;
  p.request.grammar = p.grammar;
  p.request.lora = model.adapter();
  (void)body;
}

GenerationFields ReadFields(const Json& body, ServedModel& model) {
  return ParseGenerationFields(
      body, model.default_temperature(),
      std::min(runtime::kMaxChoices, model.engine().options().max_sequences),
      model.model().params().vocab_size);
}

}  // namespace

namespace {

// Text bytes of a chat request's message contents (strings and text parts).
int64_t MessageTextBytes(const Json& messages) {
  int64_t bytes = 0;
  for (const Json& message : messages) {
    if (!message.is_object()) continue;
    const auto content = message.find("content");
    if (content == message.end()) continue;
    if (content->is_string()) {
      bytes += static_cast<int64_t>(content->get_ref<const std::string&>().size());
    } else if (content->is_array()) {
      for (const Json& part : *content) {
        if (!part.is_object()) continue;
        const auto text = part.find("text");
        if (text != part.end() && text->is_string()) {
          bytes += static_cast<int64_t>(text->get_ref<const std::string&>().size());
        }
      }
    }
  }
  return bytes;
}

// Refuses a prompt whose text alone needs more tokens than the context holds, before spending
// seconds tokenizing megabytes of it: every token stands for at most max_token_bytes() bytes.
void RejectSurelyTooLong(int64_t text_bytes, ServedModel& model, const char* param) {
  const int64_t at_least = text_bytes / model.max_token_bytes();
  if (at_least < model.context_length()) return;
  throw ApiError(400, "invalid_request_error",
                 "context length exceeded: the prompt's " + std::to_string(text_bytes) +
                     " bytes of text make at least " + std::to_string(at_least) +
                     " tokens and the model's context is " +
                     std::to_string(model.context_length()) +
                     " (nothing is truncated; shorten the prompt)",
                 "context_length_exceeded", param);
}

}  // namespace

PreparedCompletion PrepareChat(const Json& body, ServedModel& model) {
  const ReleaseMemoryAroundLargeRequest release(body);
  RequireField(body, "messages");
  if (!body["messages"].is_array())
    throw ApiError::Validation("messages", "messages must be a list", "list_type");
  if (body["messages"].empty()) throw ApiError::BadField("messages", "messages must not be empty");
  CheckChatSizes(body);
  RejectSurelyTooLong(MessageTextBytes(body["messages"]), model, "messages");
  PreparedCompletion p;
  p.kind = CompletionKind::kChat;
  p.id = "chatcmpl-" + RandomHex(24);
  p.fields = ReadFields(body, model);

  tokenizer::ChatRequest chat =
      tokenizer::ParseChatRequest(body, tokenizer::ValidationMode::kServing, model.image_limits());
  for (size_t i = 0; i < chat.messages.size(); ++i) {
    if (chat.messages[i].content.has_images() && !model.supports_images()) {
      throw ApiError::BadField("messages", "model " + model.id() +
                                               " does not read images (no vision encoder); send text only");
    }
  }
  RemapForeignToolCallIds(chat);
  if (BoolField(body, "safe_prompt").value_or(false)) {
    tokenizer::Message system;
    system.role = tokenizer::Role::kSystem;
    system.content = tokenizer::Content::Text(kSafePrompt);
    chat.messages.insert(chat.messages.begin(), system);
  }
  // tool_choice: "auto" (default), "none", "any" == "required", or a named function.
  std::string tool_choice = "auto";
  if (const auto it = body.find("tool_choice"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      tool_choice = it->get<std::string>();
      if (tool_choice == "required") tool_choice = "any";
      if (tool_choice != "auto" && tool_choice != "none" && tool_choice != "any") {
        throw ApiError::BadField("tool_choice",
                                 "tool_choice must be auto, none, any, required or a function");
      }
    } else if (it->is_object() && it->contains("function") && (*it)["function"].is_object() &&
               (*it)["function"].contains("name") && (*it)["function"]["name"].is_string()) {
      tool_choice = "function:" + (*it)["function"]["name"].get<std::string>();
    } else {
      throw ApiError::Validation(
          "tool_choice", "tool_choice must be a string or {type: function, function: {name}}");
    }
  }
  const bool parallel_calls = BoolField(body, "parallel_tool_calls").value_or(true);
  const bool has_tools = chat.tools && !chat.tools->empty();
  if (tool_choice == "none") chat.tools.reset();
  if ((tool_choice == "any" || tool_choice.rfind("function:", 0) == 0) && !has_tools) {
    throw ApiError::BadField("tool_choice", "tool_choice " + tool_choice + " needs tools");
  }
  if (tool_choice.rfind("function:", 0) == 0) {
    const std::string name = tool_choice.substr(9);
    bool found = false;
    for (const auto& tool : *chat.tools) found = found || tool.name == name;
    if (!found)
      throw ApiError::BadField("tool_choice",
                               "tool_choice names " + name + ", which is not in tools");
  }
  if (chat.tools && !model.supports_tools()) {
    throw ApiError::BadField(
        "tools", "model " + model.id() + " has no tool-calling tokens in its tokenizer");
  }
  p.parse_tools = chat.tools.has_value();

  // Constrained decoding: tool_choice any/required/named forces well-formed calls; otherwise
  // response_format json_object / json_schema forces valid JSON.
  try {
    if (tool_choice == "any" || tool_choice.rfind("function:", 0) == 0) {
      std::vector<runtime::constraint::ToolSpec> specs;
      for (const tokenizer::ToolDefinition& tool : *chat.tools)
        specs.push_back({tool.name, tool.parameters});
      runtime::constraint::ToolCallOptions options;
      if (tool_choice != "any") options.named_tool = tool_choice.substr(9);
      options.parallel_calls = parallel_calls;
      p.grammar = runtime::constraint::CompileToolCallGrammar(model.tokenizer(), model.version(),
                                                              specs, options);
    } else if (const auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
      if (!it->is_object())
        throw ApiError::Validation("response_format", "response_format must be an object");
      const std::string type = StringField(*it, "type", "response_format.type").value_or("text");
      if (type == "json_object") {
        p.grammar = runtime::constraint::JsonObjectGrammar();
      } else if (type == "json_schema") {
        const auto schema = it->find("json_schema");
        if (schema == it->end() || !schema->is_object() || !schema->contains("schema") ||
            !(*schema)["schema"].is_object()) {
          throw ApiError::Validation(
              "response_format",
              "response_format json_schema needs json_schema.schema (an object)");
        }
        p.grammar = runtime::constraint::CompileJsonSchema((*schema)["schema"]);
      } else if (type != "text") {
        throw ApiError::BadField("response_format",
                                 "response_format type must be text, json_object or json_schema");
      }
    }
  } catch (const InvalidArgument& e) {
    throw ApiError::BadField(
        tool_choice == "auto" || tool_choice == "none" ? "response_format" : "tools", e.what());
  }

  tokenizer::InstructEncoder encoder(model.tokenizer(), model.version());
  tokenizer::Tokenized tokens = encoder.EncodeChat(chat, tokenizer::ValidationMode::kServing);
  FinishPreparing(p, body, model, std::move(tokens.ids));
  p.request.images = std::move(tokens.images);
  return p;
}

PreparedCompletion PrepareFim(const Json& body, ServedModel& model) {
  const ReleaseMemoryAroundLargeRequest release(body);
  RequireField(body, "prompt");
  if (!model.supports_fim()) {
    throw ApiError::BadField("model",
                             "model " + model.id() + " does not support fill-in-the-middle");
  }
  PreparedCompletion p;
  p.kind = CompletionKind::kFim;
  p.id = "cmpl-" + RandomHex(24);
  p.fields = ReadFields(body, model);
  tokenizer::FimRequest fim;
  const std::optional<std::string> prompt = StringField(body, "prompt");
  if (!prompt)
    throw ApiError::Validation("prompt", "prompt must be a string, not null", "string_type");
  fim.prompt = *prompt;
  fim.suffix = StringField(body, "suffix");
  RejectSurelyTooLong(static_cast<int64_t>(fim.prompt.size() + fim.suffix.value_or("").size()),
                      model, "prompt");
  if (fim.prompt.empty() && fim.suffix.value_or("").empty()) {
    throw ApiError::BadField("prompt",
                             "prompt and suffix are both empty: there is nothing to fill in");
  }
  tokenizer::InstructEncoder encoder(model.tokenizer(), model.version());
  FinishPreparing(p, body, model, encoder.EncodeFim(fim).ids);
  return p;
}

PreparedCompletion PrepareLegacyCompletion(const Json& body, ServedModel& model) {
  const ReleaseMemoryAroundLargeRequest release(body);
  RequireField(body, "prompt");
  PreparedCompletion p;
  p.kind = CompletionKind::kLegacy;
  p.id = "cmpl-" + RandomHex(24);
  p.fields = ReadFields(body, model);
  const Json& prompt = body["prompt"];
  if (!prompt.is_string()) {
    if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
      p.prompt_text = prompt[0].get<std::string>();
    } else {
      throw ApiError::BadField("prompt",
                               "prompt must be a string (lists of prompts are not supported)");
    }
  } else {
    p.prompt_text = prompt.get<std::string>();
  }
  RejectSurelyTooLong(static_cast<int64_t>(p.prompt_text.size()), model, "prompt");
  p.echo = BoolField(body, "echo").value_or(false);
  // best_of (OpenAI legacy) is not implemented beyond its trivial form: best_of <= n.
  if (auto best_of = IntField(body, "best_of", 1, runtime::kMaxChoices);
      best_of && *best_of > p.fields.n) {
    throw ApiError::BadField("best_of", "best_of " + std::to_string(*best_of) +
                                            " is not supported: only best_of <= n (" +
                                            std::to_string(p.fields.n) + ")");
  }
  std::vector<int32_t> ids;
  if (auto suffix = StringField(body, "suffix"); suffix && !suffix->empty()) {
    if (!model.supports_fim())
      throw ApiError::BadField("suffix", "model " + model.id() + " does not support suffix");
    tokenizer::FimRequest fim{p.prompt_text, *suffix};
    ids = tokenizer::InstructEncoder(model.tokenizer(), model.version()).EncodeFim(fim).ids;
  } else {
    ids = model.tokenizer().Encode(p.prompt_text);
    ids.insert(ids.begin(), model.tokenizer().bos_id());
  }
  FinishPreparing(p, body, model, std::move(ids));
  return p;
}

// ---------------------------------------------------------------------------------------------
// Running a request: events per choice, shaped into either response format.

namespace {

const char* FinishName(runtime::FinishReason reason, bool tool_calls) {
  switch (reason) {
    case runtime::FinishReason::kStop:
      return tool_calls ? "tool_calls" : "stop";
    case runtime::FinishReason::kLength:
    case runtime::FinishReason::kModelLength:
      return "length";
    case runtime::FinishReason::kCancelled:
    case runtime::FinishReason::kError:
      return "error";
  }
  return "error";
}

std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

struct ChoiceState {
  std::string text;            // content (before any [TOOL_CALLS])
  std::vector<int32_t> ids;    // every generated id
  bool in_tool_calls = false;  // [TOOL_CALLS] seen: the rest is parsed at the end
  bool done = false;
  runtime::FinishReason finish = runtime::FinishReason::kStop;
  std::string error;
  int64_t completion_tokens = 0;
  Json logprobs = Json::array();  // chat: content entries; legacy: built at the end
  std::vector<runtime::SampledToken> sampled;
  std::vector<std::tuple<std::string, std::string, std::string>> tool_calls;  // id, name, arguments
};

Json TokenEntry(const tokenizer::Tokenizer& tokenizer, int32_t id, float logprob) {
  const std::string bytes = tokenizer.TokenBytes(id);
  Json raw = Json::array();
  for (unsigned char c : bytes) raw.push_back(static_cast<int>(c));
  return {{"token", tokenizer::ReplaceInvalidUtf8(bytes)}, {"logprob", logprob}, {"bytes", raw}};
}

Json ChatLogprobEntry(const tokenizer::Tokenizer& tokenizer, const runtime::SampledToken& token) {
  Json entry = TokenEntry(tokenizer, token.id, token.logprob);
  Json top = Json::array();
  for (int32_t i = 0; i < token.top_count; ++i)
    top.push_back(TokenEntry(tokenizer, token.top[i].id, token.top[i].logprob));
  entry["top_logprobs"] = top;
  return entry;
}

Json LegacyLogprobs(const tokenizer::Tokenizer& tokenizer,
                    const std::vector<runtime::SampledToken>& tokens) {
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  size_t offset = 0;
  for (const runtime::SampledToken& token : tokens) {
    const std::string text = tokenizer::ReplaceInvalidUtf8(tokenizer.TokenBytes(token.id));
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(token.logprob);
    Json top = Json::object();
    for (int32_t i = 0; i < token.top_count; ++i) {
      top[tokenizer::ReplaceInvalidUtf8(tokenizer.TokenBytes(token.top[i].id))] =
          token.top[i].logprob;
    }
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += text.size();
  }
  return out;
}

Json UsageJson(int64_t prompt, int64_t completion, int64_t cached) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"num_cached_tokens", cached},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

}  // namespace

struct CompletionStream::State {
  PreparedCompletion p;
  Metrics& metrics;
  std::shared_ptr<runtime::RequestStream> stream;
  std::vector<ChoiceState> choices;
  int32_t tool_calls_token = -1;
  int64_t cached_tokens = 0;
  Clock::time_point start;
  std::optional<Clock::time_point> last_token;
  bool finished = false;

  State(PreparedCompletion prepared, Metrics& m) : p(std::move(prepared)), metrics(m) {
    choices.resize(static_cast<size_t>(p.request.n));
    if (p.parse_tools) {
      if (auto id = p.model->tokenizer().FindSpecial("[TOOL_CALLS]")) tool_calls_token = *id;
    }
    start = Clock::now();
    try {
      stream = p.model->engine().Submit(p.request);
    } catch (const ResourceExhausted& e) {
      throw ApiError(429, "rate_limited", e.what(), "1300").WithRetryAfter(1);
    }
  }

  // Applies one event; returns the choice it changed. `delta_text` gets the content the
  // event adds (empty inside tool calls).
  ChoiceState& Apply(const runtime::Event& event, std::string& delta_text) {
    ChoiceState& c = choices.at(static_cast<size_t>(event.index));
    delta_text.clear();
    if (event.kind == runtime::Event::Kind::kToken) {
      const Clock::time_point now = Clock::now();
      if (!last_token) {
        metrics.ObserveTimeToFirstToken(std::chrono::duration<double>(now - start).count());
      } else {
        metrics.ObserveTimePerOutputToken(std::chrono::duration<double>(now - *last_token).count());
      }
      last_token = now;
      c.ids.push_back(event.token.id);
      if (p.request.sampling.logprobs) c.sampled.push_back(event.token);
      if (event.token.id == tool_calls_token) c.in_tool_calls = true;
      if (!c.in_tool_calls) {
        c.text += event.text;
        delta_text = event.text;
      }
      return c;
    }
    if (!c.in_tool_calls) {
      c.text += event.text;
      delta_text = event.text;
    }
    c.done = true;
    c.finish = event.finish;
    c.error = event.error;
    c.completion_tokens = event.usage.completion_tokens;
    if (event.index == 0) cached_tokens = event.usage.cached_tokens;
    if (c.in_tool_calls) ParseToolCalls(c);
    return c;
  }

  void ParseToolCalls(ChoiceState& c) {
    std::mt19937_64 random(std::random_device{}());
    const tokenizer::ParsedAssistant parsed =
        tokenizer::ParseAssistantOutput(p.model->tokenizer(), p.model->version(), c.ids,
                                        [&] { return tokenizer::RandomToolCallId(random); });
    c.text = parsed.content;
    for (const tokenizer::ToolCall& call : parsed.tool_calls)
      c.tool_calls.emplace_back(call.id, call.name, call.arguments);
    if (parsed.tool_call_error && c.tool_calls.empty())
      c.text += parsed.unparsed_tool_text;  // not a call: text
  }

  bool AllDone() const {
    for (const ChoiceState& c : choices) {
      if (!c.done) return false;
    }
    return true;
  }

  int64_t CompletionTokens() const {
    int64_t total = 0;
    for (const ChoiceState& c : choices) total += c.completion_tokens;
    return total;
  }

  Json Usage() const {
    return UsageJson(static_cast<int64_t>(p.request.prompt.size()), CompletionTokens(),
                     cached_tokens);
  }

  void Close() {
    if (finished) return;
    finished = true;
    metrics.AddTokens(static_cast<int64_t>(p.request.prompt.size()), CompletionTokens());
  }

  Json ToolCallsJson(const ChoiceState& c, bool with_index) const {
    Json calls = Json::array();
    for (size_t i = 0; i < c.tool_calls.size(); ++i) {
      const auto& [id, name, arguments] = c.tool_calls[i];
      Json call = {{"id", id},
                   {"type", "function"},
                   {"function", {{"name", name}, {"arguments", arguments}}}};
      if (with_index) call["index"] = i;
      calls.push_back(call);
    }
    return calls;
  }
};

Json RunCompletion(PreparedCompletion& prepared, Metrics& metrics,
                   const std::function<bool()>& peer_closed) {
  CompletionStream::State state(std::move(prepared), metrics);
  runtime::Event event;
  std::string delta;
  Clock::time_point next_check = Clock::now() + kPeerPollInterval;
  while (!state.AllDone()) {
    const bool got = state.stream->Next(event, kPeerPollInterval);
    if (got) state.Apply(event, delta);
    // Rule H5: a client that went away while its request waits or generates frees its slot and
    // KV blocks now, not when max_tokens are done (checked every interval, busy or idle).
    if (peer_closed && Clock::now() >= next_check) {
      next_check = Clock::now() + kPeerPollInterval;
      if (peer_closed()) {
        state.stream->Cancel();
        state.Close();
        throw ApiError(499, "invalid_request_error", "the client closed the connection");
      }
    }
  }
  state.Close();
  const PreparedCompletion& p = state.p;
  for (const ChoiceState& c : state.choices) {
    if (c.finish == runtime::FinishReason::kError)
      throw ApiError(500, "internal_error", "generation failed: " + c.error);
  }
  Json choices = Json::array();
  for (size_t i = 0; i < state.choices.size(); ++i) {
    const ChoiceState& c = state.choices[i];
    const bool calls = !c.tool_calls.empty();
    Json choice = {{"index", i}, {"finish_reason", FinishName(c.finish, calls)}};
    if (p.kind == CompletionKind::kLegacy) {
      choice["text"] = (p.echo ? p.prompt_text : "") + c.text;
      choice["logprobs"] =
          p.request.sampling.logprobs ? LegacyLogprobs(p.model->tokenizer(), c.sampled) : Json();
    } else {
      // Beside tool calls, whitespace before [TOOL_CALLS] is no content (and must not make the
      // message invalid when the client sends it back).
      const bool blank = c.text.find_first_not_of(" \t\r\n") == std::string::npos;
      Json message = {{"role", "assistant"}, {"content", calls && blank ? std::string() : c.text}, {"prefix", false}};
      message["tool_calls"] = calls ? state.ToolCallsJson(c, false) : Json();
      choice["message"] = message;
      if (p.request.sampling.logprobs) {
        Json content = Json::array();
        for (const runtime::SampledToken& token : c.sampled) {
          content.push_back(ChatLogprobEntry(p.model->tokenizer(), token));
        }
        choice["logprobs"] = {{"content", content}};
      } else {
        choice["logprobs"] = nullptr;
      }
    }
    choices.push_back(choice);
  }
  const char* object = p.kind == CompletionKind::kLegacy ? "text_completion" : "chat.completion";
  return {{"id", p.id},           {"object", object},
          {"created", p.created}, {"model", p.model->id()},
          {"choices", choices},   {"usage", state.Usage()}};
}

CompletionStream::CompletionStream(PreparedCompletion prepared, Metrics& metrics)
    : state_(std::make_unique<State>(std::move(prepared), metrics)) {}

CompletionStream::~CompletionStream() {
  if (state_->stream && !state_->AllDone()) state_->stream->Cancel();
  state_->Close();
}

void CompletionStream::Run(ChunkWriter& out) {
  State& s = *state_;
  const PreparedCompletion& p = s.p;
  const bool legacy = p.kind == CompletionKind::kLegacy;
  const char* object = legacy ? "text_completion" : "chat.completion.chunk";
  auto chunk = [&](Json choices) {
    return Json{{"id", p.id},
                {"object", object},
                {"created", p.created},
                {"model", p.model->id()},
                {"choices", std::move(choices)}};
  };
  auto send = [&](const Json& value) { return out.Write("data: " + Dump(value) + "\n\n"); };
  auto cancel = [&] { s.stream->Cancel(); };

  // The role opens every choice (OpenAI's stream helper requires it); legacy echo opens with the
  // prompt.
  for (size_t i = 0; i < s.choices.size(); ++i) {
    Json choice = {{"index", i}, {"finish_reason", nullptr}};
    if (legacy) {
      if (!p.echo) continue;
      choice["text"] = p.prompt_text;
      choice["logprobs"] = nullptr;
    } else {
      choice["delta"] = {{"role", "assistant"}, {"content", ""}};
    }
    if (!send(chunk(Json::array({choice})))) return cancel();
  }
  runtime::Event event;
  std::string delta;
  int finished = 0;
  const int total = static_cast<int>(s.choices.size());
  Clock::time_point last_write = Clock::now();
  Clock::time_point next_check = last_write + kPeerPollInterval;
  while (finished < total) {
    const bool got = s.stream->Next(event, kPeerPollInterval);
    // Rule H5: a client that went away is noticed within an interval even when nothing is
    // written (queued, a long prefill, held-back text) and even when the kernel still accepts
    // writes to its closed socket.
    if (Clock::now() >= next_check) {
      next_check = Clock::now() + kPeerPollInterval;
      if (out.PeerClosed()) return cancel();
    }
    if (!got) {
      // A comment line every 15 s keeps proxies and clients from timing out a slow prefill.
      if (Clock::now() - last_write >= std::chrono::seconds(15)) {
        if (!out.Write(": keep-alive\n\n")) return cancel();
        last_write = Clock::now();
      }
      continue;
    }
    last_write = Clock::now();
    ChoiceState& c = s.Apply(event, delta);
    const size_t index = static_cast<size_t>(event.index);
    const bool done = event.kind == runtime::Event::Kind::kDone;
    if (done && c.finish == runtime::FinishReason::kError) {
      Json error = {{"error",
                     {{"message", "generation failed: " + c.error},
                      {"type", "internal_error"},
                      {"param", nullptr},
                      {"code", nullptr}}}};
      send(error);
      s.Close();
      return cancel();
    }
    if (!done && delta.empty() && !p.request.sampling.logprobs)
      continue;  // held back or a tool-call token
    Json choice = {{"index", index}, {"finish_reason", nullptr}};
    if (legacy) {
      choice["text"] = delta;
      choice["logprobs"] = nullptr;
    } else {
      Json d = {{"content", delta}};
      if (done && !c.tool_calls.empty()) d["tool_calls"] = s.ToolCallsJson(c, true);
      choice["delta"] = d;
      if (p.request.sampling.logprobs && !done) {
        choice["logprobs"] = {
            {"content", Json::array({ChatLogprobEntry(p.model->tokenizer(), event.token)})}};
      }
    }
    Json message = chunk(Json::array({choice}));
    if (done) {
      message["choices"][0]["finish_reason"] = FinishName(c.finish, !c.tool_calls.empty());
      ++finished;
      if (finished == total)
        message["usage"] = s.Usage();  // Mistral-style: usage on the finish chunk
    }
    if (!send(message)) return cancel();
  }
  s.Close();
  if (p.fields.include_usage) {
    Json usage_chunk = chunk(Json::array());
    usage_chunk["usage"] = s.Usage();
    if (!send(usage_chunk)) return;
  }
  out.Write("data: [DONE]\n\n");
}

}  // namespace bora::server
