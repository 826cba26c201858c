// The engine thread: admission, continuous batching of prefill chunks and decode steps over a
// paged KV pool (prefix reuse, copy-on-write choices, preemption), sampling, stop conditions and
// event delivery.
#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "base/error.h"
#include "base/memory_info.h"
#include "model/paged_kv_cache.h"
#include "runtime/stop_strings.h"
#include "tokenizer/streaming_detokenizer.h"

namespace bora::runtime {

// One choice of one request. `tokens` holds the prompt and then every generated id; the cache
// holds the KV of tokens[0 .. position), so tokens.size() - position ids are still to run:
// the prompt (or, after preemption, everything) as prefill chunks, then one per decode step.
struct Engine::Sequence {
  Sequence(std::shared_ptr<RequestStream> stream_in,
           std::shared_ptr<const GenerationRequest> request_in, int choice,
           model::Transformer& model, model::KvBlockPool& pool,
           const tokenizer::Tokenizer* tokenizer, uint64_t seed, uint64_t arrival_in,
           std::shared_ptr<const constraint::TokenVocabulary> vocabulary, int32_t image_token_in,
           std::shared_ptr<std::vector<float>> image_rows_in)
      : stream(std::move(stream_in)),
        image_token(image_token_in),
        image_rows(std::move(image_rows_in)),
        request(std::move(request_in)),
        index(choice),
        cache(pool, model.shard_params(), model.context_length()),
        logits(static_cast<size_t>(model.params().vocab_size)),
        sampler(request->sampling, model.params().vocab_size, request->prompt, seed,
                static_cast<uint64_t>(choice), model.compute().kernels(),
                request->grammar ? std::make_unique<constraint::Matcher>(request->grammar,
                                                                         std::move(vocabulary))
                                 : nullptr),
        stops(request->stop),
        arrival(arrival_in) {
    // Sized once: decode steps append without reallocating.
    const int64_t most = std::min<int64_t>(
        static_cast<int64_t>(request->prompt.size()) + request->max_tokens, model.context_length());
    tokens.reserve(static_cast<size_t>(most + 1));
    tokens.insert(tokens.end(), request->prompt.begin(), request->prompt.end());
    if (!request->images.empty()) {
      // Prefix-cache keys: the ids, with each [IMG] position replaced by a negative id derived
      // from its image's content and its index inside the image, so KV computed for another
      // image behind the same ids is never reused (text before the first image still is).
      keys.reserve(tokens.capacity());
      keys = tokens;
      size_t image = 0;
      int64_t in_image = 0;
      for (int32_t& key : keys) {
        if (key != image_token || image >= request->images.size()) continue;
        uint64_t mixed = request->images[image]->digest ^ (static_cast<uint64_t>(in_image) * 0x9E3779B97F4A7C15ull);
        mixed = (mixed ^ (mixed >> 31)) * 0xBF58476D1CE4E5B9ull;
        key = -1 - static_cast<int32_t>((mixed >> 33) & 0x3FFFFFFF);
        if (++in_image == request->images[image]->image_tokens()) {
          ++image;
          in_image = 0;
        }
      }
    }
    if (tokenizer != nullptr) detokenizer.emplace(*tokenizer);
    // An adapter changes the KV of the same tokens: its blocks live under its own prefix root.
    if (request->lora) cache.SetPrefixRoot(request->lora->fingerprint);
  }

  // Whether this sequence may take and offer prefix-cache blocks.
  bool shares_prefix() const { return !request->lora || request->lora->fingerprint != 0; }

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cache.position(); }

  // The ids the prefix cache keys this sequence by: `tokens`, or `keys` when it has images.
  std::span<const int32_t> prefix_keys() const { return keys.empty() ? tokens : keys; }

