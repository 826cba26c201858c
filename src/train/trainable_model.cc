// Training forward with activation capture and the explicit backward, block by block.
#include "train/trainable_model.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/memory_info.h"
#include "base/random.h"
#include "model/memory_plan.h"
#include "model/moe_routing.h"
#include "model/rope_table.h"
#include "ops/gemm.h"
#include "ops/pack_weights.h"

namespace bora::train {

namespace {

struct Linear {
  LoraSaved saved;
};

struct Expert {
  std::vector<int32_t> rows;   // token rows routed to this expert
  std::vector<int32_t> slots;  // which of the token's top-k slots chose it
  std::vector<float> weights;  // routing weight of each routed row
  std::vector<float> x, g, u, a, f;
  Linear w1, w3, w2;
};

struct Layer {
  std::vector<float> h_in, xn, rstd1, q, k, v, o, lse, h_mid, xn2, rstd2;
  std::vector<float> g, u, a;  // dense FFN
  Linear wq, wk, wv, wo, w1, w3, w2;
  std::vector<float> router, chosen_weight;  // MoE
  std::vector<int32_t> chosen;
  std::vector<Expert> experts;
};

// Distinct dropout keys per (step, layer, linear, expert).
uint64_t DropoutKey(uint64_t step_key, int64_t layer, int linear, int64_t expert) {
  uint64_t state = step_key ^ (static_cast<uint64_t>(layer) << 40) ^
                   (static_cast<uint64_t>(linear) << 32) ^ static_cast<uint64_t>(expert + 1);
  return SplitMix64(state);
}

void Zeros(std::vector<float>& buffer, int64_t count) {
  buffer.assign(static_cast<size_t>(count), 0.0f);
}

void AddInPlace(float* target, const float* addend, int64_t count) {
  for (int64_t i = 0; i < count; ++i) target[i] += addend[i];
}

// The adapter's matrices of one block (null where the adapter has none), and the gradient's.
struct LayerLora {
  const model::LoraLayer* lora = nullptr;
  model::LoraLayer* grad = nullptr;

  const model::LoraMatrix* Get(model::LoraMatrix model::LoraLayer::*member) const {
    return lora ? &(lora->*member) : nullptr;
  }
  model::LoraMatrix* Grad(model::LoraMatrix model::LoraLayer::*member) const {
    return grad ? &(grad->*member) : nullptr;
  }
  const model::LoraExpert* Expert(int64_t e) const {
    if (!lora) return nullptr;
    if (e < 0) return &lora->ffn;
    return e < static_cast<int64_t>(lora->experts.size()) ? &lora->experts[e] : nullptr;
  }
  model::LoraExpert* ExpertGrad(int64_t e) const {
    if (!grad) return nullptr;
    if (e < 0) return &grad->ffn;
    return e < static_cast<int64_t>(grad->experts.size()) ? &grad->experts[e] : nullptr;
  }
};

// Everything one forward/backward pass over a batch reads.
struct Pass {
  const formats::ModelParams& p;
  const model::ModelWeights& weights;
  ops::ComputeContext& ctx;
  const float* rope;
  const float* query_scale;  // [max positions] llama-4 temperature, null without it
  const TrainingBatch& batch;
  LoraSettings settings;
  uint64_t step_key;
  int64_t rows;
  AttentionGeometry geometry;

  void Linear(const float* x, int64_t count, const MatrixView& w, const model::LoraMatrix* lora,
              uint64_t key, float* y, train::Linear& state) const {
    LoraLinearForward(ctx, x, count, w, lora, settings, key, y, &state.saved);
  }
  void LinearBack(const float* x, int64_t count, const MatrixView& w, const model::LoraMatrix* lora,
                  uint64_t key, const train::Linear& state, const float* dy, float* dx,
                  model::LoraMatrix* grad) const {
    LoraLinearBackward(ctx, x, count, w, lora, settings, key, state.saved, dy, dx, grad);
  }

