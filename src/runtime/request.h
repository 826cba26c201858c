// A generation request as the engine takes it (token ids in, events out), the events it
// streams back, and the handle a client holds: a thread-safe event queue plus cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "model/lora_adapter.h"
#include "runtime/constraint/grammar.h"
#include "runtime/sampler.h"
#include "runtime/sampling_params.h"

namespace bora::runtime {

struct GenerationRequest {
  std::vector<int32_t> prompt;          // token ids, BOS included (the caller renders them)
  SamplingParams sampling;
  int64_t max_tokens = 256;             // generated tokens at most (the context may end sooner)
  std::vector<std::string> stop;        // stop strings (need the engine's tokenizer)
  std::vector<int32_t> stop_token_ids;  // besides the tokenizer's end-of-sequence id
  bool ignore_eos = false;              // benchmarks: keep going past end-of-sequence
  int n = 1;                            // independent choices sharing the prompt (1..kMaxChoices)
  // Constrained decoding (JSON mode, a JSON Schema, tool calls): every token must keep the
  // decoded output inside this grammar, and EOS comes only once it is complete. Needs the
  // engine's tokenizer.
  std::shared_ptr<const constraint::Grammar> grammar;
  // A LoRA adapter for this request (null: the base model). It must match the engine's model;
  // sequences with different adapters, or none, still share every batch. Its fingerprint keys
  // the prefix cache (0: this request neither reuses nor offers cached KV).
  std::shared_ptr<const model::LoraAdapter> lora;
  // The images of a multimodal prompt, in the order of their [IMG] blocks in `prompt` (what the
  // instruct encoder returns). The engine's vision encoder turns them into the rows of the
  // [IMG] tokens; the prefix cache keys those positions by image content.
  std::vector<std::shared_ptr<const image::PreprocessedImage>> images;
};

// Most choices one request may ask for (OpenAI's limit for `n`).
constexpr int kMaxChoices = 128;

enum class FinishReason { kStop, kLength, kModelLength, kCancelled, kError };
const char* FinishReasonName(FinishReason reason);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV came from the prefix cache
};

struct Event {
  enum class Kind { kToken, kDone };
  Kind kind = Kind::kToken;
  int index = 0;        // the choice (0..n-1) this event belongs to
  SampledToken token;   // kToken: the id and (when asked) log-probabilities
  std::string text;     // kToken: the text this token completes (may be empty); kDone: held-back rest
  FinishReason finish = FinishReason::kStop;  // kDone
  Usage usage;                                // kDone: this choice's completion tokens
  std::string error;                          // kDone with kError
};

// Shared by the engine (producer) and one client (consumer).
class RequestStream {
 public:
  // Next event; false when `timeout` passed first. Each of the request's n choices ends with
  // one kDone event; after n of them there are no more.
  bool Next(Event& event, std::chrono::milliseconds timeout = std::chrono::hours(24));
  // Asks the engine to stop this request; it then ends with FinishReason::kCancelled.
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Engine side.
  void Push(Event event);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace bora::runtime
