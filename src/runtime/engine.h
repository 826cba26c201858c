// The serving engine: one thread owns the model, the paged KV block pool and the scheduler;
// clients Submit requests from any thread and read their events from a RequestStream. Each
// step batches every running sequence (prefill chunks and decode tokens together) into one
// forward pass, and new requests join between steps (continuous batching).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/kv_block_pool.h"
#include "model/transformer.h"
#include "runtime/constraint/token_vocabulary.h"
#include "runtime/request.h"
#include "vision/vision_encoder.h"
#include "tokenizer/tokenizer.h"

namespace bora::runtime {

struct EngineOptions {
  int max_sequences = 8;         // running at once (the n choices of a request count n)
  int max_queued = 64;           // waiting beyond that: Submit refuses (HTTP 429 later)
  int64_t prefill_budget = 256;  // prompt tokens per step over all sequences: decode keeps flowing
  ops::KvDType kv_dtype = ops::KvDType::kBF16;  // --kv-dtype; f32 is exact
  // Pool size: kv_blocks when set, else kv_memory_bytes, else room for every sequence's full
  // context capped at half the memory left beside the weights. Never below one full context.
  int64_t kv_blocks = 0;
  uint64_t kv_memory_bytes = 0;
  int64_t block_size = model::KvBlockPool::kDefaultBlockSize;  // tokens per KV block
  bool prefix_cache = true;  // reuse the KV blocks of earlier prompts' shared prefixes
  // The model's vision tower (null: requests with images are refused). Must outlive the engine;
  // it runs on the engine thread with the model's compute context.
  const vision::VisionEncoder* vision = nullptr;
};

struct EngineCounters {
  int64_t steps = 0;
  int64_t prompt_tokens = 0;  // prompt tokens run through the model (prefix-cache hits excluded)
  int64_t prefix_hit_tokens = 0;  // prompt tokens whose KV came from the prefix cache
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;  // sequences whose KV was dropped to make room (recomputed later)
  int64_t images = 0;       // images run through the vision encoder
  int running = 0;
  int queued = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;    // referenced by running sequences
  int64_t kv_blocks_cached = 0;  // in the prefix cache (used or not)
  int64_t kv_block_size = 0;
  model::KvPoolCounters pool;  // prefix hits/misses in blocks, evictions, copies
};

class Engine {
 public:
  // `tokenizer` (may be null) gives the end-of-sequence id, text deltas and stop strings; both
  // must outlive the engine. Throws InvalidArgument for bad options and ResourceExhausted when
  // the KV pool (at least one full context) does not fit in memory beside the weights. Starts
  // the engine thread.
  Engine(model::Transformer& model, const tokenizer::Tokenizer* tokenizer,
         EngineOptions options = {});
  ~Engine();  // cancels what is left and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Throws InvalidArgument (empty prompt, ids outside the
  // vocabulary, a prompt that does not fit the context, bad sampling parameters, stop strings
  // without a tokenizer, n outside 1..max_sequences, a LoRA adapter that does not fit the
  // model) or ResourceExhausted (queue full).
  std::shared_ptr<RequestStream> Submit(GenerationRequest request);

  // Mean-pooled, L2-normalised final hidden states [dim] of each input (token ids as the caller
  // built them), run on the engine thread between steps; blocks until done. Throws
  // InvalidArgument (an empty input, ids outside the vocabulary, longer than the context) or
  // ResourceExhausted (the KV pool cannot hold an input right now, the engine is stopping).
  // With `lora`, the adapter's low-rank terms apply (it must match the model).
  std::vector<std::vector<float>> Embed(std::vector<std::vector<int32_t>> inputs,
                                        std::shared_ptr<const model::LoraAdapter> lora = nullptr);

  // Ends every running and queued request now with an error event carrying `reason`, and
  // refuses new ones with it (a group of ranks stopping on SIGTERM: mpirun kills its processes a
  // second later, so in-flight requests get an error instead of a cut connection).
  void AbortAll(const std::string& reason);

  EngineCounters counters();
  const EngineOptions& options() const { return options_; }

  // The tokenizer's vocabulary prepared for token masks (built on first use, then shared);
  // null without a tokenizer.
  std::shared_ptr<const constraint::TokenVocabulary> vocabulary();

 private:
  struct Sequence;
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<RequestStream> stream;
  };
  using Running = std::vector<std::unique_ptr<Sequence>>;

  void Loop();
  bool CanAdmit(const Pending& pending, const Running& running) const;
  void Admit(Pending pending, Running& running);
  void Step(Running& running);
  bool ReserveOrPreempt(Sequence& sequence, int64_t tokens, Running& running);
  void Preempt(Sequence& sequence);
  void SampleNext(Sequence& sequence);
  // Runs the request's images through the vision encoder: rows [sum of image tokens, dim].
  void EncodeImages(const GenerationRequest& request, std::vector<float>& rows);
  void Finish(Sequence& sequence, FinishReason reason, const std::string& error = "");
  void PublishCounters(const Running& running);
  // Ends every queued request (and embedding job) with `finish` (kError: carrying `reason`).
  void FailQueued(FinishReason finish, const std::string& reason);
  struct EmbedJob;
  void RunEmbedJob(EmbedJob& job);

  model::Transformer& model_;
  const tokenizer::Tokenizer* tokenizer_;
  EngineOptions options_;
  SamplerScratch scratch_;
  std::unique_ptr<model::KvBlockPool> pool_;  // touched by the engine thread only
  uint64_t next_arrival_ = 0;
  std::once_flag vocabulary_once_;
  std::shared_ptr<const constraint::TokenVocabulary> vocabulary_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  std::deque<std::shared_ptr<EmbedJob>> embed_jobs_;
  bool stopping_ = false;
  bool aborting_ = false;     // AbortAll asked; the engine thread ends what runs
  std::string abort_reason_;  // set by AbortAll: every later Submit is refused with it
  EngineCounters counters_;
  std::thread thread_;
};

}  // namespace bora::runtime
