// Mapping of checkpoint tensors onto per-layer weight views, and their load-time conversion.
#include "model/weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "base/error.h"
#include "base/progress.h"
#include "kernels/convert.h"
#include "kernels/quant/block_quant.h"
#include "ops/pack_weights.h"

namespace bora::model {
namespace {

class WeightCollector {
 public:
  explicit WeightCollector(const formats::CheckpointTensors& tensors) : tensors_(tensors) {}

  MatrixView Matrix(const std::string& name, int64_t rows, int64_t cols) {
    for (DType packed : {DType::kQ8, DType::kQ4}) {
      const std::string suffix = packed == DType::kQ8 ? ".q8" : ".q4";
      if (tensors_.Contains(name + suffix)) return Packed(name, suffix, packed, rows, cols);
    }
    used_.push_back(name);
    MatrixView view = tensors_.Get(name, {rows, cols}).AsMatrix();
    if (!IsFloatDType(view.dtype)) {
      throw FormatError("tensor \"" + name + "\" has dtype " + std::string(DTypeName(view.dtype)) +
                        "; weights must be F32, BF16 or F16");
    }
    return view;
  }

  std::vector<float> Vector(const std::string& name, int64_t size) {
    used_.push_back(name);
    formats::TensorView view = tensors_.Get(name, {size});
    if (!IsFloatDType(view.dtype)) throw FormatError("tensor \"" + name + "\" must be F32, BF16 or F16");
    std::vector<float> values(size);
    kernels::RowToF32(view.dtype, view.bytes.data(), values.data(), size);
    return values;
  }

  const std::vector<std::string>& used() const { return used_; }

 private:
  MatrixView Packed(const std::string& name, const std::string& suffix, DType dtype, int64_t rows, int64_t cols) {
    if (cols % kernels::kQuantBlock != 0) {
      throw FormatError("packed tensor \"" + name + suffix + "\" has " + std::to_string(cols) +
                        " columns, not a multiple of 32");
    }
    const kernels::PackedShape shape{dtype == DType::kQ8 ? kernels::QuantFormat::kQ8 : kernels::QuantFormat::kQ4,
                                     rows, cols};
    used_.push_back(name + suffix);
    used_.push_back(name + suffix + "_scales");
    formats::TensorView quants =
        tensors_.Get(name + suffix, {shape.panels(), shape.blocks(), kernels::QuantBlockBytes(shape.format)});
    formats::TensorView scales = tensors_.Get(name + suffix + "_scales", {shape.panels(), shape.blocks(), 16});
    if (quants.dtype != DType::kU8 || scales.dtype != DType::kF16) {
      throw FormatError("packed tensor \"" + name + suffix + "\" must be U8 with F16 scales");
    }
    if (reinterpret_cast<uintptr_t>(scales.bytes.data()) % alignof(uint16_t) != 0) {
      throw FormatError("packed scales \"" + name + suffix + "_scales\" are not 2-byte aligned in the file");
    }
    return MatrixView{dtype, quants.bytes.data(), rows, cols,
                      reinterpret_cast<const uint16_t*>(scales.bytes.data())};
  }