  // SwiGLU FFN of one expert (or the dense FFN: expert -1) over `count` rows of x.
  void FfnForward(int64_t layer, int64_t expert, const model::ExpertWeights& w,
                  const model::LoraExpert* lora, const float* x, int64_t count,
                  std::vector<float>& g, std::vector<float>& u, std::vector<float>& a, float* out,
                  train::Linear& s1, train::Linear& s3, train::Linear& s2) const {
    Zeros(g, count * p.hidden_dim);
    Zeros(u, count * p.hidden_dim);
    Zeros(a, count * p.hidden_dim);
    Linear(x, count, w.w1, lora ? &lora->w1 : nullptr, DropoutKey(step_key, layer, 4, expert),
           g.data(), s1);
    Linear(x, count, w.w3, lora ? &lora->w3 : nullptr, DropoutKey(step_key, layer, 6, expert),
           u.data(), s3);
    SwiGluForward(ctx, g.data(), u.data(), a.data(), count * p.hidden_dim);
    Linear(a.data(), count, w.w2, lora ? &lora->w2 : nullptr,
           DropoutKey(step_key, layer, 5, expert), out, s2);
  }

  // dx (+=) from d_out through one FFN.
  void FfnBackward(int64_t layer, int64_t expert, const model::ExpertWeights& w,
                   const model::LoraExpert* lora, model::LoraExpert* grad, const float* x,
                   int64_t count, const std::vector<float>& g, const std::vector<float>& u,
                   const std::vector<float>& a, const float* d_out, float* dx,
                   const train::Linear& s1, const train::Linear& s3,
                   const train::Linear& s2) const {
    const int64_t n = count * p.hidden_dim;
    std::vector<float> da(static_cast<size_t>(n), 0.0f), dg(static_cast<size_t>(n)),
        du(static_cast<size_t>(n));
    LinearBack(a.data(), count, w.w2, lora ? &lora->w2 : nullptr,
               DropoutKey(step_key, layer, 5, expert), s2, d_out, da.data(),
               grad ? &grad->w2 : nullptr);
    SwiGluBackward(ctx, g.data(), u.data(), da.data(), dg.data(), du.data(), n);
    LinearBack(x, count, w.w1, lora ? &lora->w1 : nullptr, DropoutKey(step_key, layer, 4, expert),
               s1, dg.data(), dx, grad ? &grad->w1 : nullptr);
    LinearBack(x, count, w.w3, lora ? &lora->w3 : nullptr, DropoutKey(step_key, layer, 6, expert),
               s3, du.data(), dx, grad ? &grad->w3 : nullptr);
  }

