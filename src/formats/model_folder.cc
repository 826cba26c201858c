// Model folder discovery, HF name translation and q/k un-permutation.
#include "formats/model_folder.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/float16.h"
#include "formats/gguf_model.h"
#include <cmath>

namespace bora::formats {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = 16 << 20;

// consolidated.safetensors or its shards (consolidated-00001-of-00002.safetensors).
bool IsNativeWeightFile(const std::string& name) {
  static const std::regex kShard(R"(consolidated(-\d+-of-\d+|\.\d+)?\.safetensors)");
  return std::regex_match(name, kShard);
}

std::string ReadSmallFile(const fs::path& path) {
  std::error_code error;
  uint64_t size = fs::file_size(path, error);
  if (error) throw IoError(path.string() + ": cannot read: " + error.message());
  if (size > kMaxConfigBytes) throw FormatError(path.string() + ": larger than 16 MiB, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t FileSize(const std::string& path) {
  std::error_code error;
  uint64_t size = fs::file_size(path, error);
  if (error) throw IoError(path + ": cannot stat: " + error.message());
  return size;
}


// Weight files of a Hugging Face folder: the index's files, or the single model.safetensors.
std::vector<std::string> HfWeightFiles(const fs::path& dir) {
  fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(ReadSmallFile(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(index_path.string() + ": not valid JSON: " + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw FormatError(index_path.string() + ": missing object \"weight_map\"");
    }
    std::set<std::string> names;
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw FormatError(index_path.string() + ": weight_map entry for " + tensor + " is not a string");
      std::string file_name = file.get<std::string>();
      // Plain file names inside the folder only: no separators, no "..".
      if (file_name.empty() || file_name.find('/') != std::string::npos || file_name == "." || file_name == ".." ||
          file_name.find('\\') != std::string::npos) {
        throw FormatError(index_path.string() + ": weight_map names file \"" + file_name +
                          "\", which is not a plain file name in the folder");
      }
      names.insert(file_name);
    }
    if (names.empty()) throw FormatError(index_path.string() + ": weight_map is empty");
    std::vector<std::string> files;
    for (const std::string& name : names) {
      fs::path file = dir / name;
      if (!fs::exists(file)) throw IoError(index_path.string() + ": lists " + name + ", which is missing from the folder");
      files.push_back(file.string());
    }
    return files;
  }
  if (fs::exists(dir / "model.safetensors")) return {(dir / "model.safetensors").string()};
  throw IoError(dir.string() + ": config.json found but no model.safetensors or model.safetensors.index.json");
}

// consolidated.safetensors, or consolidated-0000N-of-0000M.safetensors shards.
std::vector<std::string> MistralWeightFiles(const fs::path& dir) {
  std::vector<std::string> files;
  bool has_pickle = false;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (IsNativeWeightFile(name)) files.push_back(entry.path().string());
    if (name.rfind("consolidated", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".pth") has_pickle = true;
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    if (has_pickle) {
      throw Unsupported(dir.string() + ": only a PyTorch pickle checkpoint (consolidated.*.pth) is present; "
                        "bora loads consolidated.safetensors");
    }
    throw IoError(dir.string() + ": params.json found but no consolidated.safetensors");
  }
  return files;
}

}  // namespace

bool IsVisionTensor(const std::string& name) {
  static const char* kPrefixes[] = {"vision_encoder.", "vision_language_adapter.", "patch_merger.",
                                    "pre_mm_projector_norm.", "vision_tower.", "multi_modal_projector."};
  for (const char* prefix : kPrefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

void CheckModelFolderPath(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw IoError(path + ": no such file or folder (--model takes a model folder with params.json or config.json)");
  }
  if (fs::is_directory(status)) return;
  if (LooksLikeGguf(path)) return;
  const std::string name = fs::path(path).filename().string();
  if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0) {
    throw IoError(path + ": is a weight file; --model takes the folder that holds it with its params.json or config.json");
  }
  throw IoError(path + ": is a file, not a model folder (expected a folder with params.json or config.json)");
}

ModelFolder InspectModelFolder(const std::string& dir_text) {
  fs::path dir(dir_text);
  CheckModelFolderPath(dir_text);
  ModelFolder folder;
  folder.path = dir_text;
  if (!fs::is_directory(dir)) {
    // A GGUF file (CheckModelFolderPath let nothing else through).
    const GgufFile file = GgufFile::Open(dir_text);
    folder.layout = CheckpointLayout::kGguf;
    folder.config_file = dir_text;
    folder.weight_files = {dir_text};
    if (file.header().tensors.empty()) {
      throw FormatError(dir_text + ": a vocabulary-only GGUF (no weights); use it as --tokenizer, and --model for a "
                        "GGUF or folder that holds the weights");
    }
    folder.params = GgufModelParams(file.header());
    folder.weight_bytes = file.file_bytes().size();
    folder.gguf_native_bytes = GgufDecodedBytes(file.header(), false);
    folder.gguf_exact_bytes = GgufDecodedBytes(file.header(), true);
    return folder;
  }
  bool has_params = fs::exists(dir / "params.json");
  bool has_config = fs::exists(dir / "config.json");
  // Mistral's own releases often ship both layouts; prefer the native one when its weights exist.
  bool native_weights = false;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (IsNativeWeightFile(name)) native_weights = true;
  }
  if (has_params && (native_weights || !has_config)) {
    folder.layout = CheckpointLayout::kMistral;
    folder.config_file = (dir / "params.json").string();
    folder.params = ParseMistralParams(ReadSmallFile(folder.config_file), folder.config_file);
    folder.weight_files = MistralWeightFiles(dir);
  } else if (has_config) {
    folder.layout = CheckpointLayout::kHuggingFace;
    folder.config_file = (dir / "config.json").string();
    folder.params = ParseHfConfig(ReadSmallFile(folder.config_file), folder.config_file);
    folder.weight_files = HfWeightFiles(dir);
  } else {
    throw IoError(dir_text + ": neither params.json (Mistral layout) nor config.json (Hugging Face layout) found");
  }
  for (const std::string& file : folder.weight_files) folder.weight_bytes += FileSize(file);
  return folder;
}

