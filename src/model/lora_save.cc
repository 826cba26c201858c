// Writing a LoRA adapter in mistral-finetune's consolidated layout (lora.safetensors in BF16,
// params.json with the `lora` block, the tokenizer file).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/durable_file.h"
#include "base/error.h"
#include "base/float16.h"
#include "formats/safetensors_writer.h"
#include "model/lora_adapter.h"

namespace bora::model {
namespace {

namespace fs = std::filesystem;

void AppendBf16(formats::SafetensorsWriter& writer, const std::vector<float>& values,
                std::vector<uint16_t>& buffer) {
  buffer.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) buffer[i] = F32ToBf16(values[i]);
  writer.Append(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buffer.data()),
                                         buffer.size() * sizeof(uint16_t)));
}

// The double closest to the shortest decimal that reads back as `value` (0.1f -> 0.1, not
// 0.10000000149011612), so params.json shows the numbers the user gave.
double ShortestDecimal(float value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  return std::strtod(std::string(text, result.ptr).c_str(), nullptr);
}

}  // namespace

void SaveLoraAdapter(const LoraAdapter& adapter, const formats::ModelParams& base,
                     const std::string& dir, const std::string& tokenizer_file) {
  ValidateLoraAdapter(adapter, base);
  std::vector<formats::TensorSpec> specs;
  adapter.ForEachMatrix([&](const LoraMatrix& m, const std::string& name) {
    for (const std::vector<float>* values : {&m.a, &m.b}) {
      for (float value : *values) {
        if (!std::isfinite(value)) {
          throw InvalidArgument("LoRA matrix " + name + " holds a non-finite value; not saved");
        }
      }
    }
    specs.push_back({name + ".lora_A.weight", DType::kBF16, {m.rank, m.in}});
    specs.push_back({name + ".lora_B.weight", DType::kBF16, {m.out, m.rank}});
  });
  if (specs.empty()) throw InvalidArgument("the LoRA adapter has no matrices; nothing to save");

  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError(dir + ": cannot create: " + error.message());
  {
    formats::SafetensorsWriter writer((fs::path(dir) / "lora.safetensors").string(), specs);
    std::vector<uint16_t> buffer;
    adapter.ForEachMatrix([&](const LoraMatrix& m, const std::string&) {
      AppendBf16(writer, m.a, buffer);
      AppendBf16(writer, m.b, buffer);
    });
    writer.Finish();
  }

  // The base model's params plus the LoRA block, as mistral-finetune's ModelArgs serialise.
  nlohmann::ordered_json params = nlohmann::ordered_json::parse(formats::MistralParamsJson(base));
  params["lora"] = {{"enable", true},
                    {"rank", adapter.rank},
                    {"dropout", ShortestDecimal(adapter.dropout)},
                    {"scaling", ShortestDecimal(adapter.scaling)}};
  if (!adapter.instruct_version.empty()) {
    params[kLoraInstructVersionKey] = adapter.instruct_version;
  }
  WriteFileDurably((fs::path(dir) / "params.json").string(), params.dump(4) + "\n");

  if (!tokenizer_file.empty()) {
    const fs::path target = fs::path(dir) / fs::path(tokenizer_file).filename();
    std::ifstream in(tokenizer_file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw IoError(target.string() + ": cannot read the tokenizer file " + tokenizer_file);
    WriteFileDurably(target.string(), bytes.str());
  }
}

}  // namespace bora::model