  std::shared_ptr<RequestStream> stream;
  int32_t image_token;  // the vision encoder's [IMG] id (-1 without one)
  // [IMG] rows [image tokens, dim] of the request's images, shared by its choices; computed
  // on the engine thread before the first prefill chunk that needs them.
  std::shared_ptr<std::vector<float>> image_rows;
  std::vector<int32_t> keys;  // prefix-cache keys with image positions replaced (images only)
  std::shared_ptr<const GenerationRequest> request;  // shared by the request's choices
  int index;
  model::PagedKvCache cache;
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [vocab] of the last step
  SequenceSampler sampler;
  std::optional<tokenizer::StreamingDetokenizer> detokenizer;
  StopStringMatcher stops;
  uint64_t arrival;                        // admission order, shared by a request's choices
  Sequence* fork_source = nullptr;         // choices 1..n-1: wait for choice 0's prefill
  std::vector<Sequence*> waiting_choices;  // choice 0: those waiting for it
  int64_t generated = 0;
  int64_t cached_tokens = 0;              // prompt tokens found in the prefix cache at admission
  int64_t step_tokens = 0;  // tokens in the current step
  bool preempted = false;   // KV dropped; rerun everything when blocks free up
  bool finished = false;
};

struct Engine::EmbedJob {
  std::vector<std::vector<int32_t>> inputs;
  std::shared_ptr<const model::LoraAdapter> lora;
  std::promise<std::vector<std::vector<float>>> result;
};

namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

Engine::Engine(model::Transformer& model, const tokenizer::Tokenizer* tokenizer,
               EngineOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options), scratch_(model.params().vocab_size) {
  if (options_.max_sequences < 1 || options_.max_queued < 0 || options_.prefill_budget < 1) {
    throw InvalidArgument("engine: max_sequences and prefill_budget must be >= 1, max_queued >= 0");
  }
  if (options_.block_size < 1 || options_.block_size > 4096) {
    throw InvalidArgument("engine: the KV block size must be 1..4096 tokens");
  }
  // The pool is sized and checked against memory at start, instead of failing mid-request.
  // Tensor parallel: this rank's KV heads, so the pool per rank shrinks by the group size.
  const formats::ModelParams& p = model_.shard_params();
  const int64_t block = options_.block_size;
  const uint64_t per_block = model::KvBlockPool::BytesPerBlock(p, options_.kv_dtype, block);
  const int64_t context_blocks = CeilDiv(model_.context_length(), block);
  const MemoryBudget budget = ReadMemoryBudget();
  const uint64_t weights = model_.weight_bytes();
  int64_t blocks = options_.kv_blocks;
  if (blocks == 0 && options_.kv_memory_bytes > 0) {
    blocks = static_cast<int64_t>(options_.kv_memory_bytes / per_block);
  } else if (blocks == 0) {
    blocks = options_.max_sequences * context_blocks;
    if (budget.usable_bytes > weights) {
      const int64_t half_of_rest =
          static_cast<int64_t>((budget.usable_bytes - weights) / 2 / per_block);
      blocks = std::min(blocks, std::max(half_of_rest, context_blocks));
    }
  }
  if (blocks < context_blocks) {
    throw InvalidArgument("a KV pool of " + std::to_string(blocks) + " blocks of " +
                          std::to_string(block) + " tokens holds less than one context of " +
                          std::to_string(model_.context_length()) + " tokens (" +
                          std::to_string(context_blocks) +
                          " blocks); raise --kv-memory or --kv-blocks, or lower --ctx");
  }
  const uint64_t kv_bytes = static_cast<uint64_t>(blocks) * per_block;
  if (budget.usable_bytes > 0 && weights + kv_bytes > budget.usable_bytes) {
    throw ResourceExhausted(
        "a KV pool of " + FormatBytes(kv_bytes) + " (" + std::to_string(blocks) + " blocks, " +
        ops::KvDTypeName(options_.kv_dtype) + ") beside " + FormatBytes(weights) +
        " of weights exceeds the " + FormatBytes(budget.usable_bytes) +
        " of usable memory; lower --kv-memory, --ctx or the parallel sequences, or use "
        "--kv-dtype q8");
  }
  pool_ = std::make_unique<model::KvBlockPool>(p, options_.kv_dtype, blocks, block);
  counters_.kv_blocks_total = blocks;
  counters_.kv_block_size = block;
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Engine::AbortAll(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    aborting_ = true;
    abort_reason_ = reason;
  }
  wake_.notify_all();
}