  const formats::CheckpointTensors& tensors_;
  std::vector<std::string> used_;
};

}  // namespace

formats::GgufDecode GgufDecodeFor(std::optional<DType> requested) {
  return requested ? formats::GgufDecode::kExactF32 : formats::GgufDecode::kNative;
}

ModelWeights LoadModelWeights(const formats::ModelFolder& folder, DType fp8_target, formats::GgufDecode gguf_decode) {
  const formats::ModelParams& p = folder.params;
  ModelWeights weights;
  weights.tensors = formats::CheckpointTensors::Open(folder, fp8_target, gguf_decode);
  for (const std::string& note : weights.tensors.notes()) std::fprintf(stderr, "note: %s\n", note.c_str());
  WeightCollector collect(weights.tensors);
  weights.tok_embeddings = collect.Matrix("tok_embeddings.weight", p.vocab_size, p.dim);
  weights.output = collect.Matrix("output.weight", p.vocab_size, p.dim);
  weights.norm = collect.Vector("norm.weight", p.dim);
  const int64_t q_rows = p.n_heads * p.head_dim;
  const int64_t kv_rows = p.n_kv_heads * p.head_dim;
  weights.layers.resize(p.n_layers);
  for (int64_t i = 0; i < p.n_layers; ++i) {
    LayerWeights& layer = weights.layers[i];
    const std::string prefix = "layers." + std::to_string(i) + ".";
    layer.attention_norm = collect.Vector(prefix + "attention_norm.weight", p.dim);
    layer.ffn_norm = collect.Vector(prefix + "ffn_norm.weight", p.dim);
    layer.wq = collect.Matrix(prefix + "attention.wq.weight", q_rows, p.dim);
    layer.wk = collect.Matrix(prefix + "attention.wk.weight", kv_rows, p.dim);
    layer.wv = collect.Matrix(prefix + "attention.wv.weight", kv_rows, p.dim);
    layer.wo = collect.Matrix(prefix + "attention.wo.weight", p.dim, q_rows);
    auto expert = [&](const std::string& base) {
      return ExpertWeights{collect.Matrix(base + "w1.weight", p.hidden_dim, p.dim),
                           collect.Matrix(base + "w2.weight", p.dim, p.hidden_dim),
                           collect.Matrix(base + "w3.weight", p.hidden_dim, p.dim)};
    };
    if (p.moe) {
      layer.gate = collect.Matrix(prefix + "feed_forward.gate.weight", p.moe->num_experts, p.dim);
      for (int64_t e = 0; e < p.moe->num_experts; ++e) {
        layer.experts.push_back(expert(prefix + "feed_forward.experts." + std::to_string(e) + "."));
      }
    } else {
      layer.ffn = expert(prefix + "feed_forward.");
    }
  }
  weights.tensors.RejectUnused(collect.used());
  if (!weights.layers.empty() && weights.layers[0].wq.packed()) weights.compute_dtype = weights.layers[0].wq.dtype;
  return weights;
}

DType ParseWeightDType(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "q8") return DType::kQ8;
  if (name == "q4") return DType::kQ4;
  throw InvalidArgument("unknown --dtype \"" + name + "\"; use f32, bf16, q8 or q4");
}

std::string WeightDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return "bf16";
    case DType::kQ8: return "q8";
    case DType::kQ4: return "q4";
    default: return "f32";
  }
}

DType TargetFor(DType target, const MatrixView& matrix, bool is_output, bool is_router) {
  if (is_router) return matrix.dtype == DType::kF16 && target == DType::kBF16 ? DType::kBF16 : matrix.dtype;
  if (IsPackedDType(target) && !ops::CanPack(matrix.cols)) return DType::kBF16;
  if (target == DType::kQ4 && is_output) return DType::kQ8;
  return target;
}