// The native name of a Hugging Face vision-tower tensor (Pixtral's PixtralVisionModel under
// vision_tower, the projector under multi_modal_projector; transformers 5 puts both under
// model.), or "" when `hf` is not one.
std::string HfVisionToNativeName(const std::string& hf) {
  std::string name = hf;
  if (name.rfind("model.vision_tower.", 0) == 0 || name.rfind("model.multi_modal_projector.", 0) == 0) {
    name = name.substr(6);
  }
  if (name.rfind("multi_modal_projector.", 0) == 0) {
    const std::string rest = name.substr(std::string("multi_modal_projector.").size());
    if (rest.rfind("linear_1.", 0) == 0) return "vision_language_adapter.w_in." + rest.substr(9);
    if (rest.rfind("linear_2.", 0) == 0) return "vision_language_adapter.w_out." + rest.substr(9);
    if (rest == "norm.weight") return "pre_mm_projector_norm.weight";
    if (rest == "patch_merger.merging_layer.weight") return "patch_merger.merging_layer.weight";
    return "vision_language_adapter.unknown." + rest;  // refused as unexpected by the vision loader
  }
  if (name.rfind("vision_tower.", 0) != 0) return "";
  std::string rest = name.substr(std::string("vision_tower.").size());
  static const std::regex kLayer(R"(transformer\.layers\.(\d+)\.(.+))");
  std::smatch match;
  if (std::regex_match(rest, match, kLayer)) {
    static const std::pair<const char*, const char*> kMap[] = {
        {"attention.q_proj.weight", "attention.wq.weight"}, {"attention.k_proj.weight", "attention.wk.weight"},
        {"attention.v_proj.weight", "attention.wv.weight"}, {"attention.o_proj.weight", "attention.wo.weight"},
        {"feed_forward.gate_proj.weight", "feed_forward.w1.weight"},
        {"feed_forward.down_proj.weight", "feed_forward.w2.weight"},
        {"feed_forward.up_proj.weight", "feed_forward.w3.weight"},
        {"attention_norm.weight", "attention_norm.weight"}, {"ffn_norm.weight", "ffn_norm.weight"}};
    const std::string tail = match[2].str();
    for (const auto& [from, to] : kMap) {
      if (tail == from) return "vision_encoder.transformer.layers." + match[1].str() + "." + to;
    }
    return "vision_encoder.transformer.layers." + match[1].str() + ".unknown." + tail;
  }
  return "vision_encoder." + rest;  // ln_pre.weight, patch_conv.weight (others refused by the loader)
}