std::shared_ptr<RequestStream> Engine::Submit(GenerationRequest request) {
  const int64_t vocab = model_.params().vocab_size;
  if (request.prompt.empty()) throw InvalidArgument("the prompt is empty");
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= vocab)
      throw InvalidArgument("prompt token " + std::to_string(id) + " is outside the vocabulary");
  }
  const int64_t context = model_.context_length();
  if (static_cast<int64_t>(request.prompt.size()) > context) {
    throw InvalidArgument("the prompt has " + std::to_string(request.prompt.size()) +
                          " tokens, more than the context of " + std::to_string(context));
  }
  if (request.max_tokens < 1) throw InvalidArgument("max_tokens must be >= 1");
  const int most_choices = std::min(kMaxChoices, options_.max_sequences);
  if (request.n < 1 || request.n > most_choices) {
    throw InvalidArgument("n must be 1.." + std::to_string(most_choices) +
                          " (the parallel sequences), got " + std::to_string(request.n));
  }
  request.sampling.Validate(vocab);
  for (int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= vocab)
      throw InvalidArgument("stop token " + std::to_string(id) + " is outside the vocabulary");
  }
  if (!request.stop.empty() && tokenizer_ == nullptr)
    throw InvalidArgument("stop strings need a tokenizer");
  if (request.grammar && tokenizer_ == nullptr) {
    throw InvalidArgument("constrained decoding needs a tokenizer");
  }
  if (request.lora) {
    try {
      model::ValidateLoraAdapter(*request.lora, model_.params());
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string("the LoRA adapter does not fit this model: ") + e.what());
    }
  }
  if (!request.images.empty()) {
    if (options_.vision == nullptr) {
      throw InvalidArgument("this model does not read images (its folder has no vision encoder)");
    }
    const vision::VisionEncoder& vision = *options_.vision;
    int64_t rows = 0;
    for (const auto& image : request.images) {
      if (image == nullptr) throw InvalidArgument("an image of the request is missing");
      if (vision.OutputRows(*image) != image->image_tokens()) {
        throw InvalidArgument("the tokenizer's image settings (patch, merge) do not match the vision encoder's");
      }
      rows += image->image_tokens();
    }
    const int64_t image_tokens = model::CountImageTokens(request.prompt, vision.params().image_token_id);
    if (image_tokens != rows) {
      throw InvalidArgument("the prompt has " + std::to_string(image_tokens) + " [IMG] tokens but its images give " +
                            std::to_string(rows));
    }
  }
  if (request.grammar) vocabulary();  // built here, on the caller's thread, not in the engine loop
  auto stream = std::make_shared<RequestStream>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw ResourceExhausted("the engine is shutting down");
    if (!abort_reason_.empty()) throw ResourceExhausted(abort_reason_);
    if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      throw ResourceExhausted("too many queued requests (" + std::to_string(queue_.size()) +
                              "); retry later");
    }
    queue_.push_back({std::move(request), stream});
    counters_.queued = static_cast<int>(queue_.size());
  }
  wake_.notify_all();
  return stream;
}

