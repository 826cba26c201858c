// Per-layer weight views of a Mistral/Mixtral model, in Mistral-native layout (y = x * W^T).
#pragma once

#include <string>
#include <vector>

#include "formats/model_folder.h"
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

// Weights stay where the checkpoint has them (mmapped BF16/F16/F32); only the norm vectors
// are upcast. `tensors` owns the mappings and the un-permuted HF q/k copies.
struct ModelWeights {
  formats::CheckpointTensors tensors;
  MatrixView tok_embeddings;  // [vocab, dim]
  MatrixView output;          // [vocab, dim]
  std::vector<float> norm;    // [dim]
  std::vector<LayerWeights> layers;
};

// Maps every tensor the architecture needs, checking names and shapes against the params,
// and rejects tensors the params do not describe. Throws FormatError naming the problem.
ModelWeights LoadModelWeights(const formats::ModelFolder& folder);

}  // namespace bora::model
