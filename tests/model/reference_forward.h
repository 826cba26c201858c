// An independent, deliberately naive double-precision Mistral/Mixtral forward pass for tests:
// whole sequence at once, explicit [T, T] causal/sliding-window mask, no KV cache, and for
// Hugging Face files the half-split (rotate_half) RoPE on the permuted weights as stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bora::testing {

// Logits [tokens, vocab] of `tokens` run from position 0 through the model folder `dir`
// (single weight file: consolidated.safetensors or model.safetensors).
std::vector<double> ReferenceLogits(const std::string& dir, const std::vector<int32_t>& tokens);

}  // namespace bora::testing