std::vector<std::vector<float>> Engine::Embed(std::vector<std::vector<int32_t>> inputs,
                                              std::shared_ptr<const model::LoraAdapter> lora) {
  const int64_t vocab = model_.params().vocab_size;
  if (lora) {
    try {
      model::ValidateLoraAdapter(*lora, model_.params());
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string("the LoRA adapter does not fit this model: ") + e.what());
    }
  }
  for (const auto& input : inputs) {
    if (input.empty()) throw InvalidArgument("an embedding input is empty");
    if (static_cast<int64_t>(input.size()) > model_.context_length()) {
      throw InvalidArgument("an embedding input has " + std::to_string(input.size()) +
                            " tokens, more than the context of " + std::to_string(model_.context_length()));
    }
    for (int32_t id : input) {
      if (id < 0 || id >= vocab) throw InvalidArgument("token " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  auto job = std::make_shared<EmbedJob>();
  job->inputs = std::move(inputs);
  job->lora = std::move(lora);
  std::future<std::vector<std::vector<float>>> result = job->result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw ResourceExhausted("the engine is shutting down");
    if (!abort_reason_.empty()) throw ResourceExhausted(abort_reason_);
    embed_jobs_.push_back(job);
  }
  wake_.notify_all();
  return result.get();
}

void Engine::RunEmbedJob(EmbedJob& job) {
  const formats::ModelParams& p = model_.params();
  std::vector<std::vector<float>> vectors;
  std::vector<float> hidden;
  for (const std::vector<int32_t>& input : job.inputs) {
    model::PagedKvCache cache(*pool_, model_.shard_params(), model_.context_length());
    const int64_t count = static_cast<int64_t>(input.size());
    if (cache.BlocksNeeded(count) > pool_->available_blocks()) {
      throw ResourceExhausted("the KV cache is busy with running requests; retry the embedding later");
    }
    hidden.resize(static_cast<size_t>(count * p.dim));
    model::BatchItem item;
    item.tokens = input;
    item.cache = &cache;
    item.hidden = hidden;
    item.lora = job.lora.get();
    model_.ForwardBatch(std::span<const model::BatchItem>(&item, 1));
    std::vector<double> sum(static_cast<size_t>(p.dim), 0.0);
    for (int64_t t = 0; t < count; ++t) {
      for (int64_t i = 0; i < p.dim; ++i) sum[i] += hidden[t * p.dim + i];
    }
    double norm = 0.0;
    for (double& value : sum) {
      value /= static_cast<double>(count);
      norm += value * value;
    }
    norm = std::sqrt(norm);
    std::vector<float> vector(static_cast<size_t>(p.dim));
    for (int64_t i = 0; i < p.dim; ++i) vector[i] = static_cast<float>(norm > 0 ? sum[i] / norm : 0.0);
    vectors.push_back(std::move(vector));
  }
  job.result.set_value(std::move(vectors));
}

std::shared_ptr<const constraint::TokenVocabulary> Engine::vocabulary() {
  if (tokenizer_ == nullptr) return nullptr;
  std::call_once(vocabulary_once_, [this] {
    vocabulary_ = std::make_shared<constraint::TokenVocabulary>(*tokenizer_);
  });
  return vocabulary_;
}

EngineCounters Engine::counters() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

bool Engine::CanAdmit(const Pending& pending, const Running& running) const {
  if (running.empty()) return true;  // the pool holds at least one full context
  if (static_cast<int>(running.size()) + pending.request.n > options_.max_sequences) return false;
  for (const auto& sequence : running) {
    if (sequence->preempted) return false;  // preempted sequences resume first
  }
  const int64_t prompt_blocks =
      CeilDiv(static_cast<int64_t>(pending.request.prompt.size()) + 1, pool_->block_size());
  return pool_->available_blocks() >= prompt_blocks;
}

void Engine::Admit(Pending pending, Running& running) {
  const auto request = std::make_shared<const GenerationRequest>(std::move(pending.request));
  const uint64_t seed = request->sampling.seed.value_or(RandomSeed());
  const uint64_t arrival = next_arrival_++;
  Running choices;
  try {
    const int32_t image_token = options_.vision != nullptr ? options_.vision->params().image_token_id : -1;
    auto image_rows = request->images.empty() ? nullptr : std::make_shared<std::vector<float>>();
    for (int i = 0; i < request->n; ++i) {
      choices.push_back(std::make_unique<Sequence>(pending.stream, request, i, model_, *pool_,
                                                   tokenizer_, seed, arrival,
                                                   request->grammar ? vocabulary() : nullptr, image_token,
                                                   image_rows));
    }
    Sequence& first = *choices.front();
    first.waiting_choices.reserve(choices.size());
    for (size_t i = 1; i < choices.size(); ++i) {
      choices[i]->fork_source = &first;
      first.waiting_choices.push_back(choices[i].get());
    }
    if (options_.prefix_cache && first.shares_prefix()) {
      const int64_t reused = first.cache.AttachPrefix(first.prefix_keys());
      first.cached_tokens = reused;
      std::lock_guard<std::mutex> lock(mutex_);
      counters_.prefix_hit_tokens += reused;
    }
  } catch (const std::exception& e) {  // e.g. out of memory for the sequence's buffers
    for (int i = 0; i < request->n; ++i) {
      Event done;
      done.kind = Event::Kind::kDone;
      done.index = i;
      done.finish = FinishReason::kError;
      done.error = e.what();
      done.usage.prompt_tokens = static_cast<int64_t>(request->prompt.size());
      pending.stream->Push(std::move(done));
    }
    return;
  }
  for (auto& choice : choices) running.push_back(std::move(choice));
}

void Engine::Loop() {
  Running running;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || aborting_ || !queue_.empty() || !running.empty() || !embed_jobs_.empty();
      });
      if (stopping_) break;
    }
    std::string abort_reason;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (aborting_) {
        aborting_ = false;
        abort_reason = abort_reason_;
      }
    }
    if (!abort_reason.empty()) {  // AbortAll: queued requests fail below, with the reason
      for (auto& sequence : running) Finish(*sequence, FinishReason::kError, abort_reason);
      running.clear();
      PublishCounters(running);
      FailQueued(FinishReason::kError, abort_reason);
      continue;
    }
    while (true) {  // embeddings run between steps, on this thread like everything touching the model
      std::shared_ptr<EmbedJob> job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (embed_jobs_.empty()) break;
        job = std::move(embed_jobs_.front());
        embed_jobs_.pop_front();
      }
      try {
        RunEmbedJob(*job);
      } catch (...) {
        job->result.set_exception(std::current_exception());
      }
    }
    while (true) {
      Pending pending;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (queue_.empty() || !CanAdmit(queue_.front(), running)) break;
        pending = std::move(queue_.front());
        queue_.pop_front();
        counters_.queued = static_cast<int>(queue_.size());
      }
      Admit(std::move(pending), running);
    }
    try {
      Step(running);
    } catch (const std::exception& e) {  // never let the engine thread die with requests waiting
      for (auto& sequence : running) Finish(*sequence, FinishReason::kError, e.what());
    }
    running.erase(
        std::remove_if(running.begin(), running.end(), [](const auto& s) { return s->finished; }),
        running.end());
    PublishCounters(running);
  }
  for (auto& sequence : running) Finish(*sequence, FinishReason::kCancelled);
  FailQueued(FinishReason::kCancelled, "the engine is shutting down");
}

