// Scratch buffers of one forward call.
#include "model/activations.h"

namespace bora::model {

void Activations::Reserve(const formats::ModelParams& p, int64_t rows) {
  if (rows <= tokens) return;
  tokens = rows;
  const size_t t = static_cast<size_t>(rows);
  residual.resize(t * p.dim);
  normed.resize(t * p.dim);
  q.resize(t * p.n_heads * p.head_dim);
  k.resize(t * p.n_kv_heads * p.head_dim);
  v.resize(t * p.n_kv_heads * p.head_dim);
  attention.resize(t * p.n_heads * p.head_dim);
  block_out.resize(t * p.dim);
  ffn_gate.resize(t * p.hidden_dim);
  ffn_up.resize(t * p.hidden_dim);
  row_lora.resize(t);
  if (p.moe) {
    router.resize(t * p.moe->num_experts);
    chosen.resize(t * p.moe->num_experts_per_tok);
    chosen_weight.resize(t * p.moe->num_experts_per_tok);
    expert_rows.resize(t);
    expert_weight.resize(t);
    expert_in.resize(t * p.dim);
    expert_out.resize(t * p.dim);
    expert_row_lora.resize(t);
  }
}

void Activations::ReserveLora(int64_t rows, int64_t rank) {
  const size_t needed = static_cast<size_t>(rows * rank);
  if (lora_mid.size() < needed) lora_mid.resize(needed);
}

}  // namespace bora::model
