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

bool IsVisionTensor(const std::string& name) {
  static const char* kPrefixes[] = {"vision_encoder.", "vision_language_adapter.", "patch_merger.",
                                    "pre_mm_projector_norm.", "vision_tower.", "multi_modal_projector."};
  for (const char* prefix : kPrefixes) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
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

ModelFolder InspectModelFolder(const std::string& dir_text) {
  fs::path dir(dir_text);
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    throw IoError(dir_text + ": not a model folder (expected a directory with params.json or config.json)");
  }
  ModelFolder folder;
  folder.path = dir_text;
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

std::string HfToNativeName(const std::string& hf, const std::string& file_name) {
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

CheckpointTensors CheckpointTensors::Open(const ModelFolder& folder) {
  CheckpointTensors result;
  const bool hf = folder.layout == CheckpointLayout::kHuggingFace;
  const ModelParams& params = folder.params;
  static const std::regex kLayerIndex(R"(layers\.(\d+)\..*)");
  for (const std::string& path : folder.weight_files) {
    result.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::Open(path)));
    const SafetensorsFile& file = *result.files_.back();
    for (const TensorInfo& info : file.header().tensors) {
      std::string name = info.name;
      if (hf) {
        name = HfToNativeName(info.name, path);
        if (name.empty()) continue;
      } else if (IsVisionTensor(name)) {
        continue;
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
  if (hf) {
    // Un-permute q/k rows so the model can use interleaved-pair RoPE for both layouts.
    for (int64_t layer = 0; layer < params.n_layers; ++layer) {
      for (const auto& [suffix, heads] : {std::pair<const char*, int64_t>{"wq", params.n_heads},
                                          std::pair<const char*, int64_t>{"wk", params.n_kv_heads}}) {
        std::string name = "layers." + std::to_string(layer) + ".attention." + suffix + ".weight";
        auto it = result.tensors_.find(name);
        if (it == result.tensors_.end()) continue;  // reported as missing by Get()
        Entry& entry = *it->second;
        TensorView view = entry.file->View(*entry.info);
        if (view.info->shape.size() != 2 || view.info->shape[0] != heads * params.head_dim) continue;  // Get() reports
        entry.owned = UnpermuteHfRope(view.bytes, heads, params.head_dim, view.info->shape[1], DTypeSize(view.dtype));
      }
    }
    if (params.tie_embeddings && !result.Contains("output.weight") && result.Contains("tok_embeddings.weight")) {
      const Entry& embedding = *result.tensors_.at("tok_embeddings.weight");
      auto tied = std::make_unique<Entry>();
      tied->file = embedding.file;
      tied->info = embedding.info;
      result.tensors_.emplace("output.weight", std::move(tied));
    }
  }
  return result;
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
  TensorView view = entry.file->View(*entry.info);
  if (view.info->shape != shape) {
    throw FormatError(entry.file->path() + ": tensor \"" + entry.info->name + "\" has shape " +
                      shape_text(view.info->shape) + ", the config implies " + shape_text(shape));
  }
  if (!entry.owned.empty()) view.bytes = std::span<const uint8_t>(entry.owned);
  return view;
}

void CheckpointTensors::RejectUnused(const std::vector<std::string>& used) const {
  std::set<std::string> used_set(used.begin(), used.end());
  for (const auto& [name, entry] : tensors_) {
    if (used_set.count(name) == 0) {
      throw FormatError(entry->file->path() + ": unexpected tensor \"" + entry->info->name +
                        "\" that the config does not describe; does the config match the weights?");
    }
  }
}

}  // namespace bora::formats
