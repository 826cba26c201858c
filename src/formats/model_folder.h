// A model folder on disk: which layout it uses (Mistral-native or Hugging Face), its parsed
// hyper-parameters, and its weight tensors under Mistral-native names in native RoPE layout.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/model_params.h"
#include "formats/safetensors.h"

namespace bora::formats {

enum class CheckpointLayout { kMistral, kHuggingFace };

struct ModelFolder {
  std::string path;
  CheckpointLayout layout = CheckpointLayout::kMistral;
  std::string config_file;               // params.json or config.json (full path)
  std::vector<std::string> weight_files;  // full paths, in a stable order
  uint64_t weight_bytes = 0;              // total size of the weight files
  ModelParams params;
};

// Throws IoError saying what `path` is when it is not a folder bora can open: missing, a GGUF
// file (not read yet), a safetensors or other file instead of the folder holding it.
void CheckModelFolderPath(const std::string& path);

// Reads the config and lists the weight files without mapping them (cheap: used for the memory
// estimate before loading). Throws IoError/FormatError/Unsupported naming the file and problem.
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
  static CheckpointTensors Open(const ModelFolder& folder, DType fp8_target = DType::kBF16);

  // The tensor `native_name` with exactly `shape`; throws FormatError naming the file otherwise.
  TensorView Get(const std::string& native_name, const std::vector<int64_t>& shape) const;
  bool Contains(const std::string& native_name) const { return tensors_.count(native_name) != 0; }
  // The mapped weight files (path and whole-file bytes), for callers that copy them.
  std::vector<std::pair<std::string, std::span<const uint8_t>>> MappedFiles() const {
    std::vector<std::pair<std::string, std::span<const uint8_t>>> files;
    for (const auto& file : files_) files.emplace_back(file->path(), file->file_bytes());
    return files;
  }
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
  };
  void DequantizeFp8(const ModelFolder& folder, DType target);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> tensors_;
};

// Maps a Hugging Face tensor name to its Mistral-native name; "" for names bora ignores
// (rotary caches, the vision tower); throws FormatError for unknown names. With
// `language_model_prefix` (Mistral3ForConditionalGeneration) the text model is under
// model.language_model.*. FP8 scales map too: *.weight_scale_inv and *.weight_scale ->
// *.qscale_weight, *.activation_scale -> *.qscale_act.
std::string HfToNativeName(const std::string& hf_name, const std::string& file_name,
                           bool language_model_prefix = false);

// float32 value of one FP8 byte (E4M3: bias 7, no infinities, 0x7F/0xFF NaN; E5M2: bias 15).
float Fp8ToF32(uint8_t byte, bool e5m2);

// Reorders the rows of one HF q/k projection [n_heads*head_dim, cols] (any 2-byte or 4-byte
// dtype) from half-split RoPE order to interleaved-pair order:
// native row h*d + 2i + c  <-  HF row h*d + c*d/2 + i.
std::vector<uint8_t> UnpermuteHfRope(std::span<const uint8_t> hf_rows, int64_t n_heads,
                                     int64_t head_dim, int64_t cols, size_t element_size);

}  // namespace bora::formats
