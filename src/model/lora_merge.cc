// Merging a LoRA adapter into dense weights.
#include "model/lora_merge.h"

#include <cstring>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/error.h"
#include "base/float16.h"
#include "base/progress.h"
#include "kernels/convert.h"

namespace bora::model {
namespace {

// Rewrites `matrix` in `dtype` into owned memory, adding scaling * B A to each row when `lora`
// is non-empty. Rows are independent, so threads split them.
void MergeMatrix(MatrixView& matrix, const LoraMatrix* lora, float scaling, DType dtype,
                 std::vector<AlignedBuffer>& owned, ops::ComputeContext& ctx) {
  const int64_t rows = matrix.rows, cols = matrix.cols;
  AlignedBuffer storage(static_cast<size_t>(rows * cols) * DTypeSize(dtype));
  uint8_t* out = storage.data();
  const MatrixView source = matrix;
  const bool adapted = lora != nullptr && !lora->empty();
  ctx.pool().ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<float> delta(static_cast<size_t>(cols));
    for (int64_t o = begin; o < end; ++o) {
      kernels::RowToF32(source.dtype, source.RowBytes(o), row.data(), cols);
      if (adapted) {
        // delta = sum_r B[o, r] A[r, :] in f32, then W + scaling * delta (merge_lora.py's order).
        std::fill(delta.begin(), delta.end(), 0.0f);
        const float* b = lora->b.data() + o * lora->rank;
        for (int64_t r = 0; r < lora->rank; ++r) {
          const float* a = lora->a.data() + r * cols;
          const float weight = b[r];
          for (int64_t i = 0; i < cols; ++i) delta[i] += weight * a[i];
        }
        for (int64_t i = 0; i < cols; ++i) row[i] += scaling * delta[i];
      }
      if (dtype == DType::kF32) {
        std::memcpy(out + o * cols * 4, row.data(), static_cast<size_t>(cols) * 4);
      } else {
        auto* target = reinterpret_cast<uint16_t*>(out + o * cols * 2);
        for (int64_t i = 0; i < cols; ++i) target[i] = F32ToBf16(row[i]);
      }
    }
  });
  matrix = MatrixView{dtype, storage.data(), rows, cols, nullptr};
  owned.push_back(std::move(storage));
}

}  // namespace

void MergeLora(const LoraAdapter& adapter, const formats::ModelParams& params,
               ModelWeights& weights, DType dtype, ops::ComputeContext& ctx) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    throw InvalidArgument("a merged model is written as f32 or bf16");
  }
  ValidateLoraAdapter(adapter, params);
  uint64_t matrices = 0;
  bool packed = false;
  weights.ForEachMatrix([&](MatrixView& m) {
    ++matrices;
    packed = packed || m.packed();
  });
  if (packed) {
    throw InvalidArgument("the base model's weights are packed as " +
                          WeightDTypeName(weights.compute_dtype) +
                          "; merge the adapter into the original bf16/f32 checkpoint");
  }
  ProgressBar progress("merging the LoRA adapter", matrices, /*bytes_unit=*/false);
  auto merge = [&](MatrixView& m, const LoraMatrix* lora) {
    MergeMatrix(m, lora, adapter.scaling, dtype, weights.owned, ctx);
    progress.Advance(1);
  };
  merge(weights.tok_embeddings, nullptr);
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    LayerWeights& layer = weights.layers[i];
    const LoraLayer& lora = adapter.layers[i];
    merge(layer.wq, &lora.wq);
    merge(layer.wk, &lora.wk);
    merge(layer.wv, &lora.wv);
    merge(layer.wo, &lora.wo);
    if (!layer.ffn.w1.empty()) {
      merge(layer.ffn.w1, &lora.ffn.w1);
      merge(layer.ffn.w2, &lora.ffn.w2);
      merge(layer.ffn.w3, &lora.ffn.w3);
    }
    if (!layer.gate.empty()) merge(layer.gate, nullptr);
    for (size_t e = 0; e < layer.experts.size(); ++e) {
      merge(layer.experts[e].w1, &lora.experts[e].w1);
      merge(layer.experts[e].w2, &lora.experts[e].w2);
      merge(layer.experts[e].w3, &lora.experts[e].w3);
    }
  }
  merge(weights.output, nullptr);
  progress.Finish();
  weights.tensors = formats::CheckpointTensors();  // every view now points into `owned`
  weights.compute_dtype = dtype == DType::kF32 ? DType::kF32 : DType::kBF16;
}

}  // namespace bora::model
