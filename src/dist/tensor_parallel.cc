// Rank 0's step messages and the other ranks' replay of them.
#include "dist/tensor_parallel.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "base/sha256.h"
#include "model/paged_kv_cache.h"

namespace bora::dist {
namespace {

enum class Kind : uint64_t { kStep = 1, kShutdown = 2 };
constexpr size_t kMaxAdapters = 16;  // adapter parts kept per rank (least recently used go first)

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) { out_.clear(); }
  template <typename T>
  void Put(T value) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  template <typename T>
  void PutArray(std::span<const T> values) {
    Put<int64_t>(static_cast<int64_t>(values.size()));
    const size_t at = out_.size();
    out_.resize(at + values.size_bytes());
    if (!values.empty()) std::memcpy(out_.data() + at, values.data(), values.size_bytes());
  }

 private:
  std::vector<uint8_t>& out_;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& in) : in_(in) {}
  template <typename T>
  T Get() {
    T value;
    Need(sizeof(T));
    std::memcpy(&value, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  // Into `values`, reusing its capacity (the followers' decode steps then allocate nothing).
  template <typename T>
  void GetArrayInto(std::vector<T>& values) {
    const int64_t count = Get<int64_t>();
    if (count < 0) throw FormatError("step message: negative array length");
    Need(static_cast<size_t>(count) * sizeof(T));
    values.resize(static_cast<size_t>(count));
    if (count > 0) std::memcpy(values.data(), in_.data() + at_, values.size() * sizeof(T));
    at_ += values.size() * sizeof(T);
  }
  template <typename T>
  std::vector<T> GetArray() {
    const int64_t count = Get<int64_t>();
    if (count < 0) throw FormatError("step message: negative array length");
    Need(static_cast<size_t>(count) * sizeof(T));
    std::vector<T> values(static_cast<size_t>(count));
    if (count > 0) std::memcpy(values.data(), in_.data() + at_, values.size() * sizeof(T));
    at_ += values.size() * sizeof(T);
    return values;
  }

 private:
  void Need(size_t bytes) {
    if (at_ + bytes > in_.size()) throw FormatError("step message truncated");
  }
  const std::vector<uint8_t>& in_;
  size_t at_ = 0;
};

void PutMatrix(Writer& w, const model::LoraMatrix& m) {
  w.Put<int64_t>(m.rank);
  w.Put<int64_t>(m.in);
  w.Put<int64_t>(m.out);
  w.PutArray<float>(m.a);
  w.PutArray<float>(m.b);
}

model::LoraMatrix GetMatrix(Reader& r) {
  model::LoraMatrix m;
  m.rank = r.Get<int64_t>();
  m.in = r.Get<int64_t>();
  m.out = r.Get<int64_t>();
  m.a = r.GetArray<float>();
  m.b = r.GetArray<float>();
  return m;
}

void PutAdapter(Writer& w, const model::LoraAdapter& adapter) {
  w.Put<int64_t>(adapter.rank);
  w.Put<float>(adapter.scaling);
  w.Put<uint64_t>(adapter.fingerprint);
  w.Put<int64_t>(static_cast<int64_t>(adapter.layers.size()));
  for (const model::LoraLayer& layer : adapter.layers) {
    for (const model::LoraMatrix* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn.w1, &layer.ffn.w2,
                                       &layer.ffn.w3}) {
      PutMatrix(w, *m);
    }
    w.Put<int64_t>(static_cast<int64_t>(layer.experts.size()));
    for (const model::LoraExpert& e : layer.experts) {
      PutMatrix(w, e.w1);
      PutMatrix(w, e.w2);
      PutMatrix(w, e.w3);
    }
  }
}

model::LoraAdapter GetAdapter(Reader& r) {
  model::LoraAdapter adapter;
  adapter.rank = r.Get<int64_t>();
  adapter.scaling = r.Get<float>();
  adapter.fingerprint = r.Get<uint64_t>();
  adapter.layers.resize(static_cast<size_t>(r.Get<int64_t>()));
  for (model::LoraLayer& layer : adapter.layers) {
    for (model::LoraMatrix* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn.w1, &layer.ffn.w2,
                                 &layer.ffn.w3}) {
      *m = GetMatrix(r);
    }
    layer.experts.resize(static_cast<size_t>(r.Get<int64_t>()));
    for (model::LoraExpert& e : layer.experts) {
      e.w1 = GetMatrix(r);
      e.w2 = GetMatrix(r);
      e.w3 = GetMatrix(r);
    }
  }
  return adapter;
}

}  // namespace

std::string ModelIdentity(const formats::ModelFolder& folder) {
  std::ostringstream text;
  if (!folder.config_file.empty()) {
    std::ifstream config(folder.config_file, std::ios::binary);
    text << config.rdbuf();
  }
  for (const std::string& file : folder.weight_files) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    text << '\n' << file.substr(file.find_last_of('/') + 1) << ' ' << static_cast<int64_t>(in.tellg());
  }
  return ToHex(Sha256Of(text.str()));
}