std::string HfToNativeName(const std::string& hf_name, const std::string& file_name, bool language_model_prefix) {
  // FP8 scales: the weight's name with the scale's native suffix.
  static const std::pair<const char*, const char*> kScales[] = {
      {".weight_scale_inv", ".qscale_weight"}, {".weight_scale", ".qscale_weight"}, {".activation_scale", ".qscale_act"}};
  for (const auto& [hf_suffix, native_suffix] : kScales) {
    const std::string suffix = hf_suffix;
    if (hf_name.size() > suffix.size() && hf_name.compare(hf_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string weight = HfToNativeName(hf_name.substr(0, hf_name.size() - suffix.size()) + ".weight",
                                                file_name, language_model_prefix);
      if (weight.empty()) return "";
      return weight.substr(0, weight.size() - std::string(".weight").size()) + native_suffix;
    }
  }
  std::string hf = hf_name;
  if (const std::string vision = HfVisionToNativeName(hf); !vision.empty()) return vision;
  if (language_model_prefix) {
    // transformers 5 (model.language_model.*, lm_head) and 4 (language_model.model.*,
    // language_model.lm_head) layouts of the conditional-generation classes.
    static const std::string kPrefix = "model.language_model.", kOldPrefix = "language_model.model.";
    if (hf.rfind(kPrefix, 0) == 0) {
      hf = "model." + hf.substr(kPrefix.size());
    } else if (hf.rfind(kOldPrefix, 0) == 0) {
      hf = "model." + hf.substr(kOldPrefix.size());
    } else if (hf == "language_model.lm_head.weight") {
      hf = "lm_head.weight";
    } else if (hf != "lm_head.weight") {
      throw FormatError(file_name + ": unexpected tensor \"" + hf_name + "\" (the text model is under model.language_model.)");
    }
  }
  if (hf == "model.embed_tokens.weight") return "tok_embeddings.weight";
  if (hf == "model.norm.weight") return "norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  if (hf.find("rotary_emb.inv_freq") != std::string::npos) return "";
  static const std::regex kLayer(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch match;
  if (!std::regex_match(hf, match, kLayer)) {
    if (IsVisionTensor(hf)) return "";
    throw FormatError(file_name + ": unexpected tensor \"" + hf + "\"");
  }
  std::string prefix = "layers." + match[1].str() + ".";
  std::string rest = match[2].str();
  static const std::pair<const char*, const char*> kMap[] = {
      {"input_layernorm.weight", "attention_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attention.wq.weight"},
      {"self_attn.k_proj.weight", "attention.wk.weight"},
      {"self_attn.v_proj.weight", "attention.wv.weight"},
      {"self_attn.o_proj.weight", "attention.wo.weight"},
      {"mlp.gate_proj.weight", "feed_forward.w1.weight"},
      {"mlp.down_proj.weight", "feed_forward.w2.weight"},
      {"mlp.up_proj.weight", "feed_forward.w3.weight"},
      {"block_sparse_moe.gate.weight", "feed_forward.gate.weight"},
  };
  for (const auto& [from, to] : kMap) {
    if (rest == from) return prefix + to;
  }
  static const std::regex kExpert(R"(block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight)");
  if (std::regex_match(rest, match, kExpert)) {
    return prefix + "feed_forward.experts." + match[1].str() + "." + match[2].str() + ".weight";
  }
  if (rest.find("rotary_emb.inv_freq") != std::string::npos) return "";
  throw FormatError(file_name + ": unexpected tensor \"" + hf + "\"");
}

std::vector<uint8_t> UnpermuteHfRope(std::span<const uint8_t> hf_rows, int64_t n_heads,
                                     int64_t head_dim, int64_t cols, size_t element_size) {
  const size_t row_bytes = static_cast<size_t>(cols) * element_size;
  std::vector<uint8_t> native(hf_rows.size());
  const int64_t half = head_dim / 2;
  for (int64_t head = 0; head < n_heads; ++head) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t c = 0; c < 2; ++c) {
        int64_t native_row = head * head_dim + 2 * i + c;
        int64_t hf_row = head * head_dim + c * half + i;
        std::memcpy(native.data() + native_row * row_bytes, hf_rows.data() + hf_row * row_bytes, row_bytes);
      }
    }
  }
  return native;
}