void Engine::FailQueued(FinishReason finish, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Pending& pending : queue_) {
    for (int i = 0; i < pending.request.n; ++i) {
      Event done;
      done.kind = Event::Kind::kDone;
      done.index = i;
      done.finish = finish;
      if (finish == FinishReason::kError) done.error = reason;
      done.usage.prompt_tokens = static_cast<int64_t>(pending.request.prompt.size());
      pending.stream->Push(std::move(done));
    }
  }
  queue_.clear();
  counters_.queued = 0;
  for (auto& job : embed_jobs_) job->result.set_exception(std::make_exception_ptr(ResourceExhausted(reason)));
  embed_jobs_.clear();
}

void Engine::PublishCounters(const Running& running) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.running = static_cast<int>(running.size());
  counters_.kv_blocks_used = pool_->used_blocks();
  counters_.kv_blocks_cached = pool_->cached_blocks();
  counters_.pool = pool_->counters();
}

void Engine::Finish(Sequence& sequence, FinishReason reason, const std::string& error) {
  if (sequence.finished) return;
  Event done;
  done.kind = Event::Kind::kDone;
  done.index = sequence.index;
  done.finish = reason;
  done.error = error;
  done.usage.prompt_tokens = static_cast<int64_t>(sequence.request->prompt.size());
  done.usage.completion_tokens = sequence.generated;
  done.usage.cached_tokens = sequence.cached_tokens;
  if (sequence.detokenizer && !sequence.stops.stopped() && reason != FinishReason::kError) {
    done.text = sequence.stops.Push(sequence.detokenizer->Finish()).text + sequence.stops.Flush();
  }
  sequence.finished = true;
  sequence.cache.Clear();  // blocks back to the pool (or the prefix cache) at once
  sequence.stream->Push(std::move(done));
  // Choices still waiting for this one's prompt can never start: they end the same way.
  for (Sequence* waiting : sequence.waiting_choices) {
    if (waiting->fork_source == &sequence) Finish(*waiting, reason, error);
  }
  sequence.waiting_choices.clear();
}

