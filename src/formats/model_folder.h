// A model folder on disk: which layout it uses (Mistral-native or Hugging Face), its parsed
// hyper-parameters, and its weight tensors under Mistral-native names in native RoPE layout.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/gguf.h"
#include "formats/model_params.h"
#include "formats/safetensors.h"

namespace bora::formats {

// kGguf: a single .gguf file (`path` is the file, `weight_files` holds it too).
enum class CheckpointLayout { kMistral, kHuggingFace, kGguf };

// How the quantized tensors of a GGUF file are opened. kNative: F32/F16/BF16 mapped as they are,
// Q8_0/Q4_0 repacked losslessly into bora's q8/q4 panels, every other type dequantized once and
// packed as q8 (a note says so). kExactF32: every quantized tensor dequantized exactly to f32
// (--dtype f32, and the start of any explicit --dtype conversion).
enum class GgufDecode { kNative, kExactF32 };

struct ModelFolder {
  std::string path;
  CheckpointLayout layout = CheckpointLayout::kMistral;
  std::string config_file;               // params.json or config.json (full path)
  std::vector<std::string> weight_files;  // full paths, in a stable order
  uint64_t weight_bytes = 0;              // total size of the weight files
  ModelParams params;
  // GGUF only: bytes the weights take once opened with GgufDecode kNative / kExactF32.
  uint64_t gguf_native_bytes = 0;
  uint64_t gguf_exact_bytes = 0;
};

// Throws IoError saying what `path` is when it is not a model bora can open: missing, a
// safetensors or other file instead of the folder holding it. Folders and GGUF files pass.
void CheckModelFolderPath(const std::string& path);

// Reads the config and lists the weight files without mapping them (cheap: used for the memory
// estimate before loading). A GGUF file is read as a one-file model (its header is parsed).
// Throws IoError/FormatError/Unsupported naming the file and problem.
ModelFolder InspectModelFolder(const std::string& dir);

// All weight tensors of a folder, keyed by Mistral-native name. For Hugging Face folders the
// names are translated and the q/k rows of every head are un-permuted back to interleaved-pair
// RoPE order (into owned copies; every other view points into the mapped files).
class CheckpointTensors {
 public:
  // FP8 weights (F8_E4M3/F8_E5M2 with their qscale_weight / weight_scale_inv) are dequantized
  // here, value x scale in float32, into owned copies of `fp8_target` (kF32: exact; kBF16: the
  // product rounded to bf16, exact when the scale has at most 4 significant bits). Activation
  // scales are checked and dropped: CPU matmuls run on unquantized activations.
  // GGUF files are opened as `gguf_decode` says (see GgufDecode).
  // `vision`: only the vision tower's tensors (vision_encoder.*, vision_language_adapter.*,
  // patch_merger.*, pre_mm_projector_norm.*) of a Mistral-native folder; otherwise only the
  // text model's.
  static CheckpointTensors Open(const ModelFolder& folder, DType fp8_target = DType::kBF16,
                                GgufDecode gguf_decode = GgufDecode::kNative, bool vision = false);

  // The tensor `native_name` with exactly `shape`; throws FormatError naming the file otherwise.
  TensorView Get(const std::string& native_name, const std::vector<int64_t>& shape) const;
  bool Contains(const std::string& native_name) const { return tensors_.count(native_name) != 0; }
  // Every tensor's native name, sorted.
  std::vector<std::string> Names() const;
  // The tensor `native_name` with whatever shape it has.
  TensorView GetAnyShape(const std::string& native_name) const;
  // The mapped weight files (path and whole-file bytes), for callers that copy them.
  std::vector<std::pair<std::string, std::span<const uint8_t>>> MappedFiles() const {
    std::vector<std::pair<std::string, std::span<const uint8_t>>> files;
    for (const auto& file : files_) files.emplace_back(file->path(), file->file_bytes());
    if (gguf_) files.emplace_back(gguf_->path(), gguf_->file_bytes());
    return files;
  }
  // One line per lossy or costly step taken while opening (GGUF types converted to q8), for the
  // loader to print.
  const std::vector<std::string>& notes() const { return notes_; }
  // Throws FormatError naming the first tensor that is not in `used` (weights the config does
  // not describe, e.g. experts in a dense config).
  void RejectUnused(const std::vector<std::string>& used) const;

 private:
  struct Entry {
    const SafetensorsFile* file = nullptr;
    const TensorInfo* info = nullptr;
    std::vector<uint8_t> owned;  // un-permuted copy for HF q/k projections, dequantized FP8
    DType owned_dtype = DType::kF32;  // dtype of `owned` when it holds dequantized FP8
    bool dequantized = false;
    // GGUF entries (file == nullptr): their own info (native name and shape) and, for tensors
    // used as stored, their bytes in the mapping.
    TensorInfo gguf_info;
    std::span<const uint8_t> mapped;
  };
  void DequantizeFp8(const ModelFolder& folder, DType target);
  // Fills tensors_ from folder.path (a GGUF file); see gguf_checkpoint.cc.
  void OpenGguf(const ModelFolder& folder, GgufDecode decode);
  // Adds a GGUF-derived entry: `bytes` owned (dequantized or repacked) or `mapped`.
  void AddGgufEntry(const std::string& native_name, const std::string& gguf_name, std::vector<int64_t> shape,
                    DType dtype, std::vector<uint8_t> owned, std::span<const uint8_t> mapped);
  const std::string& SourcePath(const Entry& entry) const;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::string> notes_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> tensors_;
};

// Maps a Hugging Face tensor name to its Mistral-native name; "" for names bora ignores
// (rotary caches, the vision tower); throws FormatError for unknown names. With
// `language_model_prefix` (Mistral3ForConditionalGeneration) the text model is under
// model.language_model.*. FP8 scales map too: *.weight_scale_inv and *.weight_scale ->
// *.qscale_weight, *.activation_scale -> *.qscale_act.
std::string HfToNativeName(const std::string& hf_name, const std::string& file_name,
                           bool language_model_prefix = false);

// Whether a tensor name belongs to a vision tower (native or Hugging Face names).
bool IsVisionTensor(const std::string& name);

// float32 value of one FP8 byte (E4M3: bias 7, no infinities, 0x7F/0xFF NaN; E5M2: bias 15).
float Fp8ToF32(uint8_t byte, bool e5m2);

// Reorders the rows of one HF q/k projection [n_heads*head_dim, cols] (any 2-byte or 4-byte
// dtype) from half-split RoPE order to interleaved-pair order:
// native row h*d + 2i + c  <-  HF row h*d + c*d/2 + i.
std::vector<uint8_t> UnpermuteHfRope(std::span<const uint8_t> hf_rows, int64_t n_heads,
                                     int64_t head_dim, int64_t cols, size_t element_size);

}  // namespace bora::formats
