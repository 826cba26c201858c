// Per-layer weight views of a Mistral/Mixtral model, in Mistral-native layout (y = x * W^T),
// and their conversion to the compute dtype chosen at load (bf16, q8, q4).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "formats/model_folder.h"
#include "ops/compute_context.h"
#include "tensor/matrix_view.h"

namespace bora::model {

struct ExpertWeights {
  MatrixView w1;  // gate  [hidden_dim, dim]
  MatrixView w2;  // down  [dim, hidden_dim]
  MatrixView w3;  // up    [hidden_dim, dim]
};

struct LayerWeights {
  std::vector<float> attention_norm;  // [dim] f32 (upcast once at load)
  std::vector<float> ffn_norm;        // [dim]
  MatrixView wq;                      // [n_heads*head_dim, dim]
  MatrixView wk;                      // [n_kv_heads*head_dim, dim]
  MatrixView wv;                      // [n_kv_heads*head_dim, dim]
  MatrixView wo;                      // [dim, n_heads*head_dim]
  ExpertWeights ffn;                  // dense models
  MatrixView gate;                    // MoE router [num_experts, dim]
  std::vector<ExpertWeights> experts;  // MoE experts
};

// Weights stay where the checkpoint has them (mmapped BF16/F16/F32, or q8/q4 planes of a
// packed folder) until converted; only the norm vectors are upcast. `tensors` owns the
// mappings and the un-permuted HF q/k copies; `owned` the converted matrices.
struct ModelWeights {
  formats::CheckpointTensors tensors;
  MatrixView tok_embeddings;  // [vocab, dim]
  MatrixView output;          // [vocab, dim]
  std::vector<float> norm;    // [dim]
  std::vector<LayerWeights> layers;
  std::vector<AlignedBuffer> owned;
  // kF32 (dense weights as stored, exact f32 upcast), kBF16, kQ8 or kQ4.
  DType compute_dtype = DType::kF32;

  // Calls `visit(MatrixView&)` for every matrix, embeddings and output included.
  template <typename Visit>
  void ForEachMatrix(Visit&& visit) {
    visit(tok_embeddings);
    for (LayerWeights& layer : layers) {
      for (MatrixView* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn.w1, &layer.ffn.w2,
                            &layer.ffn.w3, &layer.gate}) {
        if (!m->empty()) visit(*m);
      }
      for (ExpertWeights& e : layer.experts) {
        visit(e.w1);
        visit(e.w2);
        visit(e.w3);
      }
    }
    visit(output);
  }
};

// Maps every tensor the architecture needs, checking names and shapes against the params,
// and rejects tensors the params do not describe. A matrix may be dense (`name`) or packed
// (`name.q8` / `name.q4` quant planes + `name.q8_scales` / `name.q4_scales`, as written by
// `bora quantize`). Throws FormatError naming the problem.
// FP8 checkpoints are dequantized to `fp8_target` (kF32 exact, or kBF16) while opening.
// GGUF files are opened as `gguf_decode` says (formats::GgufDecode).
ModelWeights LoadModelWeights(const formats::ModelFolder& folder, DType fp8_target = DType::kBF16,
                              formats::GgufDecode gguf_decode = formats::GgufDecode::kNative);

// How a GGUF file is opened for a requested --dtype: as bora decodes it natively when none is
// asked for, exactly dequantized to f32 (then converted) when one is.
formats::GgufDecode GgufDecodeFor(std::optional<DType> requested);

// "f32", "bf16", "q8", "q4" <-> dtype; ParseWeightDType throws InvalidArgument otherwise.
DType ParseWeightDType(const std::string& name);
std::string WeightDTypeName(DType dtype);

// Which dtype each matrix gets for a model-wide `target`: q4 keeps the output projection at q8
// (as llama.cpp's Q4_0 keeps it at higher precision) and every target keeps the MoE router
// dense (routing decisions are sensitive to it).
DType TargetFor(DType target, const MatrixView& matrix, bool is_output, bool is_router);

// Converts a dense model to `target` (kBF16, kQ8, kQ4; kF32 leaves it as is) with a progress
// bar, then drops the mappings of the source files. Throws InvalidArgument when the weights are
// already packed in another format (re-quantizing a quantized model loses quality twice).
void ConvertModelWeights(ModelWeights& weights, DType target, ops::ComputeContext& ctx);

// Copies the weight files the matrices point into to anonymous memory backed by transparent
// huge pages (pread, in parallel, with a progress bar) and re-points the views there: decode
// streams GiBs per token and 4 KiB file pages cost a TLB miss every 4 KiB. Pages of the
// mapping are never touched, so resident memory stays one copy of the weights.
void MakeWeightsResident(ModelWeights& weights, ops::ComputeContext& ctx);

// Bytes of every matrix in its current format (the bytes a decode step streams, embeddings
// aside, plus the embedding table).
uint64_t MatrixBytesOf(ModelWeights& weights);

}  // namespace bora::model