CheckpointTensors CheckpointTensors::Open(const ModelFolder& folder, DType fp8_target, GgufDecode gguf_decode,
                                          bool vision) {
  CheckpointTensors result;
  if (vision && folder.layout == CheckpointLayout::kGguf) {
    throw Unsupported(folder.path + ": bora does not read vision towers from GGUF files (mmproj)");
  }
  if (folder.layout == CheckpointLayout::kGguf) {
    result.OpenGguf(folder, gguf_decode);
    return result;
  }
  const bool hf = folder.layout == CheckpointLayout::kHuggingFace;
  const ModelParams& params = folder.params;
  static const std::regex kLayerIndex(R"(layers\.(\d+)\..*)");
  for (const std::string& path : folder.weight_files) {
    result.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::Open(path)));
    const SafetensorsFile& file = *result.files_.back();
    for (const TensorInfo& info : file.header().tensors) {
      std::string name = info.name;
      if (hf) {
        name = HfToNativeName(info.name, path, params.hf_language_model_prefix);
        if (name.empty() || IsVisionTensor(name) != vision) continue;
      } else if (IsVisionTensor(name) != vision) {
        if (vision || folder.params.vision) continue;
        throw FormatError(path + ": tensor \"" + info.name + "\" belongs to a vision tower but " + folder.config_file +
                          " has no vision_encoder block; does the config match the weights?");
      }
      std::smatch match;
      if (std::regex_match(name, match, kLayerIndex)) {
        // Layer indices beyond n_layers mean the config does not describe these weights.
        const std::string digits = match[1].str();
        if (digits.size() > 6 || std::stoll(digits) >= params.n_layers) {
          throw FormatError(path + ": tensor \"" + info.name + "\" belongs to layer " + digits + " but " +
                            folder.config_file + " says n_layers = " + std::to_string(params.n_layers));
        }
      }
      auto entry = std::make_unique<Entry>();
      entry->file = &file;
      entry->info = &info;
      if (!result.tensors_.emplace(name, std::move(entry)).second) {
        throw FormatError(path + ": tensor \"" + info.name + "\" appears in more than one weight file");
      }
    }
  }
  result.DequantizeFp8(folder, fp8_target);
  if (hf && !vision) {
    // Un-permute q/k rows so the model can use interleaved-pair RoPE for both layouts.
    for (int64_t layer = 0; layer < params.n_layers; ++layer) {
      for (const auto& [suffix, heads] : {std::pair<const char*, int64_t>{"wq", params.n_heads},
                                          std::pair<const char*, int64_t>{"wk", params.n_kv_heads}}) {
        std::string name = "layers." + std::to_string(layer) + ".attention." + suffix + ".weight";
        auto it = result.tensors_.find(name);
        if (it == result.tensors_.end()) continue;  // reported as missing by Get()
        Entry& entry = *it->second;
        const std::vector<int64_t>& shape = entry.info->shape;
        if (shape.size() != 2 || shape[0] != heads * params.head_dim) continue;  // Get() reports
        if (entry.dequantized) {
          entry.owned = UnpermuteHfRope(entry.owned, heads, params.head_dim, shape[1], DTypeSize(entry.owned_dtype));
        } else {
          TensorView view = entry.file->View(*entry.info);
          entry.owned = UnpermuteHfRope(view.bytes, heads, params.head_dim, shape[1], DTypeSize(view.dtype));
        }
      }
    }
  }
  if (hf && vision && params.vision) {
    // The vision tower's q/k rows too (the converters permute them like the text model's).
    const VisionParams& v = *params.vision;
    for (int64_t layer = 0; layer < v.num_hidden_layers; ++layer) {
      for (const char* suffix : {"wq", "wk"}) {
        auto it = result.tensors_.find("vision_encoder.transformer.layers." + std::to_string(layer) + ".attention." +
                                       suffix + ".weight");
        if (it == result.tensors_.end()) continue;
        Entry& entry = *it->second;
        const std::vector<int64_t>& shape = entry.info->shape;
        if (shape.size() != 2 || shape[0] != v.hidden_size || entry.dequantized) continue;  // Get() reports
        TensorView view = entry.file->View(*entry.info);
        entry.owned = UnpermuteHfRope(view.bytes, v.num_attention_heads, v.head_dim(), shape[1], DTypeSize(view.dtype));
      }
    }
  }
  if (params.tie_embeddings && !vision) {
    // Tied models (Ministral 3 3B): the output projection is the embedding table.
    if (result.Contains("output.weight")) {
      throw FormatError(folder.config_file + ": the model has tied embeddings but the weights also hold an output "
                        "projection (output.weight / lm_head.weight); which one is meant is ambiguous");
    }
    auto it = result.tensors_.find("tok_embeddings.weight");
    if (it != result.tensors_.end()) {
      auto tied = std::make_unique<Entry>(*it->second);
      result.tensors_.emplace("output.weight", std::move(tied));
    }
  }
  return result;
}

