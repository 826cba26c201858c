// Memory needed to run a model folder, checked against the RAM budget.
#include "model/memory_plan.h"

#include <algorithm>

#include "base/error.h"
#include "model/kv_cache.h"
#include "ops/pack_weights.h"

namespace bora::model {

uint64_t ConvertedWeightBytes(const formats::ModelParams& p, DType dtype) {
  auto bytes = [&](int64_t rows, int64_t cols, bool is_output) {
    DType target = dtype;
    if (IsPackedDType(dtype) && !ops::CanPack(cols)) target = DType::kBF16;
    if (dtype == DType::kQ4 && is_output) target = DType::kQ8;
    return ops::MatrixBytes(target, rows, cols);
  };
  const int64_t q_rows = p.n_heads * p.head_dim, kv_rows = p.n_kv_heads * p.head_dim;
  const int64_t experts = p.moe ? p.moe->num_experts : 1;
  uint64_t layer = bytes(q_rows, p.dim, false) + 2 * bytes(kv_rows, p.dim, false) + bytes(p.dim, q_rows, false);
  layer += static_cast<uint64_t>(experts) *
           (2 * bytes(p.hidden_dim, p.dim, false) + bytes(p.dim, p.hidden_dim, false));
  if (p.moe) layer += static_cast<uint64_t>(experts) * static_cast<uint64_t>(p.dim) * 2;  // router
  return static_cast<uint64_t>(p.n_layers) * layer + bytes(p.vocab_size, p.dim, false) +
         bytes(p.vocab_size, p.dim, true);
}

DType Fp8DequantTarget(std::optional<DType> requested) {
  return requested == DType::kF32 ? DType::kF32 : DType::kBF16;
}

MemoryPlan PlanMemory(const formats::ModelFolder& folder, int64_t requested_context, DType dtype) {
  const formats::ModelParams& p = folder.params;
  if (requested_context < 1) throw InvalidArgument("--ctx must be at least 1");
  MemoryPlan plan;
  plan.context = p.max_positions ? std::min(requested_context, *p.max_positions) : requested_context;
  const uint64_t element = 2;  // q/k copies keep the checkpoint dtype; assume 16-bit
  uint64_t qk_copies = 0;
  if (folder.layout == formats::CheckpointLayout::kHuggingFace) {
    qk_copies = static_cast<uint64_t>(p.n_layers) * static_cast<uint64_t>(p.n_heads + p.n_kv_heads) *
                static_cast<uint64_t>(p.head_dim) * static_cast<uint64_t>(p.dim) * element;
  }
  plan.weights = folder.weight_bytes + qk_copies + 4ull * static_cast<uint64_t>(p.dim) * (2 * p.n_layers + 1);
  if (dtype != DType::kF32) plan.weights = ConvertedWeightBytes(p, dtype) + 4ull * static_cast<uint64_t>(p.dim) * (2 * p.n_layers + 1);
  if (p.quantization == formats::WeightQuantization::kFp8) {
    // FP8 weights are dequantized while opening (to f32 for --dtype f32, else bf16) and then,
    // for q8/q4, packed while the dequantized copy is still held: both count.
    const DType dequantized = Fp8DequantTarget(dtype);
    plan.weights = ConvertedWeightBytes(p, dequantized) + 4ull * static_cast<uint64_t>(p.dim) * (2 * p.n_layers + 1);
    if (IsPackedDType(dtype)) plan.weights += ConvertedWeightBytes(p, dtype);
  }
  plan.kv_cache = ContiguousKvCache::BytesFor(p, plan.context);
  const uint64_t chunk = static_cast<uint64_t>(std::min<int64_t>(plan.context, 512));
  const uint64_t per_token_floats = 4 * p.dim + 2 * (p.n_heads + p.n_kv_heads) * p.head_dim + 2 * p.hidden_dim;
  plan.other = 4ull * static_cast<uint64_t>(plan.context) * static_cast<uint64_t>(p.head_dim) +
               4ull * chunk * per_token_floats;
  return plan;
}

MemoryPlan PlanGgufMemory(const formats::ModelFolder& folder, int64_t requested_context,
                          std::optional<DType> requested) {
  MemoryPlan plan = PlanMemory(folder, requested_context, DType::kF32);
  plan.weights = requested ? folder.gguf_exact_bytes : folder.gguf_native_bytes;
  if (requested && *requested != DType::kF32) plan.weights += ConvertedWeightBytes(folder.params, *requested);
  return plan;
}

void CheckMemoryFits(const MemoryPlan& plan, const MemoryBudget& budget, const std::string& what) {
  if (budget.usable_bytes == 0 || plan.total() <= budget.usable_bytes) return;
  throw ResourceExhausted(what + " needs " + FormatBytes(plan.total()) + " (weights " + FormatBytes(plan.weights) +
                          " + KV cache " + FormatBytes(plan.kv_cache) + " at --ctx " + std::to_string(plan.context) +
                          " + " + FormatBytes(plan.other) + " scratch) but only " + FormatBytes(budget.usable_bytes) +
                          " of RAM is usable; lower --ctx or use a smaller or quantized model");
}

}  // namespace bora::model