void Engine::Preempt(Sequence& sequence) {
  sequence.cache.Clear();
  sequence.preempted = true;
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.preemptions;
}

bool Engine::ReserveOrPreempt(Sequence& sequence, int64_t tokens, Running& running) {
  // Recompute preemption, newest first: a sequence later in `running` (admitted after this one,
  // not yet planned in this step) gives up its blocks; with none left, this one waits instead.
  while (sequence.cache.BlocksNeeded(tokens) > pool_->available_blocks()) {
    Sequence* victim = nullptr;
    for (auto it = running.rbegin(); it != running.rend() && it->get() != &sequence; ++it) {
      Sequence& candidate = **it;
      if (!candidate.finished && !candidate.preempted && candidate.cache.held_blocks() > 0) {
        victim = &candidate;
        break;
      }
    }
    if (victim == nullptr) {
      Preempt(sequence);
      return false;
    }
    Preempt(*victim);
  }
  sequence.cache.Reserve(tokens);
  return true;
}

void Engine::Step(Running& running) {
  // One batch: a decode token from every sequence past its prompt, and prompt chunks within
  // the prefill budget in arrival order (the oldest unfinished prompt always advances, so no
  // prompt starves, and decoding sequences never wait for a prefill to finish).
  for (auto& owned : running) {
    if (!owned->finished && owned->stream->cancelled()) Finish(*owned, FinishReason::kCancelled);
  }
  std::vector<model::BatchItem> items;
  std::vector<Sequence*> members;
  int64_t budget = options_.prefill_budget;
  for (auto& owned : running) {
    Sequence& s = *owned;
    if (s.finished || s.fork_source != nullptr) continue;
    if (s.preempted) {
      // Resume once everything it must rerun fits, so it does not bounce straight back out.
      if (pool_->available_blocks() <
          CeilDiv(static_cast<int64_t>(s.tokens.size()) + 1, pool_->block_size())) {
        continue;
      }
      s.preempted = false;
      if (options_.prefix_cache && s.shares_prefix()) {
        const int64_t reused = s.cache.AttachPrefix(s.prefix_keys());
        std::lock_guard<std::mutex> lock(mutex_);
        counters_.prefix_hit_tokens += reused;
      }
    }
    const int64_t pending = s.pending();
    const int64_t count = pending == 1 ? 1 : std::min(pending, budget);
    if (count <= 0) continue;
    if (!ReserveOrPreempt(s, count, running)) continue;
    if (pending > 1) budget -= count;
    s.step_tokens = count;
    model::BatchItem item;
    item.cache = &s.cache;
    item.logits = s.logits;
    item.tokens =
        std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.cache.position()), count);
    item.lora = s.request->lora.get();
    if (s.image_rows != nullptr) {
      const int64_t here = model::CountImageTokens(item.tokens, s.image_token);
      if (here > 0) {
        if (s.image_rows->empty()) {
          try {
            EncodeImages(*s.request, *s.image_rows);
          } catch (const std::exception& e) {
            Finish(s, FinishReason::kError, e.what());
            continue;
          }
        }
        const int64_t dim = model_.params().dim;
        const int64_t before = model::CountImageTokens(
            std::span<const int32_t>(s.tokens).subspan(0, static_cast<size_t>(s.cache.position())), s.image_token);
        item.images = {std::span<const float>(*s.image_rows).subspan(before * dim, here * dim), s.image_token};
      }
    }
    items.push_back(item);
    members.push_back(&s);
  }
  if (items.empty()) return;
  try {
    model_.ForwardBatch(items);
  } catch (const std::exception& e) {
    for (Sequence* s : members) Finish(*s, FinishReason::kError, e.what());
    return;
  }
  {
    // Counted before any event is pushed, so a client that saw its last event sees the counts.
    int64_t prompt_tokens = 0;
    for (Sequence* s : members) {
      if (s->step_tokens > 1 || s->generated == 0) prompt_tokens += s->step_tokens;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.steps;
    counters_.prompt_tokens += prompt_tokens;
  }
  for (Sequence* s : members) {
    if (options_.prefix_cache && s->shares_prefix()) s->cache.RegisterFullBlocks(s->prefix_keys());
    if (s->pending() > 0) continue;  // more prompt next step
    // The other choices of the request share this prompt's blocks (copy-on-write) and logits.
    for (Sequence* choice : s->waiting_choices) {
      if (choice->finished || choice->fork_source != s) continue;
      choice->cache.ForkFrom(s->cache);
      choice->logits = s->logits;
      choice->fork_source = nullptr;
      SampleNext(*choice);
    }
    s->waiting_choices.clear();
    SampleNext(*s);
  }
}

