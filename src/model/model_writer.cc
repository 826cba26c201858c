// Writing a model folder with packed or dense matrices.
#include "model/model_writer.h"

#include <optional>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/progress.h"
#include "formats/safetensors_writer.h"
#include "kernels/quant/block_quant.h"
#include "ops/pack_weights.h"

namespace bora::model {
namespace {

namespace fs = std::filesystem;

struct NamedMatrix {
  std::string name;
  const MatrixView* view;
};

std::vector<NamedMatrix> NamedMatrices(ModelWeights& w) {
  std::vector<NamedMatrix> all;
  all.push_back({"tok_embeddings.weight", &w.tok_embeddings});
  for (size_t i = 0; i < w.layers.size(); ++i) {
    LayerWeights& layer = w.layers[i];
    const std::string prefix = "layers." + std::to_string(i) + ".";
    all.push_back({prefix + "attention.wq.weight", &layer.wq});
    all.push_back({prefix + "attention.wk.weight", &layer.wk});
    all.push_back({prefix + "attention.wv.weight", &layer.wv});
    all.push_back({prefix + "attention.wo.weight", &layer.wo});
    if (layer.experts.empty()) {
      all.push_back({prefix + "feed_forward.w1.weight", &layer.ffn.w1});
      all.push_back({prefix + "feed_forward.w2.weight", &layer.ffn.w2});
      all.push_back({prefix + "feed_forward.w3.weight", &layer.ffn.w3});
    } else {
      all.push_back({prefix + "feed_forward.gate.weight", &layer.gate});
      for (size_t e = 0; e < layer.experts.size(); ++e) {
        const std::string expert = prefix + "feed_forward.experts." + std::to_string(e) + ".";
        all.push_back({expert + "w1.weight", &layer.experts[e].w1});
        all.push_back({expert + "w2.weight", &layer.experts[e].w2});
        all.push_back({expert + "w3.weight", &layer.experts[e].w3});
      }
    }
  }
  all.push_back({"output.weight", &w.output});
  return all;
}

}  // namespace

void WriteModelFolder(ModelWeights& weights, const formats::ModelParams& params, const std::string& out_dir,
                      const formats::ModelFolder* source) {
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error) throw IoError(out_dir + ": cannot create: " + error.message());
  const std::vector<NamedMatrix> matrices = NamedMatrices(weights);
  // Largest-alignment data first: quant planes (multiples of 256 bytes), then f16 scales, then
  // dense matrices, then f32 norms.
  std::vector<formats::TensorSpec> specs;
  std::vector<std::span<const uint8_t>> data;
  for (const NamedMatrix& m : matrices) {
    if (!m.view->packed()) continue;
    const bool q4 = m.view->dtype == DType::kQ4;
    const kernels::PackedShape shape{q4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8, m.view->rows,
                                     m.view->cols};
    specs.push_back({m.name + (q4 ? ".q4" : ".q8"), DType::kU8,
                     {shape.panels(), shape.blocks(), kernels::QuantBlockBytes(shape.format)}});
    data.push_back({static_cast<const uint8_t*>(m.view->data), static_cast<size_t>(shape.quant_bytes())});
  }
  for (const NamedMatrix& m : matrices) {
    if (!m.view->packed()) continue;
    const bool q4 = m.view->dtype == DType::kQ4;
    const kernels::PackedShape shape{q4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8, m.view->rows,
                                     m.view->cols};
    specs.push_back({m.name + (q4 ? ".q4_scales" : ".q8_scales"), DType::kF16, {shape.panels(), shape.blocks(), 16}});
    data.push_back({reinterpret_cast<const uint8_t*>(m.view->scales), static_cast<size_t>(shape.scale_count()) * 2});
  }
  for (const NamedMatrix& m : matrices) {
    if (m.view->packed()) continue;
    specs.push_back({m.name, m.view->dtype, {m.view->rows, m.view->cols}});
    data.push_back({static_cast<const uint8_t*>(m.view->data), ops::MatrixBytes(m.view->dtype, m.view->rows, m.view->cols)});
  }
  auto add_norm = [&](const std::string& name, const std::vector<float>& values) {
    specs.push_back({name, DType::kF32, {static_cast<int64_t>(values.size())}});
    data.push_back({reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)});
  };
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    add_norm("layers." + std::to_string(i) + ".attention_norm.weight", weights.layers[i].attention_norm);
    add_norm("layers." + std::to_string(i) + ".ffn_norm.weight", weights.layers[i].ffn_norm);
  }
  add_norm("norm.weight", weights.norm);
  // The vision tower, as stored (--dtype converts it at load like the decoder).
  std::optional<formats::CheckpointTensors> vision;
  if (params.vision) {
    if (source == nullptr || source->layout == formats::CheckpointLayout::kGguf) {
      throw Unsupported("writing a model with a vision encoder needs its source folder (Mistral-native or Hugging Face)");
    }
    vision.emplace(formats::CheckpointTensors::Open(*source, DType::kF32, formats::GgufDecode::kNative, true));
    for (const std::string& name : vision->Names()) {
      const formats::TensorView view = vision->GetAnyShape(name);
      specs.push_back({name, view.dtype, view.info->shape});
      data.push_back(view.bytes);
    }
  }

  const std::string weights_path = (fs::path(out_dir) / "consolidated.safetensors").string();
  formats::SafetensorsWriter writer(weights_path, specs,
                                    {{"format", "pt"}, {"bora_dtype", WeightDTypeName(weights.compute_dtype)}});
  ProgressBar progress("writing " + weights_path, writer.total_data_bytes());
  for (const auto& bytes : data) {
    // In slices, so the progress bar moves on multi-GiB tensors.
    for (size_t offset = 0; offset < bytes.size(); offset += size_t{64} << 20) {
      const size_t length = std::min(bytes.size() - offset, size_t{64} << 20);
      writer.Append(bytes.subspan(offset, length));
      progress.Advance(length);
    }
  }
  writer.Finish();
  progress.Finish();
  const std::string params_path = (fs::path(out_dir) / "params.json").string();
  std::ofstream out(params_path + ".partial");
  // The folder holds both tok_embeddings and output (so never tied) in plain or packed floats
  // (never FP8).
  formats::ModelParams written = params;
  written.tie_embeddings = false;
  written.quantization = formats::WeightQuantization::kNone;
  written.notes.clear();
  out << formats::MistralParamsJson(written) << "\n";
  out.close();
  if (!out || std::rename((params_path + ".partial").c_str(), params_path.c_str()) != 0) {
    throw IoError(params_path + ": cannot write");
  }
}

}  // namespace bora::model
