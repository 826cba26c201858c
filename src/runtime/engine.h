// The serving engine: one thread owns the model, the sequences' KV caches and the scheduler;
// clients Submit requests from any thread and read their events from a RequestStream. Each
// step batches every running sequence (prefill chunks and decode tokens together) into one
// forward pass, and new requests join between steps (continuous batching).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "model/transformer.h"
#include "runtime/request.h"
#include "tokenizer/tokenizer.h"

namespace bora::runtime {

struct EngineOptions {
  int max_sequences = 8;         // running at once (each holds a KV cache of the model's context)
  int max_queued = 64;           // waiting beyond that: Submit refuses (HTTP 429 later)
  int64_t prefill_budget = 256;  // prompt tokens per step over all sequences: decode keeps flowing
};

struct EngineCounters {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int running = 0;
  int queued = 0;
};

class Engine {
 public:
  // `tokenizer` (may be null) gives the end-of-sequence id, text deltas and stop strings; both
  // must outlive the engine. Throws ResourceExhausted when max_sequences KV caches of the
  // model's context do not fit in memory beside the weights. Starts the engine thread.
  Engine(model::Transformer& model, const tokenizer::Tokenizer* tokenizer, EngineOptions options = {});
  ~Engine();  // cancels what is left and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Throws InvalidArgument (empty prompt, ids outside the
  // vocabulary, a prompt that does not fit the context, bad sampling parameters, stop strings
  // without a tokenizer) or ResourceExhausted (queue full).
  std::shared_ptr<RequestStream> Submit(GenerationRequest request);

  EngineCounters counters();

 private:
  struct Sequence;
  void Loop();
  void Step(std::vector<std::unique_ptr<Sequence>>& running);
  void Finish(Sequence& sequence, FinishReason reason, const std::string& error = "");

  model::Transformer& model_;
  const tokenizer::Tokenizer* tokenizer_;
  EngineOptions options_;
  SamplerScratch scratch_;

  std::mutex mutex_;
  std::condition_variable wake_;
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<RequestStream> stream;
  };
  std::deque<Pending> queue_;
  bool stopping_ = false;
  EngineCounters counters_;
  std::thread thread_;
};

}  // namespace bora::runtime
