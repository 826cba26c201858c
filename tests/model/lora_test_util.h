// Helpers for LoRA tests: seeded random adapters, logits with an adapter, and a PEFT copy of a
// mistral-layout adapter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_params.h"
#include "model/lora_adapter.h"
#include "model/transformer.h"

namespace bora::testing {

// An adapter on every linear of `params` with A ~ N(0, 1/sqrt(in)) and B ~ N(0, b_std) (B = 0
// for b_std 0). With `bf16_values` every value is a bf16 number (saving is then exact).
model::LoraAdapter RandomAdapter(const formats::ModelParams& params, int64_t rank, float scaling,
                                 uint32_t seed, float b_std, bool bf16_values = false);

// Logits [tokens, vocab] of `tokens` run from position 0 in one call, with `lora` (may be null).
std::vector<float> PromptLogits(model::Transformer& model, const std::vector<int32_t>& tokens,
                                const model::LoraAdapter* lora);

// Writes `adapter` as a PEFT folder (adapter_config.json with r and lora_alpha = scaling * r,
// adapter_model.safetensors in F32 with Hugging Face names). With `permute`, q_proj/k_proj B rows
// are permuted the way HF's converter permutes q/k (what a PEFT adapter trained on an HF model
// holds); without, they are left in native order (a wrong file, for negative checks).
void WritePeftAdapter(const model::LoraAdapter& adapter, const formats::ModelParams& params,
                      const std::string& dir, bool permute = true);

// max |a - b|; infinity for different sizes.
double MaxAbsDifference(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace bora::testing
