// Tensor parallelism's split of a model over N ranks (Megatron-LM style): which rows and
// columns of every matrix, which heads, which vocabulary rows, and which part of a LoRA adapter
// each rank holds.
#pragma once

#include <cstdint>
#include <string>

#include "formats/model_params.h"
#include "model/lora_adapter.h"
#include "model/weights.h"

namespace bora::model {

// This process's place in a tensor-parallel group; {0, 1} is the whole model.
struct ShardLayout {
  int rank = 0;
  int ranks = 1;
  bool whole() const { return ranks == 1; }
};

// A half-open index range [begin, end).
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Rank `rank`'s share of `total` indices split in `ranks` contiguous pieces whose boundaries are
// multiples of `granule` (the last ends at `total`); pieces differ by at most one granule.
IndexRange ShardRange(int64_t total, int rank, int ranks, int64_t granule);

// The pieces a model is split into. Query heads and KV heads in groups (rank r: KV heads
// [r*kv/N, (r+1)*kv/N) and the query heads that read them); the feed-forward hidden dimension
// (each expert's, for MoE) in 32-aligned pieces when it is a multiple of 32; the vocabulary
// (output rows) in 16-row pieces.
struct ShardPlan {
  ShardLayout layout;
  IndexRange q_rows;    // rows of wq / columns of wo
  IndexRange kv_rows;   // rows of wk, wv
  IndexRange hidden;    // rows of w1, w3 / columns of w2
  IndexRange vocab;     // rows of the output projection
};

// Throws InvalidArgument when `ranks` does not divide the model's KV heads (the message says
// "KV heads" and lists the rank counts that work) or leaves a rank without feed-forward rows.
void CheckTensorParallel(const formats::ModelParams& params, int ranks);
ShardPlan PlanShard(const formats::ModelParams& params, ShardLayout layout);

// The params one rank computes with: its heads, KV heads and hidden rows; everything else
// (dim, vocabulary, layers, RoPE) as the whole model.
formats::ModelParams ShardParams(const formats::ModelParams& params, const ShardPlan& plan);

// Replaces every matrix of `weights` (in the whole model's shapes) by this rank's slice, copied
// into owned memory: wq/wk/wv/w1/w3 by rows, wo/w2 by columns, the output by vocabulary rows;
// the embedding table and the MoE router whole. Packed matrices are sliced on their panel and
// block boundaries (InvalidArgument when a boundary falls inside one). Afterwards no view
// points into the checkpoint files, which are unmapped: a rank keeps only its part.
void ShardModelWeights(ModelWeights& weights, const ShardPlan& plan);

// This rank's part of an adapter for the whole model: B sliced by rows for wq/wk/wv/w1/w3 (A
// whole), A sliced by columns for wo/w2 (B whole). Each rank's low-rank term then adds to its
// partial product exactly as the base weights do, with no extra messages. Keeps the fingerprint.
LoraAdapter ShardLoraAdapter(const LoraAdapter& adapter, const ShardPlan& plan);

}  // namespace bora::model