TensorParallelGroup::TensorParallelGroup(Communicator& comm, model::Transformer& model)
    : comm_(comm), model_(model) {
  if (model.shard_plan().layout.rank != comm.rank() || model.shard_plan().layout.ranks != comm.size()) {
    throw InvalidArgument("the model was loaded for another place in the tensor-parallel group");
  }
  model_.SetShardGroup(this);
}

TensorParallelGroup::~TensorParallelGroup() {
  if (comm_.rank() == 0) Shutdown();
  model_.SetShardGroup(nullptr);
}

void TensorParallelGroup::Shutdown() {
  if (shut_down_ || comm_.rank() != 0) return;
  shut_down_ = true;
  Writer w(message_);
  w.Put(Kind::kShutdown);
  comm_.Broadcast(message_, false);
}

uint64_t TensorParallelGroup::AdapterKey(const model::LoraAdapter& whole) const {
  return whole.fingerprint != 0 ? whole.fingerprint : model::LoraFingerprint(whole);
}

void TensorParallelGroup::BeginStep(std::span<const model::BatchItem> items) {
  ++step_;
  Writer w(message_);
  w.Put(Kind::kStep);
  // The pool of the paged caches (one engine: one pool) and its copy-on-write copies so far.
  model::KvBlockPool* pool = nullptr;
  for (const model::BatchItem& item : items) {
    if (item.cache->block_pool() != nullptr) pool = item.cache->block_pool();
  }
  w.Put<int64_t>(pool != nullptr);
  if (pool != nullptr) {
    pool->LogCopies(true);
    w.Put<int64_t>(pool->total_blocks());
    w.Put<int64_t>(pool->block_size());
    w.Put<int64_t>(static_cast<int64_t>(pool->dtype()));
    std::vector<int32_t> copies;
    for (const auto& copy : pool->copy_log()) {
      copies.push_back(copy.first);
      copies.push_back(copy.second);
    }
    pool->copy_log().clear();
    w.PutArray<int32_t>(copies);
  }
  // Adapters: each rank keeps its part of every adapter sent; new ones go whole, once.
  step_adapters_.clear();
  std::vector<uint64_t> evicted;
  std::vector<const model::LoraAdapter*> added;
  for (const model::BatchItem& item : items) {
    if (item.lora == nullptr) continue;
    const uint64_t key = AdapterKey(*item.lora);
    Adapter* found = nullptr;
    for (Adapter& a : adapters_) {
      if (a.key == key) found = &a;
    }
    if (found == nullptr) {
      if (adapters_.size() >= kMaxAdapters) {
        size_t oldest = adapters_.size();
        for (size_t i = 0; i < adapters_.size(); ++i) {
          if (adapters_[i].last_step == step_) continue;
          if (oldest == adapters_.size() || adapters_[i].last_step < adapters_[oldest].last_step) oldest = i;
        }
        if (oldest < adapters_.size()) {
          evicted.push_back(adapters_[oldest].key);
          adapters_.erase(adapters_.begin() + static_cast<int64_t>(oldest));
        }
      }
      adapters_.push_back(Adapter{key, std::make_shared<model::LoraAdapter>(model::ShardLoraAdapter(*item.lora, plan())),
                                  step_});
      found = &adapters_.back();
      added.push_back(item.lora);
    }
    found->last_step = step_;
    step_adapters_.emplace_back(item.lora, found->local.get());
  }
  w.PutArray<uint64_t>(evicted);
  w.Put<int64_t>(static_cast<int64_t>(added.size()));
  for (const model::LoraAdapter* whole : added) {
    w.Put<uint64_t>(AdapterKey(*whole));
    PutAdapter(w, *whole);
  }
  w.Put<int64_t>(static_cast<int64_t>(items.size()));
  for (const model::BatchItem& item : items) {
    const model::KvCache& cache = *item.cache;
    const int64_t count = static_cast<int64_t>(item.tokens.size());
    w.Put<uint64_t>(reinterpret_cast<uintptr_t>(&cache));
    w.Put<int64_t>(cache.block_pool() != nullptr);
    w.Put<int64_t>(cache.position());
    w.Put<int64_t>(cache.max_positions());
    w.Put<int64_t>(item.all_positions);
    w.Put<int64_t>(!item.hidden.empty());
    w.Put<uint64_t>(item.lora != nullptr ? AdapterKey(*item.lora) : 0);
    w.PutArray<int32_t>(item.tokens);
    std::span<const int32_t> table = cache.block_table();
    if (!table.empty()) {
      const int64_t block_size = cache.block_pool()->block_size();
      table = table.first(static_cast<size_t>((cache.position() + count + block_size - 1) / block_size));
    }
    w.PutArray<int32_t>(table);
  }
  comm_.Broadcast(message_, false);
}

const model::LoraAdapter* TensorParallelGroup::LocalAdapter(const model::LoraAdapter* whole) {
  for (const auto& pair : step_adapters_) {
    if (pair.first == whole) return pair.second;
  }
  comm_.Abort("an adapter was not part of the step it is used in");
  return nullptr;  // not reached
}

