// LoRA adapters in memory: construction, shape checks against a base model, content hash.
#include "model/lora_adapter.h"

#include <cmath>
#include <cstring>

#include "base/error.h"

namespace bora::model {
namespace {

constexpr LoraTarget kAllTargets[] = {LoraTarget::kWq, LoraTarget::kWk, LoraTarget::kWv,
                                      LoraTarget::kWo, LoraTarget::kW1, LoraTarget::kW2,
                                      LoraTarget::kW3};

bool IsFeedForward(LoraTarget target) {
  return target == LoraTarget::kW1 || target == LoraTarget::kW2 || target == LoraTarget::kW3;
}

LoraMatrix ZeroMatrix(int64_t rank, std::pair<int64_t, int64_t> in_out) {
  LoraMatrix m;
  m.rank = rank;
  m.in = in_out.first;
  m.out = in_out.second;
  m.a.assign(static_cast<size_t>(rank * m.in), 0.0f);
  m.b.assign(static_cast<size_t>(m.out * rank), 0.0f);
  return m;
}

// Empty, or [rank, in] / [out, rank] with the base linear's sizes.
bool MatrixFits(const LoraMatrix& m, int64_t rank, std::pair<int64_t, int64_t> in_out) {
  if (m.empty()) return m.b.empty();
  return m.rank == rank && m.in == in_out.first && m.out == in_out.second &&
         m.a.size() == static_cast<size_t>(rank * m.in) &&
         m.b.size() == static_cast<size_t>(m.out * rank);
}

// Calls check(matrix, layer, expert, target) for every slot of every layer; stops at false.
template <typename Check>
bool AllSlots(const LoraAdapter& adapter, Check check) {
  for (size_t i = 0; i < adapter.layers.size(); ++i) {
    const LoraLayer& layer = adapter.layers[i];
    for (LoraTarget target : kAllTargets) {
      if (!IsFeedForward(target) || layer.experts.empty()) {
        if (!check(*FindLoraMatrix(layer, -1, target), static_cast<int64_t>(i), -1, target)) {
          return false;
        }
      }
    }
    for (size_t e = 0; e < layer.experts.size(); ++e) {
      for (LoraTarget target : {LoraTarget::kW1, LoraTarget::kW2, LoraTarget::kW3}) {
        const LoraMatrix& m = *FindLoraMatrix(layer, static_cast<int64_t>(e), target);
        if (!check(m, static_cast<int64_t>(i), static_cast<int64_t>(e), target)) return false;
      }
    }
  }
  return true;
}

bool LayoutMatches(const LoraAdapter& adapter, const formats::ModelParams& base) {
  if (static_cast<int64_t>(adapter.layers.size()) != base.n_layers) return false;
  for (const LoraLayer& layer : adapter.layers) {
    if (base.moe) {
      if (static_cast<int64_t>(layer.experts.size()) != base.moe->num_experts) return false;
      if (!layer.ffn.w1.empty() || !layer.ffn.w2.empty() || !layer.ffn.w3.empty()) return false;
    } else if (!layer.experts.empty()) {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* LoraTargetName(LoraTarget target) {
  switch (target) {
    case LoraTarget::kWq:
      return "wq";
    case LoraTarget::kWk:
      return "wk";
    case LoraTarget::kWv:
      return "wv";
    case LoraTarget::kWo:
      return "wo";
    case LoraTarget::kW1:
      return "w1";
    case LoraTarget::kW2:
      return "w2";
    case LoraTarget::kW3:
      return "w3";
  }
  return "?";
}

std::pair<int64_t, int64_t> LoraTargetShape(const formats::ModelParams& p, LoraTarget target) {
  const int64_t q = p.n_heads * p.head_dim;
  const int64_t kv = p.n_kv_heads * p.head_dim;
  switch (target) {
    case LoraTarget::kWq:
      return {p.dim, q};
    case LoraTarget::kWk:
    case LoraTarget::kWv:
      return {p.dim, kv};
    case LoraTarget::kWo:
      return {q, p.dim};
    case LoraTarget::kW1:
    case LoraTarget::kW3:
      return {p.dim, p.hidden_dim};
    case LoraTarget::kW2:
      return {p.hidden_dim, p.dim};
  }
  return {0, 0};
}

LoraMatrix* FindLoraMatrix(LoraLayer& layer, int64_t expert, LoraTarget target) {
  LoraExpert* ffn = &layer.ffn;
  if (IsFeedForward(target) && expert >= 0) {
    if (expert >= static_cast<int64_t>(layer.experts.size())) return nullptr;
    ffn = &layer.experts[static_cast<size_t>(expert)];
  }
  switch (target) {
    case LoraTarget::kWq:
      return &layer.wq;
    case LoraTarget::kWk:
      return &layer.wk;
    case LoraTarget::kWv:
      return &layer.wv;
    case LoraTarget::kWo:
      return &layer.wo;
    case LoraTarget::kW1:
      return &ffn->w1;
    case LoraTarget::kW2:
      return &ffn->w2;
    case LoraTarget::kW3:
      return &ffn->w3;
  }
  return nullptr;
}

const LoraMatrix* FindLoraMatrix(const LoraLayer& layer, int64_t expert, LoraTarget target) {
  return FindLoraMatrix(const_cast<LoraLayer&>(layer), expert, target);
}

LoraAdapter NewLoraAdapter(const formats::ModelParams& params, int64_t rank, float scaling) {
  if (rank < 1 || rank > kMaxLoraRank) {
    throw InvalidArgument("LoRA rank " + std::to_string(rank) + " is outside [1, " +
                          std::to_string(kMaxLoraRank) + "]");
  }
  if (!std::isfinite(scaling)) throw InvalidArgument("LoRA scaling must be finite");
  LoraAdapter adapter;
  adapter.rank = rank;
  adapter.scaling = scaling;
  adapter.layers.resize(static_cast<size_t>(params.n_layers));
  for (LoraLayer& layer : adapter.layers) {
    for (LoraTarget target : {LoraTarget::kWq, LoraTarget::kWk, LoraTarget::kWv, LoraTarget::kWo}) {
      *FindLoraMatrix(layer, -1, target) = ZeroMatrix(rank, LoraTargetShape(params, target));
    }
    if (params.moe) layer.experts.resize(static_cast<size_t>(params.moe->num_experts));
    const int64_t experts = params.moe ? params.moe->num_experts : 1;
    for (int64_t e = 0; e < experts; ++e) {
      for (LoraTarget target : {LoraTarget::kW1, LoraTarget::kW2, LoraTarget::kW3}) {
        *FindLoraMatrix(layer, params.moe ? e : -1, target) =
            ZeroMatrix(rank, LoraTargetShape(params, target));
      }
    }
  }
  return adapter;
}

bool LoraMatchesModel(const LoraAdapter& adapter, const formats::ModelParams& base) {
  if (adapter.rank < 1 || adapter.rank > kMaxLoraRank || !std::isfinite(adapter.scaling)) {
    return false;
  }
  if (!LayoutMatches(adapter, base)) return false;
  return AllSlots(adapter, [&](const LoraMatrix& m, int64_t, int64_t, LoraTarget target) {
    return MatrixFits(m, adapter.rank, LoraTargetShape(base, target));
  });
}

void ValidateLoraAdapter(const LoraAdapter& adapter, const formats::ModelParams& base) {
  if (adapter.rank < 1 || adapter.rank > kMaxLoraRank) {
    throw InvalidArgument("LoRA rank " + std::to_string(adapter.rank) + " is outside [1, " +
                          std::to_string(kMaxLoraRank) + "]");
  }
  if (!std::isfinite(adapter.scaling)) throw InvalidArgument("LoRA scaling must be finite");
  if (static_cast<int64_t>(adapter.layers.size()) != base.n_layers) {
    throw InvalidArgument("the LoRA adapter has " + std::to_string(adapter.layers.size()) +
                          " layers, the model " + std::to_string(base.n_layers));
  }
  if (!LayoutMatches(adapter, base)) {
    throw InvalidArgument(base.moe ? "the model is a mixture of experts with " +
                                         std::to_string(base.moe->num_experts) +
                                         " experts per layer; the adapter's feed-forward "
                                         "matrices must be per expert, one set per expert"
                                   : std::string("the model is dense; the adapter must not "
                                                 "have per-expert matrices"));
  }
  AllSlots(adapter, [&](const LoraMatrix& m, int64_t layer, int64_t expert, LoraTarget target) {
    const std::pair<int64_t, int64_t> in_out = LoraTargetShape(base, target);
    if (MatrixFits(m, adapter.rank, in_out)) return true;
    const std::string name = "layers." + std::to_string(layer) +
                             (IsFeedForward(target) ? ".feed_forward." : ".attention.") +
                             (expert >= 0 ? "experts." + std::to_string(expert) + "." : "") +
                             LoraTargetName(target);
    throw InvalidArgument("LoRA matrix " + name + " has A [" + std::to_string(m.rank) + ", " +
                          std::to_string(m.in) + "] and B [" + std::to_string(m.out) + ", " +
                          std::to_string(m.rank) + "] (" + std::to_string(m.a.size()) + " and " +
                          std::to_string(m.b.size()) + " values); the model needs A [" +
                          std::to_string(adapter.rank) + ", " + std::to_string(in_out.first) +
                          "] and B [" + std::to_string(in_out.second) + ", " +
                          std::to_string(adapter.rank) + "]");
  });
}

uint64_t LoraFingerprint(const LoraAdapter& adapter) {
  // A multiply-xorshift chain over every 32-bit word: order-sensitive, fast on GiB of values.
  uint64_t hash = 0x9e3779b97f4a7c15ull;
  auto mix = [&hash](uint64_t word) {
    hash ^= word + 0x9e3779b97f4a7c15ull + (hash << 6) + (hash >> 2);
    hash *= 0xbf58476d1ce4e5b9ull;
    hash ^= hash >> 31;
  };
  uint32_t scaling_bits = 0;
  std::memcpy(&scaling_bits, &adapter.scaling, sizeof(scaling_bits));
  mix(static_cast<uint64_t>(adapter.rank));
  mix(scaling_bits);
  mix(adapter.layers.size());
  AllSlots(adapter, [&](const LoraMatrix& m, int64_t layer, int64_t expert, LoraTarget target) {
    mix((static_cast<uint64_t>(layer) << 32) ^ (static_cast<uint64_t>(expert + 1) << 8) ^
        static_cast<uint64_t>(target) ^ (m.empty() ? 0x80 : 0));
    for (const std::vector<float>* values : {&m.a, &m.b}) {
      const float* data = values->data();
      const size_t count = values->size();
      size_t i = 0;
      for (; i + 1 < count; i += 2) {
        uint64_t pair = 0;
        std::memcpy(&pair, data + i, sizeof(pair));
        mix(pair);
      }
      if (i < count) {
        uint32_t last = 0;
        std::memcpy(&last, data + i, sizeof(last));
        mix(last);
      }
    }
    return true;
  });
  return hash == 0 ? 1 : hash;
}

}  // namespace bora::model