float Fp8ToF32(uint8_t byte, bool e5m2) {
  const float sign = (byte & 0x80) ? -1.0f : 1.0f;
  if (e5m2) {
    const int exponent = (byte >> 2) & 0x1F, mantissa = byte & 0x3;
    if (exponent == 0x1F) return mantissa == 0 ? sign * INFINITY : NAN;
    if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa) / 4.0f, -14);
    return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 4.0f, exponent - 15);
  }
  const int exponent = (byte >> 3) & 0xF, mantissa = byte & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return NAN;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa) / 8.0f, -6);
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
}

namespace {

std::string ShapeText(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

// The float32 values of a scale tensor (F32 or BF16); FormatError for other dtypes or
// non-finite / non-positive values.
std::vector<float> ScaleValues(const TensorView& view, const std::string& where) {
  if (view.dtype != DType::kF32 && view.dtype != DType::kBF16) {
    throw Unsupported(where + ": scale dtype " + view.info->dtype_name + " is not supported (F32 or BF16)");
  }
  const int64_t count = view.NumElements();
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if (view.dtype == DType::kF32) {
      std::memcpy(&values[i], view.bytes.data() + 4 * i, 4);
    } else {
      uint16_t bits;
      std::memcpy(&bits, view.bytes.data() + 2 * i, 2);
      const uint32_t wide = static_cast<uint32_t>(bits) << 16;
      std::memcpy(&values[i], &wide, 4);
    }
    if (!std::isfinite(values[i]) || !(values[i] > 0)) {
      throw FormatError(where + ": scale " + std::to_string(values[i]) + " is not a finite positive number");
    }
  }
  return values;
}

}  // namespace

