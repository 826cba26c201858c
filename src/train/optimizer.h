// AdamW with f32 moments over a LoRA adapter's matrices, the one-cycle learning-rate schedule
// (linear-free cosine warmup then cosine decay, as torch's OneCycleLR that mistral-finetune
// uses), gradient-norm clipping, and Kaiming-uniform initialisation of A.
#pragma once

#include <cstdint>

#include "model/lora_adapter.h"

namespace bora::train {

struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// First and second moments, shaped like the adapter; `step` counts updates done.
struct AdamWState {
  model::LoraAdapter m;
  model::LoraAdapter v;
  int64_t step = 0;
};

// Zero moments for `params`.
AdamWState NewAdamWState(const model::LoraAdapter& params);

// One decoupled-weight-decay Adam update of every matrix of `params` with `grads` (torch.optim
// AdamW semantics, bias-corrected).
void AdamWUpdate(model::LoraAdapter& params, const model::LoraAdapter& grads, AdamWState& state,
                 const AdamWSettings& settings, double lr);

// Learning rate before optimizer step `step` (0-based) of `total`: cosine from lr/25 up to lr
// over the first `warmup_fraction` of the steps, then cosine down to lr/25/1e4.
double OneCycleLearningRate(double lr, int64_t step, int64_t total, double warmup_fraction);

// The global L2 norm of all gradients; when above max_norm (> 0), scales them to max_norm
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
double ClipGradientNorm(model::LoraAdapter& grads, double max_norm);

// A ~ U(-1/sqrt(in), 1/sqrt(in)) (nn.init.kaiming_uniform_ with a = sqrt(5)), B = 0, from `seed`.
void InitLoraAdapter(model::LoraAdapter& adapter, uint64_t seed);

// Sets every A and B value to zero (gradient accumulators).
void ZeroLoraAdapter(model::LoraAdapter& adapter);

}  // namespace bora::train
