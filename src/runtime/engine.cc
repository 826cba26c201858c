// The engine thread: admission, continuous batching of prefill chunks and decode steps,
// sampling, stop conditions and event delivery.
#include "runtime/engine.h"

#include <algorithm>
#include <optional>

#include "base/error.h"
#include "base/memory_info.h"
#include "runtime/stop_strings.h"
#include "tokenizer/streaming_detokenizer.h"

namespace bora::runtime {

struct Engine::Sequence {
  Sequence(Pending pending, model::Transformer& model, const tokenizer::Tokenizer* tokenizer, uint64_t seed)
      : stream(std::move(pending.stream)),
        request(std::move(pending.request)),
        cache(model.NewCache()),
        logits(static_cast<size_t>(model.params().vocab_size)),
        sampler(request.sampling, model.params().vocab_size, request.prompt, seed, 0, model.compute().kernels()),
        stops(request.stop) {
    if (tokenizer != nullptr) detokenizer.emplace(*tokenizer);
  }

  std::shared_ptr<RequestStream> stream;
  GenerationRequest request;
  model::KvCache cache;
  std::vector<float> logits;  // [vocab] of the last step
  SequenceSampler sampler;
  std::optional<tokenizer::StreamingDetokenizer> detokenizer;
  StopStringMatcher stops;
  int64_t prefilled = 0;     // prompt tokens already run
  int64_t step_tokens = 0;   // tokens in the current step
  int32_t last = -1;         // the token the next decode step feeds
  int64_t generated = 0;
  bool finished = false;
};

Engine::Engine(model::Transformer& model, const tokenizer::Tokenizer* tokenizer, EngineOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options), scratch_(model.params().vocab_size) {
  if (options_.max_sequences < 1 || options_.max_queued < 0 || options_.prefill_budget < 1) {
    throw InvalidArgument("engine: max_sequences and prefill_budget must be >= 1, max_queued >= 0");
  }
  // Every running sequence holds a KV cache of the model's context: check at start that
  // max_sequences of them fit beside the loaded model, instead of failing mid-request.
  const uint64_t kv_bytes = static_cast<uint64_t>(options_.max_sequences) *
                            model::KvCache::BytesFor(model_.params(), model_.context_length());
  const MemoryBudget budget = ReadMemoryBudget();
  const uint64_t weights = model_.weight_bytes();
  if (budget.usable_bytes > 0 && weights + kv_bytes > budget.usable_bytes) {
    throw ResourceExhausted(std::to_string(options_.max_sequences) + " sequences of " +
                            std::to_string(model_.context_length()) + " tokens need " + FormatBytes(kv_bytes) +
                            " of KV cache beside " + FormatBytes(weights) + " of weights, but only " +
                            FormatBytes(budget.usable_bytes) + " is usable; lower the parallel sequences or --ctx");
  }
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

std::shared_ptr<RequestStream> Engine::Submit(GenerationRequest request) {
  const int64_t vocab = model_.params().vocab_size;
  if (request.prompt.empty()) throw InvalidArgument("the prompt is empty");
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= vocab) throw InvalidArgument("prompt token " + std::to_string(id) + " is outside the vocabulary");
  }
  const int64_t context = model_.context_length();
  if (static_cast<int64_t>(request.prompt.size()) > context) {
    throw InvalidArgument("the prompt has " + std::to_string(request.prompt.size()) +
                          " tokens, more than the context of " + std::to_string(context));
  }
  if (request.max_tokens < 1) throw InvalidArgument("max_tokens must be >= 1");
  request.sampling.Validate(vocab);
  for (int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= vocab) throw InvalidArgument("stop token " + std::to_string(id) + " is outside the vocabulary");
  }
  if (!request.stop.empty() && tokenizer_ == nullptr) throw InvalidArgument("stop strings need a tokenizer");
  auto stream = std::make_shared<RequestStream>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw ResourceExhausted("the engine is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      throw ResourceExhausted("too many queued requests (" + std::to_string(queue_.size()) + "); retry later");
    }
    queue_.push_back({std::move(request), stream});
    counters_.queued = static_cast<int>(queue_.size());
  }
  wake_.notify_all();
  return stream;
}