void CheckpointTensors::DequantizeFp8(const ModelFolder& folder, DType target) {
  const bool declared = folder.params.quantization == WeightQuantization::kFp8;
  std::vector<std::string> scale_names;
  for (auto& [name, entry_pointer] : tensors_) {
    Entry& entry = *entry_pointer;
    const std::string& dtype = entry.info->dtype_name;
    const std::string where = entry.file->path() + ": tensor \"" + entry.info->name + "\"";
    if (dtype != "F8_E4M3" && dtype != "F8_E5M2") continue;
    if (!declared) {
      throw FormatError(where + " is " + dtype + " but " + folder.config_file +
                        " declares no FP8 quantization (params.json quantization / config.json quantization_config)");
    }
    const std::string suffix = ".weight";
    if (entry.info->shape.size() != 2 || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      throw Unsupported(where + ": FP8 is supported for 2-D linear weights only");
    }
    const std::string stem = name.substr(0, name.size() - suffix.size());
    auto scale_it = tensors_.find(stem + ".qscale_weight");
    if (scale_it == tensors_.end()) {
      throw FormatError(where + " is " + dtype + " without its scale (qscale_weight / weight_scale_inv)");
    }
    const Entry& scale_entry = *scale_it->second;
    const TensorView scale_view = scale_entry.file->View(*scale_entry.info);
    const std::string scale_where = scale_entry.file->path() + ": scale \"" + scale_entry.info->name + "\"";
    const std::vector<float> scales = ScaleValues(scale_view, scale_where);
    const int64_t rows = entry.info->shape[0], cols = entry.info->shape[1];
    const std::vector<int64_t>& scale_shape = scale_entry.info->shape;
    // Per tensor ([] or [1]) or per output row ([rows] or [rows, 1]); block scales are refused.
    bool per_row = false;
    if (scale_shape.empty() || scale_shape == std::vector<int64_t>{1}) {
      per_row = false;
    } else if (scale_shape == std::vector<int64_t>{rows} || scale_shape == std::vector<int64_t>{rows, 1}) {
      per_row = true;
    } else {
      throw Unsupported(scale_where + " has shape " + ShapeText(scale_shape) + " for a weight of shape " +
                        ShapeText(entry.info->shape) +
                        "; bora reads per-tensor and per-row FP8 scales (128x128 block scales belong to Mistral "
                        "Small 4 / Large 3, not supported yet)");
    }
    if (auto act_it = tensors_.find(stem + ".qscale_act"); act_it != tensors_.end()) {
      const Entry& act = *act_it->second;
      const std::string act_where = act.file->path() + ": activation scale \"" + act.info->name + "\"";
      if (act.info->shape.size() > 1 || (act.info->shape.size() == 1 && act.info->shape[0] != 1)) {
        throw Unsupported(act_where + " has shape " + ShapeText(act.info->shape) + "; per-tensor activation scales only");
      }
      ScaleValues(act.file->View(*act.info), act_where);  // validated, then unused on CPU
      scale_names.push_back(stem + ".qscale_act");
    }
    scale_names.push_back(stem + ".qscale_weight");
    const bool e5m2 = dtype == "F8_E5M2";
    float table[256];
    for (int b = 0; b < 256; ++b) table[b] = Fp8ToF32(static_cast<uint8_t>(b), e5m2);
    const uint8_t* source = entry.file->RawBytes(*entry.info).data();
    entry.owned.resize(static_cast<size_t>(rows * cols) * DTypeSize(target));
    for (int64_t r = 0; r < rows; ++r) {
      const float scale = scales[per_row ? r : 0];
      for (int64_t c = 0; c < cols; ++c) {
        const float value = table[source[r * cols + c]];
        if (!std::isfinite(value)) {
          throw FormatError(where + ": element [" + std::to_string(r) + ", " + std::to_string(c) + "] is not finite");
        }
        const float weight = value * scale;
        if (target == DType::kF32) {
          std::memcpy(entry.owned.data() + 4 * (r * cols + c), &weight, 4);
        } else {
          const uint16_t bits = F32ToBf16(weight);
          std::memcpy(entry.owned.data() + 2 * (r * cols + c), &bits, 2);
        }
      }
    }
    entry.owned_dtype = target;
    entry.dequantized = true;
  }
  for (const std::string& name : scale_names) tensors_.erase(name);
}

std::vector<std::string> CheckpointTensors::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : tensors_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

TensorView CheckpointTensors::GetAnyShape(const std::string& native_name) const {
  auto it = tensors_.find(native_name);
  if (it == tensors_.end()) throw FormatError("weights are missing tensor \"" + native_name + "\"");
  return Get(native_name, it->second->info->shape);
}

TensorView CheckpointTensors::Get(const std::string& native_name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(native_name);
  auto shape_text = [](const std::vector<int64_t>& dims) {
    std::string text = "[";
    for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + "]";
  };
  if (it == tensors_.end()) {
    throw FormatError("weights are missing tensor \"" + native_name + "\" (Mistral-native name) needed by shape " +
                      shape_text(shape) + "; does the config match the weights?");
  }
  const Entry& entry = *it->second;
  TensorView view;
  if (entry.dequantized || entry.file == nullptr) {
    view.info = entry.info;
    view.dtype = entry.owned_dtype;
    view.bytes = entry.mapped;
  } else {
    view = entry.file->View(*entry.info);
  }
  if (view.info->shape != shape) {
    throw FormatError(SourcePath(entry) + ": tensor \"" + entry.info->name + "\" has shape " +
                      shape_text(view.info->shape) + ", the config implies " + shape_text(shape));
  }
  if (!entry.owned.empty()) view.bytes = std::span<const uint8_t>(entry.owned);
  if (entry.dequantized) view.dtype = entry.owned_dtype;
  return view;
}

const std::string& CheckpointTensors::SourcePath(const Entry& entry) const {
  static const std::string kUnknown = "weights";
  if (entry.file != nullptr) return entry.file->path();
  return gguf_ ? gguf_->path() : kUnknown;
}

void CheckpointTensors::RejectUnused(const std::vector<std::string>& used) const {
  std::set<std::string> used_set(used.begin(), used.end());
  for (const auto& [name, entry] : tensors_) {
    if (used_set.count(name) == 0) {
      throw FormatError(SourcePath(*entry) + ": unexpected tensor \"" + entry->info->name +
                        "\" that the config does not describe; does the config match the weights?");
    }
  }
}

}  // namespace bora::formats
