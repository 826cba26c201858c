// Scratch buffers of one forward call, grown only when a call has more tokens than any before
// (so decode steps, one token each, never touch the heap once the model is loaded).
#pragma once

#include <cstdint>
#include <vector>

#include "formats/model_params.h"

namespace bora::model {

struct LoraAdapter;

struct Activations {
  int64_t tokens = 0;            // rows every buffer below can hold
  std::vector<float> residual;   // [T, dim] the residual stream h
  std::vector<float> normed;     // [T, dim] RMSNorm output
  std::vector<float> q;          // [T, n_heads*head_dim]
  std::vector<float> k;          // [T, n_kv_heads*head_dim]
  std::vector<float> v;          // [T, n_kv_heads*head_dim]
  std::vector<float> attention;  // [T, n_heads*head_dim] attention output before wo
  std::vector<float> block_out;  // [T, dim] output of wo or of the FFN
  std::vector<float> ffn_gate;   // [T, hidden_dim]
  std::vector<float> ffn_up;     // [T, hidden_dim]
  // MoE only.
  std::vector<float> router;          // [T, num_experts] gate logits
  std::vector<int32_t> chosen;        // [T, k] selected experts per token
  std::vector<float> chosen_weight;   // [T, k] softmax over the selected logits
  std::vector<int32_t> expert_rows;   // [T] token indices routed to the current expert
  std::vector<float> expert_weight;   // [T] their routing weights
  std::vector<float> expert_in;       // [T, dim] gathered inputs of the current expert
  std::vector<float> expert_out;      // [T, dim]
  // LoRA: the adapter of each row (null: none), of each gathered expert row, and A x scratch.
  bool lora = false;                                // some row of the current call has one
  std::vector<const LoraAdapter*> row_lora;         // [T]
  std::vector<const LoraAdapter*> expert_row_lora;  // [T] (MoE only)
  std::vector<float> lora_mid;                      // [T, largest rank seen]

  // Makes every buffer hold at least `rows` tokens.
  void Reserve(const formats::ModelParams& params, int64_t rows);
  // Makes lora_mid hold `rows` rows of `rank` values (grows only).
  void ReserveLora(int64_t rows, int64_t rank);
};

}  // namespace bora::model
