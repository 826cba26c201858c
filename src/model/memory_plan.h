// Memory needed to run a model folder at a given context, checked against the RAM budget
// before anything is mapped or allocated (reliability rule L10).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/dtype.h"
#include "base/memory_info.h"
#include "formats/model_folder.h"

namespace bora::model {

struct MemoryPlan {
  int64_t context = 0;        // effective context: --ctx capped by the model's maximum
  uint64_t weights = 0;       // mapped weight files + un-permuted HF q/k copies + f32 norms
  uint64_t kv_cache = 0;      // one sequence at `context`
  uint64_t other = 0;         // RoPE table, activation scratch for a 512-token prefill chunk
  uint64_t total() const { return weights + kv_cache + other; }
};

// Throws InvalidArgument for a context below 1. With a `dtype` other than kF32 the weights
// count at their converted size (the source files are only mapped while converting).
MemoryPlan PlanMemory(const formats::ModelFolder& folder, int64_t requested_context,
                      DType dtype = DType::kF32);

// As PlanMemory for a GGUF file opened for `requested` (see GgufDecodeFor): bora's own decoding
// when none is asked for, else the exact f32 dequantization plus the converted copy.
MemoryPlan PlanGgufMemory(const formats::ModelFolder& folder, int64_t requested_context,
                          std::optional<DType> requested);

// What FP8 weights are dequantized to for a requested --dtype: kF32 when f32 is asked for
// (exact), else kBF16. bf16 keeps an FP8 file's accuracy: an e4m3 value has 4 significant bits,
// so value x scale rounds to bf16's 8 bits with a relative error under 2^-9 (none when the
// scale has at most 4 significant bits), 1/16 of the FP8 rounding itself, at 2 bytes a weight.
DType Fp8DequantTarget(std::optional<DType> requested);

// Bytes of all weight matrices of a model converted to `dtype` (see model::TargetFor).
uint64_t ConvertedWeightBytes(const formats::ModelParams& params, DType dtype);

// Throws ResourceExhausted with a one-line explanation when the plan exceeds the budget.
void CheckMemoryFits(const MemoryPlan& plan, const MemoryBudget& budget, const std::string& what);

}  // namespace bora::model
