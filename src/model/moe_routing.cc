// Mixtral router: top-k then softmax over the selected logits.
#include "model/moe_routing.h"

#include <algorithm>
#include <cmath>

namespace bora::model {

void RouteTopK(const float* logits, int64_t experts, int64_t top_k, int32_t* chosen, float* weights) {
  for (int64_t slot = 0; slot < top_k; ++slot) {
    int32_t best = -1;
    for (int64_t e = 0; e < experts; ++e) {
      if (std::find(chosen, chosen + slot, static_cast<int32_t>(e)) != chosen + slot) continue;
      if (best < 0 || logits[e] > logits[best] || (std::isnan(logits[best]) && !std::isnan(logits[e]))) {
        best = static_cast<int32_t>(e);
      }
    }
    chosen[slot] = best;
  }
  // Softmax over the selected logits (the first is the largest), in float32 like the reference.
  const float max_logit = logits[chosen[0]];
  float sum = 0.0f;
  for (int64_t slot = 0; slot < top_k; ++slot) {
    weights[slot] = std::exp(logits[chosen[slot]] - max_logit);
    sum += weights[slot];
  }
  for (int64_t slot = 0; slot < top_k; ++slot) weights[slot] /= sum;
}

}  // namespace bora::model