void TensorParallelGroup::FollowSteps() {
  for (;;) {
    comm_.Broadcast(message_, true);
    try {
      Reader r(message_);
      const Kind kind = r.Get<Kind>();
      if (kind == Kind::kShutdown) return;
      if (kind != Kind::kStep) throw FormatError("unknown step message");
      RunFollowerStep(message_);
    } catch (const std::exception& e) {
      comm_.Abort(e.what());
    }
  }
}

void TensorParallelGroup::RunFollowerStep(const std::vector<uint8_t>& message) {
  ++step_;
  Reader r(message);
  r.Get<Kind>();
  if (r.Get<int64_t>() != 0) {
    const int64_t blocks = r.Get<int64_t>(), block_size = r.Get<int64_t>();
    const auto dtype = static_cast<ops::KvDType>(r.Get<int64_t>());
    if (!pool_ || pool_->total_blocks() != blocks || pool_->block_size() != block_size || pool_->dtype() != dtype) {
      pool_ = std::make_unique<model::KvBlockPool>(model_.shard_params(), dtype, blocks, block_size);
    }
    const std::vector<int32_t> copies = r.GetArray<int32_t>();
    for (size_t i = 0; i + 1 < copies.size(); i += 2) pool_->CopyBlock(copies[i], copies[i + 1]);
  }
  for (uint64_t key : r.GetArray<uint64_t>()) {
    std::erase_if(adapters_, [&](const Adapter& a) { return a.key == key; });
  }
  const int64_t added = r.Get<int64_t>();
  for (int64_t i = 0; i < added; ++i) {
    const uint64_t key = r.Get<uint64_t>();
    const model::LoraAdapter whole = GetAdapter(r);
    adapters_.push_back(Adapter{key, std::make_shared<model::LoraAdapter>(model::ShardLoraAdapter(whole, plan())), step_});
  }
  const auto count = static_cast<size_t>(r.Get<int64_t>());
  // Buffers kept across steps: a decode step reuses them and allocates nothing.
  if (step_tokens_.size() < count) step_tokens_.resize(count);
  if (step_tables_.size() < count) step_tables_.resize(count);
  while (mirrors_.size() < count) mirrors_.push_back(std::make_unique<model::MirrorKvCache>());
  step_items_.assign(count, model::BatchItem());
  step_hidden_.clear();
  bool new_contiguous = false;
  int64_t hidden_rows = 0;
  for (size_t i = 0; i < count; ++i) {
    model::BatchItem& item = step_items_[i];
    const uint64_t cache_key = r.Get<uint64_t>();
    const bool paged = r.Get<int64_t>() != 0;
    const int64_t position = r.Get<int64_t>(), max_positions = r.Get<int64_t>();
    item.all_positions = r.Get<int64_t>() != 0;
    const bool wants_hidden = r.Get<int64_t>() != 0;
    const uint64_t lora_key = r.Get<uint64_t>();
    r.GetArrayInto(step_tokens_[i]);
    r.GetArrayInto(step_tables_[i]);
    item.tokens = step_tokens_[i];
    if (lora_key != 0) {
      for (const Adapter& a : adapters_) {
        if (a.key == lora_key) item.lora = a.local.get();
      }
      if (item.lora == nullptr) throw FormatError("a step uses an adapter this rank was never sent");
    }
    if (wants_hidden) {
      step_hidden_.emplace_back(i, hidden_rows);
      hidden_rows += static_cast<int64_t>(item.tokens.size());
    }
    if (paged) {
      if (!pool_) throw FormatError("a paged cache before its pool");
      mirrors_[i]->Reset(*pool_, max_positions, position, step_tables_[i]);
      item.cache = mirrors_[i].get();
      continue;
    }
    // Rank 0's contiguous caches (bench, tests): one per key, new at position 0.
    auto found = contiguous_.find(cache_key);
    if (position == 0) {
      if (found == contiguous_.end() || found->second->max_positions() != max_positions) {
        contiguous_[cache_key] = std::make_unique<model::ContiguousKvCache>(model_.shard_params(), max_positions);
      } else {
        found->second->Reset();
      }
      new_contiguous = true;
    } else if (found == contiguous_.end() || found->second->position() != position) {
      throw FormatError("a contiguous KV cache this rank does not hold at position " + std::to_string(position));
    }
    item.cache = contiguous_[cache_key].get();
  }
  if (new_contiguous) {  // a new cache began: drop those this step does not use
    std::erase_if(contiguous_, [&](const auto& entry) {
      for (const model::BatchItem& item : step_items_) {
        if (item.cache == entry.second.get()) return false;
      }
      return true;
    });
  }
  const int64_t dim = model_.params().dim;
  if (hidden_scratch_.size() < static_cast<size_t>(hidden_rows * dim)) hidden_scratch_.resize(hidden_rows * dim);
  for (const auto& [index, offset] : step_hidden_) {
    step_items_[index].hidden =
        std::span<float>(hidden_scratch_.data() + offset * dim, step_items_[index].tokens.size() * dim);
  }
  const std::span<const model::BatchItem> items(step_items_);
  model_.ForwardFollowerStep(items);
}

}  // namespace bora::dist
