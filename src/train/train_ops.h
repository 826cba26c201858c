// Forward and backward passes of the ops a Mistral/Mixtral decoder is made of, for training in
// f32: RMSNorm, RoPE, block-diagonal causal attention (GQA), SwiGLU, MoE routing, masked
// cross-entropy. Row-major [rows, width] buffers; backward functions accumulate (+=) into
// input gradients unless stated otherwise.
#pragma once

#include <cstdint>
#include <span>

#include "ops/compute_context.h"
#include "ops/gemm.h"
#include "tensor/matrix_view.h"

namespace bora::train {

// inverse_rms[t] = 1 / sqrt(mean(x[t]^2) + eps); out = x * inverse_rms * weight (the inference
// kernel exactly). out may not alias x.
void RmsNormForward(ops::ComputeContext& ctx, const float* x, const float* weight, float* out,
                    float* inverse_rms, int64_t rows, int64_t dim, float eps);
// dx += d/dx of RmsNorm given dy (the weight is frozen).
void RmsNormBackward(ops::ComputeContext& ctx, const float* x, const float* weight,
                     const float* inverse_rms, const float* dy, float* dx, int64_t rows,
                     int64_t dim);

// Rotates the interleaved pairs of every head of every row in place by the angle of its own
// position (`cos_sin`: [positions, head_dim/2, 2]); `inverse` rotates back (the backward).
// x[t, :] *= scales[positions[t]] for rows of `width` floats (the llama-4 query temperature;
// the same call is its own backward, the scale being a constant per row).
void ScaleRows(float* x, int64_t rows, int64_t width, std::span<const int32_t> positions, const float* scales);

void RopeRows(float* x, int64_t rows, int64_t heads, int64_t head_dim,
              std::span<const int32_t> positions, const float* cos_sin, bool inverse);

// Geometry of one attention call over a packed micro-batch.
struct AttentionGeometry {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Ascending row offsets where a block starts (first is 0); a row attends to the rows of its own
  // block up to itself. The last block ends at `rows`.
  std::span<const int32_t> block_starts;
  int64_t rows = 0;
};

// o[t, h] = softmax(q[t, h] · k[s.., g]^T / sqrt(head_dim)) v[s.., g] over the keys of t's block
// up to t (g = h / (n_heads / n_kv_heads)). q, o: [rows, n_heads*head_dim]; k, v:
// [rows, n_kv_heads*head_dim]; lse: [rows, n_heads] log-sum-exp of the scaled scores, kept for
// the backward.
void AttentionForward(ops::ComputeContext& ctx, const AttentionGeometry& g, const float* q,
                      const float* k, const float* v, float* o, float* lse);
// dq, dk, dv (overwritten, not accumulated) from do_ given the forward's inputs, output and lse.
void AttentionBackward(ops::ComputeContext& ctx, const AttentionGeometry& g, const float* q,
                       const float* k, const float* v, const float* o, const float* lse,
                       const float* d_out, float* dq, float* dk, float* dv);

// h = silu(gate) * up, elementwise over n values.
void SwiGluForward(ops::ComputeContext& ctx, const float* gate, const float* up, float* h,
                   int64_t n);
// d_gate, d_up (overwritten) from dh.
void SwiGluBackward(ops::ComputeContext& ctx, const float* gate, const float* up, const float* dh,
                    float* d_gate, float* d_up, int64_t n);

// Gradient of the selected-expert softmax: given the router logits of one token, the chosen
// experts and their weights (softmax over the chosen logits), and d_weight for each chosen slot,
// writes d_logits [experts] (zero for experts not chosen).
void RouterSoftmaxBackward(const int32_t* chosen, const float* weights, const float* d_weights,
                           int64_t top_k, float* d_logits, int64_t experts);

// Masked cross-entropy over the vocabulary: for every row with mask[t] set,
// loss_sum += logsumexp(logits[t]) - logits[t, target[t]], and returns it (f64) with the count
// of masked rows. When `d_hidden` is given, also accumulates the gradient of
// `loss_sum * loss_scale` with respect to `hidden`: logits = hidden · output^T are formed in
// chunks of rows so the [rows, vocab] matrix never exists at once.
struct CrossEntropyResult {
  double loss_sum = 0;
  int64_t count = 0;
  int64_t correct = 0;  // masked targets that are the argmax of their logits
};
CrossEntropyResult CrossEntropy(ops::ComputeContext& ctx, const float* hidden, int64_t rows,
                                int64_t dim, const MatrixView& output, const int32_t* targets,
                                const uint8_t* mask, double loss_scale, float* d_hidden,
                                ops::GemmPrecision precision = ops::GemmPrecision::kF32);

}  // namespace bora::train