void Engine::EncodeImages(const GenerationRequest& request, std::vector<float>& rows) {
  const vision::VisionEncoder& vision = *options_.vision;
  int64_t total = 0;
  for (const auto& image : request.images) total += vision.OutputRows(*image);
  rows.assign(static_cast<size_t>(total * vision.output_dim()), 0.0f);
  int64_t row = 0;
  for (const auto& image : request.images) {
    const int64_t count = vision.OutputRows(*image);
    vision.Encode(model_.compute(), *image,
                  std::span<float>(rows).subspan(static_cast<size_t>(row * vision.output_dim()),
                                                 static_cast<size_t>(count * vision.output_dim())));
    row += count;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.images += static_cast<int64_t>(request.images.size());
}

void Engine::SampleNext(Sequence& s) {
  const SampledToken token = s.sampler.Sample(s.logits, scratch_);
  ++s.generated;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.generated_tokens;
  }
  s.tokens.push_back(token.id);
  if (!s.keys.empty()) s.keys.push_back(token.id);
  const int32_t eos = tokenizer_ != nullptr ? tokenizer_->eos_id() : -1;
  const auto& stop_ids = s.request->stop_token_ids;
  if ((!s.request->ignore_eos && token.id == eos) ||
      std::find(stop_ids.begin(), stop_ids.end(), token.id) != stop_ids.end()) {
    Finish(s, FinishReason::kStop);
    return;
  }
  Event event;
  event.index = s.index;
  event.token = token;
  bool stopped = false;
  if (s.detokenizer) {
    StopStringMatcher::Result r = s.stops.Push(s.detokenizer->Push(token.id));
    event.text = std::move(r.text);
    stopped = r.stopped;
  }
  s.stream->Push(std::move(event));
  if (stopped) {
    Finish(s, FinishReason::kStop);
  } else if (s.generated >= s.request->max_tokens) {
    Finish(s, FinishReason::kLength);
  } else if (s.cache.position() >= s.cache.max_positions()) {
    Finish(s, FinishReason::kModelLength);
  }
}

}  // namespace bora::runtime