  // h [rows, dim] in: the block's input; out: its output. Saves what the backward needs in s.
  void LayerForward(int64_t layer, const LayerLora& lora, float* h, Layer& s) const {
    const model::LayerWeights& w = weights.layers[layer];
    const int64_t dim = p.dim, q_width = p.n_heads * p.head_dim,
                  kv_width = p.n_kv_heads * p.head_dim;
    const float eps = static_cast<float>(p.norm_eps);
    s.h_in.assign(h, h + rows * dim);
    Zeros(s.xn, rows * dim);
    Zeros(s.rstd1, rows);
    RmsNormForward(ctx, h, w.attention_norm.data(), s.xn.data(), s.rstd1.data(), rows, dim, eps);
    Zeros(s.q, rows * q_width);
    Zeros(s.k, rows * kv_width);
    Zeros(s.v, rows * kv_width);
    using L = model::LoraLayer;
    Linear(s.xn.data(), rows, w.wq, lora.Get(&L::wq), DropoutKey(step_key, layer, 0, -1),
           s.q.data(), s.wq);
    Linear(s.xn.data(), rows, w.wk, lora.Get(&L::wk), DropoutKey(step_key, layer, 1, -1),
           s.k.data(), s.wk);
    Linear(s.xn.data(), rows, w.wv, lora.Get(&L::wv), DropoutKey(step_key, layer, 2, -1),
           s.v.data(), s.wv);
    RopeRows(s.q.data(), rows, p.n_heads, p.head_dim, batch.positions, rope, false);
    RopeRows(s.k.data(), rows, p.n_kv_heads, p.head_dim, batch.positions, rope, false);
    // llama-4 temperature on the rotated queries (keys unscaled), per position in the block.
    if (query_scale != nullptr) ScaleRows(s.q.data(), rows, q_width, batch.positions, query_scale);
    Zeros(s.o, rows * q_width);
    Zeros(s.lse, rows * p.n_heads);
    AttentionForward(ctx, geometry, s.q.data(), s.k.data(), s.v.data(), s.o.data(), s.lse.data());
    std::vector<float> out(static_cast<size_t>(rows * dim));
    Linear(s.o.data(), rows, w.wo, lora.Get(&L::wo), DropoutKey(step_key, layer, 3, -1), out.data(),
           s.wo);
    AddInPlace(h, out.data(), rows * dim);
    s.h_mid.assign(h, h + rows * dim);
    Zeros(s.xn2, rows * dim);
    Zeros(s.rstd2, rows);
    RmsNormForward(ctx, h, w.ffn_norm.data(), s.xn2.data(), s.rstd2.data(), rows, dim, eps);
    if (!p.moe) {
      FfnForward(layer, -1, w.ffn, lora.Expert(-1), s.xn2.data(), rows, s.g, s.u, s.a, out.data(),
                 s.w1, s.w3, s.w2);
      AddInPlace(h, out.data(), rows * dim);
      return;
    }
    // Mixtral: route, then each expert over its rows in expert order (as inference sums them).
    const int64_t experts = p.moe->num_experts, top_k = p.moe->num_experts_per_tok;
    Zeros(s.router, rows * experts);
    LoraLinearForward(ctx, s.xn2.data(), rows, w.gate, nullptr, settings, 0, s.router.data(),
                      nullptr);
    s.chosen.assign(static_cast<size_t>(rows * top_k), 0);
    Zeros(s.chosen_weight, rows * top_k);
    for (int64_t t = 0; t < rows; ++t) {
      model::RouteTopK(s.router.data() + t * experts, experts, top_k, s.chosen.data() + t * top_k,
                       s.chosen_weight.data() + t * top_k);
    }
    std::fill(out.begin(), out.end(), 0.0f);
    s.experts.resize(static_cast<size_t>(experts));
    for (int64_t e = 0; e < experts; ++e) {
      Expert& x = s.experts[e];
      x.rows.clear();
      x.slots.clear();
      x.weights.clear();
      for (int64_t t = 0; t < rows; ++t) {
        for (int64_t slot = 0; slot < top_k; ++slot) {
          if (s.chosen[t * top_k + slot] != e) continue;
          x.rows.push_back(static_cast<int32_t>(t));
          x.slots.push_back(static_cast<int32_t>(slot));
          x.weights.push_back(s.chosen_weight[t * top_k + slot]);
        }
      }
      const int64_t count = static_cast<int64_t>(x.rows.size());
      if (count == 0) continue;
      Zeros(x.x, count * dim);
      for (int64_t r = 0; r < count; ++r) {
        std::memcpy(x.x.data() + r * dim, s.xn2.data() + x.rows[r] * dim, sizeof(float) * dim);
      }
      Zeros(x.f, count * dim);
      FfnForward(layer, e, w.experts[e], lora.Expert(e), x.x.data(), count, x.g, x.u, x.a,
                 x.f.data(), x.w1, x.w3, x.w2);
      for (int64_t r = 0; r < count; ++r) {
        float* target = out.data() + x.rows[r] * dim;
        const float* source = x.f.data() + r * dim;
        for (int64_t i = 0; i < dim; ++i) target[i] += x.weights[r] * source[i];
      }
    }
    AddInPlace(h, out.data(), rows * dim);
  }