EngineCounters Engine::counters() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void Engine::Loop() {
  std::vector<std::unique_ptr<Sequence>> running;
  while (true) {
    std::vector<Pending> admitted;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running.empty(); });
      if (stopping_) break;
      while (running.size() + admitted.size() < static_cast<size_t>(options_.max_sequences) && !queue_.empty()) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      counters_.queued = static_cast<int>(queue_.size());
    }
    for (Pending& pending : admitted) {
      const uint64_t seed = pending.request.sampling.seed.value_or(RandomSeed());
      const std::shared_ptr<RequestStream> stream = pending.stream;  // `pending` is moved below
      try {
        running.push_back(std::make_unique<Sequence>(std::move(pending), model_, tokenizer_, seed));
      } catch (const std::exception& e) {  // e.g. out of memory for the KV cache
        Event done;
        done.kind = Event::Kind::kDone;
        done.finish = FinishReason::kError;
        done.error = e.what();
        stream->Push(std::move(done));
      }
    }
    try {
      Step(running);
    } catch (const std::exception& e) {  // never let the engine thread die with requests waiting
      for (auto& sequence : running) {
        if (!sequence->finished) Finish(*sequence, FinishReason::kError, e.what());
      }
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](const auto& s) { return s->finished; }),
                  running.end());
    std::lock_guard<std::mutex> lock(mutex_);
    counters_.running = static_cast<int>(running.size());
  }
  for (auto& sequence : running) Finish(*sequence, FinishReason::kCancelled);
  std::lock_guard<std::mutex> lock(mutex_);
  for (Pending& pending : queue_) {
    Event done;
    done.kind = Event::Kind::kDone;
    done.finish = FinishReason::kCancelled;
    done.usage.prompt_tokens = static_cast<int64_t>(pending.request.prompt.size());
    pending.stream->Push(std::move(done));
  }
  queue_.clear();
}

void Engine::Finish(Sequence& sequence, FinishReason reason, const std::string& error) {
  Event done;
  done.kind = Event::Kind::kDone;
  done.finish = reason;
  done.error = error;
  done.usage.prompt_tokens = static_cast<int64_t>(sequence.request.prompt.size());
  done.usage.completion_tokens = sequence.generated;
  if (sequence.detokenizer && !sequence.stops.stopped() && reason != FinishReason::kError) {
    done.text = sequence.stops.Push(sequence.detokenizer->Finish()).text + sequence.stops.Flush();
  }
  sequence.finished = true;
  sequence.stream->Push(std::move(done));
}

void Engine::Step(std::vector<std::unique_ptr<Sequence>>& running) {
  // One batch: a decode token from every sequence past its prompt, and prompt chunks within
  // the prefill budget in arrival order (the oldest unfinished prompt always advances, so no
  // prompt starves, and decoding sequences never wait for a prefill to finish).
  std::vector<model::BatchItem> items;
  std::vector<Sequence*> members;
  int64_t budget = options_.prefill_budget;
  for (auto& owned : running) {
    Sequence& s = *owned;
    if (s.stream->cancelled()) {
      Finish(s, FinishReason::kCancelled);
      continue;
    }
    const int64_t prompt_size = static_cast<int64_t>(s.request.prompt.size());
    model::BatchItem item;
    item.cache = &s.cache;
    item.logits = s.logits;
    if (s.prefilled < prompt_size) {
      if (budget <= 0) continue;
      s.step_tokens = std::min(prompt_size - s.prefilled, budget);
      budget -= s.step_tokens;
      item.tokens = std::span<const int32_t>(s.request.prompt).subspan(s.prefilled, s.step_tokens);
    } else {
      s.step_tokens = 1;
      item.tokens = std::span<const int32_t>(&s.last, 1);
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
      if (s->prefilled < static_cast<int64_t>(s->request.prompt.size())) prompt_tokens += s->step_tokens;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.steps;
    counters_.prompt_tokens += prompt_tokens;
  }
  const int32_t eos = tokenizer_ != nullptr ? tokenizer_->eos_id() : -1;
  for (Sequence* s : members) {
    const int64_t prompt_size = static_cast<int64_t>(s->request.prompt.size());
    if (s->prefilled < prompt_size) {
      s->prefilled += s->step_tokens;
      if (s->prefilled < prompt_size) continue;  // more prompt next step
    }
    const SampledToken token = s->sampler.Sample(s->logits, scratch_);
    ++s->generated;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counters_.generated_tokens;
    }
    s->last = token.id;
    const auto& stop_ids = s->request.stop_token_ids;
    if ((!s->request.ignore_eos && token.id == eos) ||
        std::find(stop_ids.begin(), stop_ids.end(), token.id) != stop_ids.end()) {
      Finish(*s, FinishReason::kStop);
      continue;
    }
    Event event;
    event.token = token;
    bool stopped = false;
    if (s->detokenizer) {
      StopStringMatcher::Result r = s->stops.Push(s->detokenizer->Push(token.id));
      event.text = std::move(r.text);
      stopped = r.stopped;
    }
    s->stream->Push(std::move(event));
    if (stopped) {
      Finish(*s, FinishReason::kStop);
    } else if (s->generated >= s->request.max_tokens) {
      Finish(*s, FinishReason::kLength);
    } else if (s->cache.position() >= s->cache.max_positions()) {
      Finish(*s, FinishReason::kModelLength);
    }
  }
}

}  // namespace bora::runtime
