// CheckpointTensors over a GGUF file: tensors under Mistral-native names, float tensors mapped,
// quantized ones repacked (Q8_0, Q4_0 -> bora q8/q4, lossless), converted to q8 or dequantized
// exactly to f32 (GgufDecode).
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "base/error.h"
#include "base/progress.h"
#include "base/thread_pool.h"
#include "formats/gguf_model.h"
#include "formats/model_folder.h"
#include "kernels/quant/block_quant.h"
#include "kernels/quant/ggml_blocks.h"

namespace bora::formats {
namespace {

using kernels::GgmlType;

bool IsFloatType(uint32_t type) {
  return type == static_cast<uint32_t>(GgmlType::kF32) || type == static_cast<uint32_t>(GgmlType::kF16) ||
         type == static_cast<uint32_t>(GgmlType::kBF16);
}

DType FloatDType(uint32_t type) {
  if (type == static_cast<uint32_t>(GgmlType::kF16)) return DType::kF16;
  if (type == static_cast<uint32_t>(GgmlType::kBF16)) return DType::kBF16;
  return DType::kF32;
}

// One 2-D (or 1-D) piece of a GGUF tensor: a whole tensor or one expert's slab.
struct Piece {
  std::string native;
  std::string gguf_name;
  int64_t rows = 1;
  int64_t cols = 0;
  bool matrix = false;  // 2-D weight (1-D norms are vectors)
  bool router = false;  // MoE router: kept dense
  uint32_t type = 0;
  std::span<const uint8_t> bytes;
};

}  // namespace

void CheckpointTensors::AddGgufEntry(const std::string& native_name, const std::string& gguf_name,
                                     std::vector<int64_t> shape, DType dtype, std::vector<uint8_t> owned,
                                     std::span<const uint8_t> mapped) {
  auto entry = std::make_unique<Entry>();
  entry->gguf_info.name = gguf_name;
  entry->gguf_info.dtype_name = std::string(DTypeName(dtype));
  entry->gguf_info.shape = std::move(shape);
  entry->info = &entry->gguf_info;
  entry->owned_dtype = dtype;
  entry->owned = std::move(owned);
  entry->mapped = entry->owned.empty() ? mapped : std::span<const uint8_t>(entry->owned);
  if (!tensors_.emplace(native_name, std::move(entry)).second) {
    throw FormatError(gguf_->path() + ": tensor \"" + gguf_name + "\" maps to \"" + native_name +
                      "\", which another tensor already provides");
  }
}

void CheckpointTensors::OpenGguf(const ModelFolder& folder, GgufDecode decode) {
  gguf_ = std::make_unique<GgufFile>(GgufFile::Open(folder.path));
  const GgufHeader& header = gguf_->header();
  const std::string& path = gguf_->path();
  const ModelParams& params = folder.params;

  // Cut every tensor into the pieces the model uses.
  std::vector<Piece> pieces;
  for (const GgufTensorInfo& info : header.tensors) {
    const GgufNativeName name = GgufToNativeName(info.name, path);
    const kernels::GgmlTypeTraits traits = kernels::GgmlTypeInfo(info.type);
    if (!traits.supported) {
      throw Unsupported(path + ": tensor \"" + std::string(info.name) + "\" has type " + traits.name +
                        ", which bora does not decode (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, "
                        "IQ4_NL, IQ4_XS)");
    }
    if (name.native.rfind("layers.", 0) == 0) {
      const std::string digits = name.native.substr(7, name.native.find('.', 7) - 7);
      if (std::stoll(digits) >= params.n_layers) {
        throw FormatError(path + ": tensor \"" + std::string(info.name) + "\" belongs to layer " + digits +
                          " but block_count is " + std::to_string(params.n_layers));
      }
    }
    const std::span<const uint8_t> bytes = gguf_->TensorBytes(info);
    Piece piece;
    piece.gguf_name = std::string(info.name);
    piece.type = info.type;
    piece.cols = info.ne[0];
    piece.router = name.native.find("feed_forward.gate.") != std::string::npos;
    if (name.expert_slabs) {
      if (info.ne.size() != 3) {
        throw FormatError(path + ": expert tensor \"" + piece.gguf_name + "\" must be 3-D [cols, rows, experts]");
      }
      piece.rows = info.ne[1];
      piece.matrix = true;
      const uint64_t slab = bytes.size() / static_cast<uint64_t>(info.ne[2]);
      for (int64_t e = 0; e < info.ne[2]; ++e) {
        Piece expert = piece;
        expert.native = name.native;
        expert.native.replace(expert.native.find("{e}"), 3, std::to_string(e));
        expert.bytes = bytes.subspan(static_cast<uint64_t>(e) * slab, slab);
        pieces.push_back(std::move(expert));
      }
      continue;
    }
    if (info.ne.size() > 2) {
      throw FormatError(path + ": tensor \"" + piece.gguf_name + "\" has " + std::to_string(info.ne.size()) +
                        " dimensions, expected 1 or 2");
    }
    piece.native = name.native;
    piece.matrix = info.ne.size() == 2;
    piece.rows = piece.matrix ? info.ne[1] : 1;
    piece.bytes = bytes;
    pieces.push_back(std::move(piece));
  }
  uint64_t work = 0;
  for (const Piece& piece : pieces) work += IsFloatType(piece.type) ? 0 : piece.bytes.size();
  // In a file with quantized tensors the float ones (norms, routers, the odd F16 table) are
  // copied, so that no matrix points into the mapping and the loader never copies the whole
  // file to keep a few of them resident.
  const bool copy_floats = work > 0;
  std::set<std::string> converted_types;
  // Load-time work only: every CPU (at most 16), none spawned for a file of float tensors.
  const int threads = std::max(1, static_cast<int>(std::min(16u, std::thread::hardware_concurrency())));
  ThreadPool pool(work > 0 ? threads : 1);
  ProgressBar progress(decode == GgufDecode::kExactF32 ? "dequantizing " + path : "decoding " + path, work);
  for (const Piece& piece : pieces) {
    std::vector<int64_t> shape = piece.matrix ? std::vector<int64_t>{piece.rows, piece.cols}
                                              : std::vector<int64_t>{piece.cols};
    if (IsFloatType(piece.type)) {
      std::vector<uint8_t> copy;
      if (copy_floats) copy.assign(piece.bytes.begin(), piece.bytes.end());
      AddGgufEntry(piece.native, piece.gguf_name, std::move(shape), FloatDType(piece.type), std::move(copy),
                   piece.bytes);
      continue;
    }
    const uint64_t row_bytes = kernels::GgmlRowBytes(piece.type, piece.cols);
    auto source_row = [&](int64_t r) { return piece.bytes.data() + static_cast<uint64_t>(r) * row_bytes; };
    const auto type = static_cast<GgmlType>(piece.type);
    const bool pack = decode == GgufDecode::kNative && piece.matrix && !piece.router &&
                      piece.cols % kernels::kQuantBlock == 0;
    if (pack) {
      const bool q4 = type == GgmlType::kQ4_0;
      const kernels::PackedShape packed{q4 ? kernels::QuantFormat::kQ4 : kernels::QuantFormat::kQ8, piece.rows,
                                        piece.cols};
      std::vector<uint8_t> quants(static_cast<size_t>(packed.quant_bytes()));
      std::vector<uint8_t> scales(static_cast<size_t>(packed.scale_count()) * 2);
      auto* scale_values = reinterpret_cast<uint16_t*>(scales.data());
      bool repacked = false;
      if (type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0) {
        repacked = kernels::RepackGgmlToPanels(piece.type, piece.bytes.data(), piece.rows, piece.cols, quants.data(),
                                               scale_values);
      }
      if (!repacked) {
        converted_types.insert(kernels::GgmlTypeInfo(piece.type).name);
        // Dequantize 16 rows at a time and quantize them as one q8 panel.
        pool.ParallelFor(packed.panels(), [&](int64_t first, int64_t last, int) {
          std::vector<float> rows(static_cast<size_t>(kernels::kPanelRows * piece.cols));
          for (int64_t panel = first; panel < last; ++panel) {
            const int64_t row0 = panel * kernels::kPanelRows;
            const int64_t count = std::min(kernels::kPanelRows, piece.rows - row0);
            for (int64_t r = 0; r < count; ++r) {
              kernels::DequantizeGgmlRow(piece.type, source_row(row0 + r), piece.cols, rows.data() + r * piece.cols);
            }
            kernels::QuantizePanel(packed.format, rows.data(), count, piece.cols,
                                   quants.data() + panel * packed.blocks() * kernels::QuantBlockBytes(packed.format),
                                   scale_values + panel * packed.blocks() * kernels::kPanelRows);
          }
        });
      }
      const std::string suffix = q4 ? ".q4" : ".q8";
      AddGgufEntry(piece.native + suffix, piece.gguf_name, {packed.panels(), packed.blocks(),
                   kernels::QuantBlockBytes(packed.format)}, DType::kU8, std::move(quants), {});
      AddGgufEntry(piece.native + suffix + "_scales", piece.gguf_name, {packed.panels(), packed.blocks(),
                   kernels::kPanelRows}, DType::kF16, std::move(scales), {});
    } else {
      std::vector<uint8_t> values(static_cast<size_t>(piece.rows * piece.cols) * 4);
      auto* out = reinterpret_cast<float*>(values.data());
      pool.ParallelFor(piece.rows, [&](int64_t first, int64_t last, int) {
        for (int64_t r = first; r < last; ++r) kernels::DequantizeGgmlRow(piece.type, source_row(r), piece.cols, out + r * piece.cols);
      });
      AddGgufEntry(piece.native, piece.gguf_name, std::move(shape), DType::kF32, std::move(values), {});
    }
    progress.Advance(piece.bytes.size());
  }
  progress.Finish();
  if (params.tie_embeddings) {
    // No output.weight: llama.cpp (and the model) reuse the embedding table. The output entries
    // view the embedding's decoded bytes (or its mapping) instead of decoding it a second time.
    const std::string stem = "tok_embeddings.weight";
    std::vector<std::pair<std::string, const Entry*>> tied;
    for (const auto& [name, entry] : tensors_) {
      if (name.compare(0, stem.size(), stem) == 0) tied.emplace_back("output.weight" + name.substr(stem.size()), entry.get());
    }
    for (const auto& [name, entry] : tied) {
      AddGgufEntry(name, entry->gguf_info.name, entry->gguf_info.shape, entry->owned_dtype, {}, entry->mapped);
    }
  }
  if (!converted_types.empty()) {
    std::string names;
    for (const std::string& name : converted_types) names += (names.empty() ? "" : ", ") + name;
    notes_.push_back(path + ": " + names + " weights converted once to bora's q8 (8.5 bits per weight: no quality "
                     "loss beyond the file's own, more memory than the file); --dtype f32 computes on the exact values");
  }
}

}  // namespace bora::formats
