// Mixtral router: top-k experts on the gate logits, softmax over the k selected logits.
#pragma once

#include <cstdint>

namespace bora::model {

// logits: [experts]; writes the k chosen expert indices in descending logit order (ties: lower
// index first; NaN loses) and their weights softmax(logits[chosen]) (sum 1).
void RouteTopK(const float* logits, int64_t experts, int64_t top_k, int32_t* chosen, float* weights);

}  // namespace bora::model