void ConvertModelWeights(ModelWeights& weights, DType target, ops::ComputeContext& ctx) {
  if (target == DType::kF32) {
    if (weights.layers.empty() || !weights.layers[0].wq.packed()) return;
    throw InvalidArgument("this folder holds weights packed as " + WeightDTypeName(weights.layers[0].wq.dtype) +
                          "; --dtype f32 needs the original checkpoint");
  }
  uint64_t total = 0;
  bool already_packed = false;
  weights.ForEachMatrix([&](MatrixView& m) {
    total += static_cast<uint64_t>(m.rows) * m.cols * std::max<size_t>(1, DTypeSize(m.dtype));
    already_packed = already_packed || m.packed();
  });
  if (already_packed) {
    const DType stored = weights.compute_dtype;
    if (stored == target) return;
    throw InvalidArgument("this folder holds weights packed as " + WeightDTypeName(stored) + "; --dtype " +
                          WeightDTypeName(target) + " needs the original checkpoint");
  }
  ProgressBar progress("converting weights to " + WeightDTypeName(target), total);
  auto convert = [&](MatrixView& m, bool is_output, bool is_router) {
    const DType wanted = TargetFor(target, m, is_output, is_router);
    ops::OwnedMatrix converted;
    if (wanted == m.dtype) {
      // Kept as is, but copied so the source mapping can be released.
      const uint64_t bytes = ops::MatrixBytes(m.dtype, m.rows, m.cols);
      converted.storage = AlignedBuffer(bytes);
      std::memcpy(converted.storage.data(), m.data, bytes);
      converted.view = m;
      converted.view.data = converted.storage.data();
      progress.Advance(bytes);
    } else {
      converted = ops::ConvertMatrix(ctx, m, wanted, &progress);
    }
    m = converted.view;
    weights.owned.push_back(std::move(converted.storage));
  };
  convert(weights.tok_embeddings, false, false);
  for (LayerWeights& layer : weights.layers) {
    for (MatrixView* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn.w1, &layer.ffn.w2, &layer.ffn.w3}) {
      if (!m->empty()) convert(*m, false, false);
    }
    if (!layer.gate.empty()) convert(layer.gate, false, true);
    for (ExpertWeights& e : layer.experts) {
      convert(e.w1, false, false);
      convert(e.w2, false, false);
      convert(e.w3, false, false);
    }
  }
  convert(weights.output, true, false);
  progress.Finish();
  weights.tensors = formats::CheckpointTensors();  // every view now points into `owned`
  weights.compute_dtype = target;
}

void MakeWeightsResident(ModelWeights& weights, ops::ComputeContext& ctx) {
  for (const auto& mapped_file : weights.tensors.MappedFiles()) {
    // Named copies, not a structured binding: clang 14 cannot capture bindings in lambdas.
    const std::string& path = mapped_file.first;
    const auto& bytes = mapped_file.second;
    const uint8_t* begin = bytes.data();
    const uint8_t* end = begin + bytes.size();
    bool used = false;
    weights.ForEachMatrix([&](MatrixView& m) {
      const auto* data = static_cast<const uint8_t*>(m.data);
      used = used || (data >= begin && data < end);
    });
    if (!used) continue;
    AlignedBuffer copy(bytes.size());
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
    constexpr int64_t kChunk = int64_t{32} << 20;
    const int64_t chunks = static_cast<int64_t>((bytes.size() + kChunk - 1) / kChunk);
    ProgressBar progress("loading " + path, bytes.size());
    std::mutex progress_mutex;
    std::atomic<bool> failed{false};
    ctx.pool().ParallelFor(chunks, [&](int64_t first, int64_t last, int) {
      for (int64_t c = first; c < last && !failed.load(); ++c) {
        uint64_t offset = static_cast<uint64_t>(c) * kChunk;
        const uint64_t stop = std::min<uint64_t>(bytes.size(), offset + kChunk);
        while (offset < stop) {
          const ssize_t got = ::pread(fd, copy.data() + offset, stop - offset, static_cast<off_t>(offset));
          if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            failed.store(true);
            break;
          }
          offset += static_cast<uint64_t>(got);
        }
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress.Advance(stop - static_cast<uint64_t>(c) * kChunk);
      }
    });
    ::close(fd);
    if (failed.load()) throw IoError(path + ": read failed (file changed while loading?)");
    progress.Finish();
    auto rebase = [&](const void* pointer) -> const void* {
      const auto* p = static_cast<const uint8_t*>(pointer);
      return p >= begin && p < end ? copy.data() + (p - begin) : pointer;
    };
    weights.ForEachMatrix([&](MatrixView& m) {
      m.data = rebase(m.data);
      if (m.scales != nullptr) m.scales = static_cast<const uint16_t*>(rebase(m.scales));
    });
    weights.owned.push_back(std::move(copy));
  }
}

uint64_t MatrixBytesOf(ModelWeights& weights) {
  uint64_t total = 0;
  weights.ForEachMatrix([&](MatrixView& m) { total += ops::MatrixBytes(m.dtype, m.rows, m.cols); });
  return total;
}

}  // namespace bora::model