  // dh in: gradient of the loss with respect to the block's output; out: to its input.
  void LayerBackward(int64_t layer, const LayerLora& lora, const Layer& s, float* dh) const {
    const model::LayerWeights& w = weights.layers[layer];
    const int64_t dim = p.dim, q_width = p.n_heads * p.head_dim,
                  kv_width = p.n_kv_heads * p.head_dim;
    std::vector<float> dxn2(static_cast<size_t>(rows * dim), 0.0f);
    if (!p.moe) {
      FfnBackward(layer, -1, w.ffn, lora.Expert(-1), lora.ExpertGrad(-1), s.xn2.data(), rows, s.g,
                  s.u, s.a, dh, dxn2.data(), s.w1, s.w3, s.w2);
    } else {
      const int64_t experts = p.moe->num_experts, top_k = p.moe->num_experts_per_tok;
      std::vector<float> d_weights(static_cast<size_t>(rows * top_k), 0.0f);
      for (int64_t e = 0; e < experts; ++e) {
        const Expert& x = s.experts[e];
        const int64_t count = static_cast<int64_t>(x.rows.size());
        if (count == 0) continue;
        std::vector<float> d_out(static_cast<size_t>(count * dim)),
            dx(static_cast<size_t>(count * dim), 0.0f);
        for (int64_t r = 0; r < count; ++r) {
          const float* g_row = dh + x.rows[r] * dim;
          const float* f_row = x.f.data() + r * dim;
          double dot = 0.0;
          for (int64_t i = 0; i < dim; ++i) {
            d_out[r * dim + i] = x.weights[r] * g_row[i];
            dot += static_cast<double>(g_row[i]) * f_row[i];
          }
          d_weights[x.rows[r] * top_k + x.slots[r]] = static_cast<float>(dot);
        }
        FfnBackward(layer, e, w.experts[e], lora.Expert(e), lora.ExpertGrad(e), x.x.data(), count,
                    x.g, x.u, x.a, d_out.data(), dx.data(), x.w1, x.w3, x.w2);
        for (int64_t r = 0; r < count; ++r) {
          AddInPlace(dxn2.data() + x.rows[r] * dim, dx.data() + r * dim, dim);
        }
      }
      std::vector<float> d_router(static_cast<size_t>(rows * experts));
      for (int64_t t = 0; t < rows; ++t) {
        RouterSoftmaxBackward(s.chosen.data() + t * top_k, s.chosen_weight.data() + t * top_k,
                              d_weights.data() + t * top_k, top_k, d_router.data() + t * experts,
                              experts);
      }
      ops::WeightGemm(ctx, d_router.data(), rows, experts, w.gate, true, dxn2.data(), dim, true);
    }
    RmsNormBackward(ctx, s.h_mid.data(), w.ffn_norm.data(), s.rstd2.data(), dxn2.data(), dh, rows,
                    dim);

    using L = model::LoraLayer;
    std::vector<float> d_o(static_cast<size_t>(rows * q_width), 0.0f);
    LinearBack(s.o.data(), rows, w.wo, lora.Get(&L::wo), DropoutKey(step_key, layer, 3, -1), s.wo,
               dh, d_o.data(), lora.Grad(&L::wo));
    std::vector<float> dq(static_cast<size_t>(rows * q_width)),
        dk(static_cast<size_t>(rows * kv_width)), dv(static_cast<size_t>(rows * kv_width));
    AttentionBackward(ctx, geometry, s.q.data(), s.k.data(), s.v.data(), s.o.data(), s.lse.data(),
                      d_o.data(), dq.data(), dk.data(), dv.data());
    if (query_scale != nullptr) ScaleRows(dq.data(), rows, q_width, batch.positions, query_scale);
    RopeRows(dq.data(), rows, p.n_heads, p.head_dim, batch.positions, rope, true);
    RopeRows(dk.data(), rows, p.n_kv_heads, p.head_dim, batch.positions, rope, true);
    std::vector<float> dxn(static_cast<size_t>(rows * dim), 0.0f);
    LinearBack(s.xn.data(), rows, w.wq, lora.Get(&L::wq), DropoutKey(step_key, layer, 0, -1), s.wq,
               dq.data(), dxn.data(), lora.Grad(&L::wq));
    LinearBack(s.xn.data(), rows, w.wk, lora.Get(&L::wk), DropoutKey(step_key, layer, 1, -1), s.wk,
               dk.data(), dxn.data(), lora.Grad(&L::wk));
    LinearBack(s.xn.data(), rows, w.wv, lora.Get(&L::wv), DropoutKey(step_key, layer, 2, -1), s.wv,
               dv.data(), dxn.data(), lora.Grad(&L::wv));
    RmsNormBackward(ctx, s.h_in.data(), w.attention_norm.data(), s.rstd1.data(), dxn.data(), dh,
                    rows, dim);
  }
};

}  // namespace

TrainableModel::TrainableModel(formats::ModelFolder folder, model::ModelWeights weights,
                               std::unique_ptr<ops::ComputeContext> ctx, int64_t max_positions,
                               bool mixed_precision)
    : folder_(std::move(folder)),
      weights_(std::move(weights)),
      ctx_(std::move(ctx)),
      max_positions_(max_positions),
      precision_(mixed_precision ? ops::GemmPrecision::kBf16 : ops::GemmPrecision::kF32),
      rope_cos_sin_(model::RopeTable(folder_.params, max_positions)) {
  if (model::HasQueryScale(folder_.params)) {
    query_scale_.resize(static_cast<size_t>(max_positions));
    for (int64_t pos = 0; pos < max_positions; ++pos) query_scale_[pos] = model::QueryScale(folder_.params, pos);
  }
}

void TrainableModel::CheckBatch(const TrainingBatch& batch) const {
  const int64_t rows = batch.rows();
  if (rows == 0) throw InvalidArgument("training batch is empty");
  if (static_cast<int64_t>(batch.targets.size()) != rows ||
      static_cast<int64_t>(batch.mask.size()) != rows ||
      static_cast<int64_t>(batch.positions.size()) != rows) {
    throw InvalidArgument("training batch: inputs, targets, mask and positions differ in length");
  }
  const int64_t vocab = params().vocab_size;
  for (int64_t t = 0; t < rows; ++t) {
    if (batch.inputs[t] < 0 || batch.inputs[t] >= vocab) {
      throw InvalidArgument("training input id " + std::to_string(batch.inputs[t]) +
                            " is outside the vocabulary");
    }
    if (batch.positions[t] < 0 || batch.positions[t] >= max_positions_) {
      throw InvalidArgument("training position " + std::to_string(batch.positions[t]) +
                            " exceeds the sequence length the trainer was set up for");
    }
  }
}

CrossEntropyResult TrainableModel::Run(const model::LoraAdapter& lora, const TrainingBatch& batch,
                                       model::LoraAdapter* grads, double loss_scale,
                                       uint64_t step_key) {
  CheckBatch(batch);
  const formats::ModelParams& p = params();
  const int64_t rows = batch.rows(), dim = p.dim;
  if (grads != nullptr && grads->layers.size() != lora.layers.size()) {
    throw InvalidArgument("gradient adapter does not match the adapter");
  }
  Pass pass{p,
            weights_,
            *ctx_,
            rope_cos_sin_.data(),
            query_scale_.empty() ? nullptr : query_scale_.data(),
            batch,
            LoraSettings{lora.scaling, grads ? lora.dropout : 0.0f, precision_},
            step_key,
            rows,
            AttentionGeometry{p.n_heads, p.n_kv_heads, p.head_dim, batch.block_starts, rows}};
  std::vector<float> h(static_cast<size_t>(rows * dim));
  for (int64_t t = 0; t < rows; ++t) {
    ops::MatrixRowToF32(weights_.tok_embeddings, batch.inputs[t], h.data() + t * dim);
  }
  // Evaluation keeps one block's activations at a time; training keeps every block's.
  std::vector<Layer> layers(grads != nullptr ? static_cast<size_t>(p.n_layers) : 1);
  auto lora_of = [&](int64_t layer) {
    LayerLora parts;
    if (layer < static_cast<int64_t>(lora.layers.size())) parts.lora = &lora.layers[layer];
    if (grads != nullptr && layer < static_cast<int64_t>(grads->layers.size())) {
      parts.grad = &grads->layers[layer];
    }
    return parts;
  };
  for (int64_t layer = 0; layer < p.n_layers; ++layer) {
    pass.LayerForward(layer, lora_of(layer), h.data(), layers[grads != nullptr ? layer : 0]);
  }
  std::vector<float> normed(static_cast<size_t>(rows * dim)), rstd(static_cast<size_t>(rows));
  RmsNormForward(*ctx_, h.data(), weights_.norm.data(), normed.data(), rstd.data(), rows, dim,
                 static_cast<float>(p.norm_eps));
  std::vector<float> d_normed;
  if (grads != nullptr) d_normed.assign(static_cast<size_t>(rows * dim), 0.0f);
  const CrossEntropyResult result =
      CrossEntropy(*ctx_, normed.data(), rows, dim, weights_.output, batch.targets.data(),
                   batch.mask.data(), loss_scale, grads ? d_normed.data() : nullptr, precision_);
  if (grads == nullptr) return result;
  std::vector<float> dh(static_cast<size_t>(rows * dim), 0.0f);
  RmsNormBackward(*ctx_, h.data(), weights_.norm.data(), rstd.data(), d_normed.data(), dh.data(),
                  rows, dim);
  for (int64_t layer = p.n_layers - 1; layer >= 0; --layer) {
    pass.LayerBackward(layer, lora_of(layer), layers[layer], dh.data());
  }
  return result;
}

std::unique_ptr<TrainableModel> LoadTrainableModel(const std::string& dir,
                                                   const TrainModelOptions& options) {
  formats::ModelFolder folder = formats::InspectModelFolder(dir);
  auto ctx = std::make_unique<ops::ComputeContext>(options.threads);
  if (folder.params.quantization == formats::WeightQuantization::kFp8) {
    model::CheckMemoryFits(model::PlanMemory(folder, 1, options.dtype.value_or(DType::kBF16)), ReadMemoryBudget(),
                           dir);
  }
  const bool gguf = folder.layout == formats::CheckpointLayout::kGguf;
  if (gguf) model::CheckMemoryFits(model::PlanGgufMemory(folder, 1, options.dtype), ReadMemoryBudget(), dir);
  // A GGUF base is opened as for inference: its own blocks (q8/q4) unless a --dtype is asked for.
  model::ModelWeights weights =
      model::LoadModelWeights(folder, model::Fp8DequantTarget(options.dtype), model::GgufDecodeFor(options.dtype));
  DType target = options.dtype.value_or(weights.compute_dtype);
  // FP8 bases are already dequantized to the f32 or bf16 asked for.
  if (folder.params.quantization == formats::WeightQuantization::kFp8 &&
      target == model::Fp8DequantTarget(options.dtype)) {
    target = weights.compute_dtype;
  }
  // Weights at their frozen size; activations are checked by the trainer per batch size.
  model::MemoryPlan plan =
      model::PlanMemory(folder, 1, weights.compute_dtype == target ? DType::kF32 : target);
  if (!gguf) model::CheckMemoryFits(plan, ReadMemoryBudget(), dir);
  if (target == weights.compute_dtype) {
    model::MakeWeightsResident(weights, *ctx);
  } else {
    model::ConvertModelWeights(weights, target, *ctx);
  }
  return std::make_unique<TrainableModel>(std::move(folder), std::move(weights), std::move(ctx),
                                          options.max_positions, options.mixed_precision);
}

}  // namespace bora::train
