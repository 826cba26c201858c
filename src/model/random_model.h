// Deterministic, seeded random-weight model folders in the Mistral-native layout (BF16), for the
// demo, tests that need a model matching a real tokenizer, and benchmarks at real geometry.
#pragma once

#include <cstdint>
#include <string>

#include "base/thread_pool.h"
#include "formats/model_params.h"

namespace bora::model {

// Geometry of a named preset: "tiny", "1b", "mistral-7b"; throws InvalidArgument otherwise.
// Vocabulary 32768, rope_theta 1e6, norm_eps 1e-5, no sliding window, dense.
formats::ModelParams PresetParams(const std::string& preset);

// Writes params.json and consolidated.safetensors into `out_dir` (created if needed). Values
// depend only on (params, seed, tensor name), never on the thread count. Init as the
// reference models: embeddings N(0, 0.02); wq/wk/wv/w1/w3/gate N(0, 1/sqrt(fan_in));
// wo/w2 N(0, 1/sqrt(fan_in)/sqrt(2 n_layers)); output N(0, 1/sqrt(dim)); norms 1 + 0.1 N(0,1).
void WriteRandomModel(const formats::ModelParams& params, uint64_t seed, const std::string& out_dir,
                      ThreadPool& pool, bool show_progress = true);

}  // namespace bora::model
