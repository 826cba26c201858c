// A Mistral/Mixtral model with frozen base weights (f32, bf16, q8 or q4) and a LoRA adapter:
// the training forward pass with activation capture and its explicit backward, over a packed
// micro-batch with block-diagonal causal attention.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "formats/model_folder.h"
#include "model/lora_adapter.h"
#include "model/weights.h"
#include "ops/compute_context.h"
#include "train/lora_linear.h"
#include "train/train_ops.h"

namespace bora::train {

// Rows of one micro-batch: packed sequences stacked. positions restart at 0 in every block;
// block_starts are the row offsets of the blocks (first 0, ascending); a row attends to the
// rows of its block up to itself. targets/mask: the next token and whether it is trained on.
struct TrainingBatch {
  std::vector<int32_t> inputs;
  std::vector<int32_t> targets;
  std::vector<uint8_t> mask;
  std::vector<int32_t> positions;
  std::vector<int32_t> block_starts;
  int64_t rows() const { return static_cast<int64_t>(inputs.size()); }
};

struct TrainModelOptions {
  int threads = 0;               // 0: every CPU this process may use
  std::optional<DType> dtype;    // frozen base format: kF32, kBF16, kQ8, kQ4; none: as stored
  int64_t max_positions = 4096;  // longest block (RoPE table size)
  // Mixed precision: bf16 activations in the frozen weights' products when the base is bf16 or
  // q8/q4 and the CPU has AVX512-BF16 (as PyTorch's bf16 training); LoRA, norms, attention,
  // softmax and the optimizer stay f32.
  bool mixed_precision = false;
};

class TrainableModel {
 public:
  TrainableModel(formats::ModelFolder folder, model::ModelWeights weights,
                 std::unique_ptr<ops::ComputeContext> ctx, int64_t max_positions,
                 bool mixed_precision = false);

  const formats::ModelParams& params() const { return folder_.params; }
  const formats::ModelFolder& folder() const { return folder_; }
  ops::ComputeContext& compute() { return *ctx_; }
  DType base_dtype() const { return weights_.compute_dtype; }
  int64_t max_positions() const { return max_positions_; }
  // Whether the frozen products run in bf16 (mixed precision asked for, and possible here).
  bool bf16_compute() const {
    return precision_ == ops::GemmPrecision::kBf16 && ops::UsesBf16Gemm(*ctx_, weights_.output);
  }

  // Runs the batch. Returns the summed masked cross-entropy and the count of masked targets.
  // With `grads` (shaped like `lora`), also runs the backward of `loss_sum * loss_scale` and
  // adds the adapter's gradients to it. `step_key` seeds this step's dropout masks.
  CrossEntropyResult Run(const model::LoraAdapter& lora, const TrainingBatch& batch,
                         model::LoraAdapter* grads, double loss_scale, uint64_t step_key);

 private:
  void CheckBatch(const TrainingBatch& batch) const;

  formats::ModelFolder folder_;
  model::ModelWeights weights_;
  std::unique_ptr<ops::ComputeContext> ctx_;
  int64_t max_positions_;
  ops::GemmPrecision precision_;
  std::vector<float> rope_cos_sin_;  // [max_positions, head_dim/2, 2]
  std::vector<float> query_scale_;   // [max_positions] llama-4 query temperature; empty without it
};

// Loads `dir` with its base weights frozen in `options.dtype` after the memory check.
std::unique_ptr<TrainableModel> LoadTrainableModel(const std::string& dir,
                                                   const TrainModelOptions& options);

}  // namespace bora::train
