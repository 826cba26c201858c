// `bora bench --allreduce` under mpirun: the cost of the tensor-parallel collectives at a
// model's message sizes (dim floats per token), measured on the group's own links.
#pragma once

#include <cstdint>

#include "dist/communicator.h"
#include "formats/model_params.h"

namespace bora::app {

// Collective: every rank calls it. Rank 0 prints one line per size (JSON with `json`), and the
// decode-token estimate: 2 all-reduces of dim floats per layer plus the logits gather.
void RunAllReduceBench(dist::Communicator& comm, const formats::ModelParams& params, int64_t prompt_tokens,
                       int repetitions, bool json);

}  // namespace bora::app
