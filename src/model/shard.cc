// Slicing a model's matrices and LoRA adapters into one tensor-parallel rank's part.
#include "model/shard.h"

#include <cstring>

#include "base/error.h"
#include "kernels/quant/block_quant.h"
#include "ops/pack_weights.h"

namespace bora::model {
namespace {

// Copies rows x cols of `m` (dense: any range; packed: on panel and block boundaries).
ops::OwnedMatrix SliceMatrix(const MatrixView& m, IndexRange rows, IndexRange cols, const char* what) {
  ops::OwnedMatrix out;
  out.view = m;
  out.view.rows = rows.size();
  out.view.cols = cols.size();
  out.storage = AlignedBuffer(ops::MatrixBytes(m.dtype, rows.size(), cols.size()));
  out.view.data = out.storage.data();
  if (!m.packed()) {
    const size_t element = DTypeSize(m.dtype);
    for (int64_t r = 0; r < rows.size(); ++r) {
      std::memcpy(out.storage.data() + r * cols.size() * element,
                  m.RowBytes(rows.begin + r) + cols.begin * element, cols.size() * element);
    }
    return out;
  }
  const int64_t panel = kernels::kPanelRows, block = kernels::kQuantBlock;
  const bool rows_ok = rows.begin % panel == 0 && (rows.end % panel == 0 || rows.end == m.rows);
  if (!rows_ok || cols.begin % block != 0 || (cols.end % block != 0 && cols.end != m.cols)) {
    throw InvalidArgument(std::string("cannot split the packed matrix ") + what + " [" + std::to_string(m.rows) +
                          ", " + std::to_string(m.cols) + "] at rows " + std::to_string(rows.begin) + ".." +
                          std::to_string(rows.end) + ", columns " + std::to_string(cols.begin) + ".." +
                          std::to_string(cols.end) +
                          " (inside a 16-row panel or 32-column block); use fewer ranks or the unquantized checkpoint");
  }
  const kernels::QuantFormat format = m.dtype == DType::kQ8 ? kernels::QuantFormat::kQ8 : kernels::QuantFormat::kQ4;
  const kernels::PackedShape source{format, m.rows, m.cols};
  const kernels::PackedShape target{format, rows.size(), cols.size()};
  const int64_t block_bytes = kernels::QuantBlockBytes(format);
  const auto* quants = static_cast<const uint8_t*>(m.data);
  auto* scales = reinterpret_cast<uint16_t*>(out.storage.data() + target.quant_bytes());
  out.view.scales = scales;
  for (int64_t p = 0; p < target.panels(); ++p) {
    const int64_t from = rows.begin / panel + p;
    const int64_t first_block = from * source.blocks() + cols.begin / block;
    std::memcpy(out.storage.data() + p * target.blocks() * block_bytes, quants + first_block * block_bytes,
                target.blocks() * block_bytes);
    std::memcpy(scales + p * target.blocks() * panel, m.scales + first_block * panel,
                sizeof(uint16_t) * target.blocks() * panel);
  }
  return out;
}

int64_t HiddenGranule(int64_t hidden, int ranks) { return hidden % 32 == 0 && hidden / 32 >= ranks ? 32 : 1; }
int64_t VocabGranule(int64_t vocab, int ranks) { return vocab / 16 >= ranks ? 16 : 1; }

// A: [rank, in] columns `cols`; B: [out, rank] rows `rows`.
LoraMatrix SliceLora(const LoraMatrix& m, IndexRange rows, IndexRange cols) {
  if (m.empty()) return m;
  LoraMatrix out;
  out.rank = m.rank;
  out.in = cols.size();
  out.out = rows.size();
  out.a.resize(static_cast<size_t>(m.rank * cols.size()));
  for (int64_t r = 0; r < m.rank; ++r) {
    std::memcpy(out.a.data() + r * cols.size(), m.a.data() + r * m.in + cols.begin, sizeof(float) * cols.size());
  }
  out.b.assign(m.b.begin() + rows.begin * m.rank, m.b.begin() + rows.end * m.rank);
  return out;
}

}  // namespace

IndexRange ShardRange(int64_t total, int rank, int ranks, int64_t granule) {
  const int64_t units = total / granule;
  auto boundary = [&](int r) { return r >= ranks ? total : (units * r + ranks / 2) / ranks * granule; };
  return IndexRange{boundary(rank), boundary(rank + 1)};
}

void CheckTensorParallel(const formats::ModelParams& params, int ranks) {
  if (ranks < 1) throw InvalidArgument("a tensor-parallel group needs at least one rank");
  if (params.n_kv_heads % ranks != 0) {
    std::string valid;
    for (int64_t n = 1; n <= params.n_kv_heads; ++n) {
      if (params.n_kv_heads % n == 0) valid += (valid.empty() ? "" : ", ") + std::to_string(n);
    }
    throw InvalidArgument(std::to_string(ranks) + " ranks do not divide the model's " +
                          std::to_string(params.n_kv_heads) + " KV heads; run with -np " + valid);
  }
  if (params.hidden_dim < ranks) {
    throw InvalidArgument("the feed-forward hidden dimension " + std::to_string(params.hidden_dim) +
                          " is smaller than " + std::to_string(ranks) + " ranks");
  }
}

ShardPlan PlanShard(const formats::ModelParams& params, ShardLayout layout) {
  CheckTensorParallel(params, layout.ranks);
  ShardPlan plan;
  plan.layout = layout;
  const int64_t kv_per_rank = params.n_kv_heads / layout.ranks;
  const int64_t q_per_rank = params.n_heads / layout.ranks;
  plan.q_rows = {layout.rank * q_per_rank * params.head_dim, (layout.rank + 1) * q_per_rank * params.head_dim};
  plan.kv_rows = {layout.rank * kv_per_rank * params.head_dim, (layout.rank + 1) * kv_per_rank * params.head_dim};
  plan.hidden = ShardRange(params.hidden_dim, layout.rank, layout.ranks, HiddenGranule(params.hidden_dim, layout.ranks));
  plan.vocab = ShardRange(params.vocab_size, layout.rank, layout.ranks, VocabGranule(params.vocab_size, layout.ranks));
  return plan;
}

formats::ModelParams ShardParams(const formats::ModelParams& params, const ShardPlan& plan) {
  formats::ModelParams local = params;
  local.n_heads = params.n_heads / plan.layout.ranks;
  local.n_kv_heads = params.n_kv_heads / plan.layout.ranks;
  local.hidden_dim = plan.hidden.size();
  return local;
}

void ShardModelWeights(ModelWeights& weights, const ShardPlan& plan) {
  if (plan.layout.whole()) return;
  auto slice = [&](MatrixView& m, IndexRange rows, IndexRange cols, const char* what) {
    ops::OwnedMatrix owned = SliceMatrix(m, rows, cols, what);
    m = owned.view;
    weights.owned.push_back(std::move(owned.storage));
  };
  auto all_rows = [](const MatrixView& m) { return IndexRange{0, m.rows}; };
  auto all_cols = [](const MatrixView& m) { return IndexRange{0, m.cols}; };
  auto expert = [&](ExpertWeights& e) {
    slice(e.w1, plan.hidden, all_cols(e.w1), "w1");
    slice(e.w3, plan.hidden, all_cols(e.w3), "w3");
    slice(e.w2, all_rows(e.w2), plan.hidden, "w2");
  };
  slice(weights.tok_embeddings, all_rows(weights.tok_embeddings), all_cols(weights.tok_embeddings), "tok_embeddings");
  slice(weights.output, plan.vocab, all_cols(weights.output), "output");
  for (LayerWeights& layer : weights.layers) {
    slice(layer.wq, plan.q_rows, all_cols(layer.wq), "wq");
    slice(layer.wk, plan.kv_rows, all_cols(layer.wk), "wk");
    slice(layer.wv, plan.kv_rows, all_cols(layer.wv), "wv");
    slice(layer.wo, all_rows(layer.wo), plan.q_rows, "wo");
    if (!layer.gate.empty()) slice(layer.gate, all_rows(layer.gate), all_cols(layer.gate), "gate");
    if (!layer.ffn.w1.empty()) expert(layer.ffn);
    for (ExpertWeights& e : layer.experts) expert(e);
  }
  weights.tensors = formats::CheckpointTensors();  // every view now points into `owned`
}

LoraAdapter ShardLoraAdapter(const LoraAdapter& adapter, const ShardPlan& plan) {
  if (plan.layout.whole()) return adapter;
  LoraAdapter out;
  out.rank = adapter.rank;
  out.scaling = adapter.scaling;
  out.dropout = adapter.dropout;
  out.instruct_version = adapter.instruct_version;
  out.fingerprint = adapter.fingerprint;
  out.layers.resize(adapter.layers.size());
  auto all = [](int64_t n) { return IndexRange{0, n}; };
  auto column_layer = [&](const LoraMatrix& m, IndexRange rows) { return SliceLora(m, rows, all(m.in)); };
  auto row_layer = [&](const LoraMatrix& m, IndexRange cols) { return SliceLora(m, all(m.out), cols); };
  auto expert = [&](const LoraExpert& e) {
    return LoraExpert{column_layer(e.w1, plan.hidden), row_layer(e.w2, plan.hidden), column_layer(e.w3, plan.hidden)};
  };
  for (size_t i = 0; i < adapter.layers.size(); ++i) {
    const LoraLayer& from = adapter.layers[i];
    LoraLayer& to = out.layers[i];
    to.wq = column_layer(from.wq, plan.q_rows);
    to.wk = column_layer(from.wk, plan.kv_rows);
    to.wv = column_layer(from.wv, plan.kv_rows);
    to.wo = row_layer(from.wo, plan.q_rows);
    to.ffn = expert(from.ffn);
    for (const LoraExpert& e : from.experts) to.experts.push_back(expert(e));
  }
  return out;
}

}  // namespace bora::model
