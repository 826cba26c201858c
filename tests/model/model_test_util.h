// Helpers for model tests: small random models on disk, HF-layout conversion, engine logits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_params.h"
#include "model/transformer.h"

namespace bora::testing {

// A small dense geometry (dim 64, 2 layers, 4/2 heads, head_dim 16, FFN 128, vocab 300).
formats::ModelParams SmallParams();

// Writes a seeded random model (Mistral-native layout) into `dir`.
void MakeModel(const formats::ModelParams& params, uint64_t seed, const std::string& dir);

// Rewrites the native model in `native_dir` as a Hugging Face folder in `hf_dir`
// (MistralForCausalLM/MixtralForCausalLM names, q/k rows permuted for rotate_half RoPE).
void ConvertToHf(const std::string& native_dir, const std::string& hf_dir);

// Logits [tokens, vocab] of `tokens` from position 0, fed to the engine `step` tokens per call.
std::vector<float> EngineLogits(const std::string& dir, const std::vector<int32_t>& tokens, int64_t step);

// Greedy continuation of `prompt` for `count` tokens: one prefill, then one token per call
// through the KV cache (as llama2.c's run.c and llama.cpp's greedy sampling do).
std::vector<int32_t> GreedyTokens(model::Transformer& engine, const std::vector<int32_t>& prompt, size_t count);

// Deterministic token ids in [0, vocab).
std::vector<int32_t> RandomTokens(int64_t count, int64_t vocab, uint32_t seed);

// max |a - b| over equal-length arrays.
double MaxAbsDiff(const std::vector<float>& a, const std::vector<double>& b);

}  // namespace bora::testing
