// Mapping the vision tower's tensors onto views, checking names and shapes against the params.
#include "vision/vision_weights.h"

#include <string>

#include "base/error.h"
#include "kernels/convert.h"

namespace bora::vision {
namespace {

class Collector {
 public:
  explicit Collector(const formats::CheckpointTensors& tensors) : tensors_(tensors) {}

  MatrixView Matrix(const std::string& name, int64_t rows, int64_t cols) {
    return Check(name, tensors_.Get(name, {rows, cols}).AsMatrix());
  }
  // A tensor of any rank read as [rows, cols] (the patch convolution [D, 3, P, P]).
  MatrixView Reshaped(const std::string& name, const std::vector<int64_t>& shape, int64_t rows, int64_t cols) {
    const formats::TensorView view = tensors_.Get(name, shape);
    return Check(name, MatrixView{view.dtype, view.bytes.data(), rows, cols, nullptr});
  }
  std::vector<float> Vector(const std::string& name, int64_t size) {
    used_.push_back(name);
    const formats::TensorView view = tensors_.Get(name, {size});
    if (!IsFloatDType(view.dtype)) throw FormatError("tensor \"" + name + "\" must be F32, BF16 or F16");
    std::vector<float> values(static_cast<size_t>(size));
    kernels::RowToF32(view.dtype, view.bytes.data(), values.data(), size);
    return values;
  }
  bool Has(const std::string& name) const { return tensors_.Contains(name); }
  const std::vector<std::string>& used() const { return used_; }

 private:
  MatrixView Check(const std::string& name, MatrixView view) {
    used_.push_back(name);
    if (!IsFloatDType(view.dtype)) {
      throw FormatError("tensor \"" + name + "\" has dtype " + std::string(DTypeName(view.dtype)) +
                        "; vision weights must be F32, BF16 or F16");
    }
    return view;
  }
  const formats::CheckpointTensors& tensors_;
  std::vector<std::string> used_;
};

}  // namespace

VisionWeights LoadVisionWeights(const formats::ModelFolder& folder, int64_t text_dim) {
  if (!folder.params.vision) throw InvalidArgument(folder.path + " has no vision encoder");
  const formats::VisionParams& v = *folder.params.vision;
  VisionWeights w;
  w.tensors = formats::CheckpointTensors::Open(folder, DType::kF32, formats::GgufDecode::kNative, /*vision=*/true);
  Collector c(w.tensors);
  const int64_t d = v.hidden_size, p = v.patch_size, inner = v.intermediate_size;
  w.patch_conv = c.Reshaped("vision_encoder.patch_conv.weight", {d, v.num_channels, p, p}, d, v.num_channels * p * p);
  w.ln_pre = c.Vector("vision_encoder.ln_pre.weight", d);
  for (int64_t i = 0; i < v.num_hidden_layers; ++i) {
    const std::string prefix = "vision_encoder.transformer.layers." + std::to_string(i) + ".";
    VisionLayerWeights layer;
    layer.attention_norm = c.Vector(prefix + "attention_norm.weight", d);
    layer.ffn_norm = c.Vector(prefix + "ffn_norm.weight", d);
    layer.wq = c.Matrix(prefix + "attention.wq.weight", d, d);
    layer.wk = c.Matrix(prefix + "attention.wk.weight", d, d);
    layer.wv = c.Matrix(prefix + "attention.wv.weight", d, d);
    layer.wo = c.Matrix(prefix + "attention.wo.weight", d, d);
    layer.w1 = c.Matrix(prefix + "feed_forward.w1.weight", inner, d);
    layer.w3 = c.Matrix(prefix + "feed_forward.w3.weight", inner, d);
    layer.w2 = c.Matrix(prefix + "feed_forward.w2.weight", d, inner);
    w.layers.push_back(std::move(layer));
  }
  if (v.add_pre_mm_projector_layer_norm) w.pre_mm_norm = c.Vector("pre_mm_projector_norm.weight", d);
  if (v.patch_merger) {
    const int64_t s = v.spatial_merge_size;
    w.merging_layer = c.Matrix("patch_merger.merging_layer.weight", d, d * s * s);
  }
  w.adapter_in = c.Matrix("vision_language_adapter.w_in.weight", text_dim, d);
  w.adapter_out = c.Matrix("vision_language_adapter.w_out.weight", text_dim, text_dim);
  if (v.adapter_bias) {
    w.adapter_in_bias = c.Vector("vision_language_adapter.w_in.bias", text_dim);
    w.adapter_out_bias = c.Vector("vision_language_adapter.w_out.bias", text_dim);
  }
  w.tensors.RejectUnused(c.used());
  return w;
}

void ConvertVisionWeights(VisionWeights& weights, DType target, ops::ComputeContext& ctx) {
  if (target == DType::kF32) return;
  auto convert = [&](MatrixView& m) {
    if (m.empty() || m.packed() || m.dtype == target) return;
    if (IsPackedDType(target) && !ops::CanPack(m.cols)) return;
    weights.owned.push_back(ops::ConvertMatrix(ctx, m, target, nullptr));
    m = weights.owned.back().view;
  };
  convert(weights.patch_conv);
  for (VisionLayerWeights& layer : weights.layers) {
    for (MatrixView* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.w1, &layer.w3, &layer.w2}) convert(*m);
  }
  convert(weights.merging_layer);
  convert(weights.adapter_in);
  convert(weights.adapter_out);
}

}  // namespace bora::vision
