// Chat, FIM and legacy completions: a request body becomes prompt tokens and a
// GenerationRequest for the model's engine, and the engine's events become the JSON response or
// the SSE stream of either dialect (mistral-api.md §3-§6).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/request.h"
#include "server/generation_fields.h"
#include "server/json_body.h"
#include "server/metrics.h"
#include "server/served_model.h"

namespace bora::server {

enum class CompletionKind { kChat, kFim, kLegacy };

// Where a stream's bytes go; Write returns false once the client is gone.
class ChunkWriter {
 public:
  virtual ~ChunkWriter() = default;
  virtual bool Write(std::string_view data) = 0;
  // Whether the client is gone, checked without writing.
  virtual bool PeerClosed() { return false; }
};

struct PreparedCompletion {
  CompletionKind kind = CompletionKind::kChat;
  ServedModel* model = nullptr;
  GenerationFields fields;
  runtime::GenerationRequest request;
  bool parse_tools = false;  // chat with tools: split [TOOL_CALLS] output into tool_calls
  bool echo = false;         // legacy `echo`: the prompt text leads the completion
  std::shared_ptr<const runtime::constraint::Grammar> grammar;  // JSON / tool-call constraint
  std::string prompt_text;                                      // legacy echo
  std::string id;                                               // chatcmpl-... / cmpl-...
  int64_t created = 0;                                          // unix seconds
};

// Build the prompt and request from a body (model already resolved). Throw ApiError.
PreparedCompletion PrepareChat(const Json& body, ServedModel& model);
PreparedCompletion PrepareFim(const Json& body, ServedModel& model);
PreparedCompletion PrepareLegacyCompletion(const Json& body, ServedModel& model);

// Submits and waits for every choice; returns the response body. Throws ApiError (queue full,
// an engine error).
// `peer_closed` (may be null) is polled while the request waits in the queue or generates:
// once it says the client is gone, the request is cancelled (its KV blocks freed) and 499 is
// thrown.
Json RunCompletion(PreparedCompletion& prepared, Metrics& metrics,
                   const std::function<bool()>& peer_closed = nullptr);

// Submits (throwing ApiError before anything is written, e.g. queue full) and returns a
// function that streams the SSE events into `out` until [DONE] or until the client goes away
// (which cancels the request and frees its KV).
class CompletionStream {
 public:
  CompletionStream(PreparedCompletion prepared, Metrics& metrics);
  ~CompletionStream();  // cancels the engine request if it is still running
  void Run(ChunkWriter& out);

  struct State;  // shared with RunCompletion

 private:
  std::unique_ptr<State> state_;
};

}  // namespace bora::server
