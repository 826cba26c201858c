// Saving and loading the exact training state (parameters, moments, step, data position).
#include "train/training_state.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/durable_file.h"
#include "base/error.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"

namespace bora::train {
namespace {

constexpr const char* kTensors = "training_state.safetensors";
constexpr const char* kJson = "training_state.json";

// (tensor name, vector) for every array of params, m and v in one fixed order.
template <typename Adapter, typename Visit>
void ForEachArray(Adapter& params, Adapter& m, Adapter& v, Visit&& visit) {
  for (const auto& entry : {std::pair{&params, "param."}, {&m, "adam_m."}, {&v, "adam_v."}}) {
    const std::string prefix = entry.second;  // (clang 14 cannot capture structured bindings)
    entry.first->ForEachMatrix([&](auto& matrix, const std::string& name) {
      visit(prefix + name + ".lora_A", matrix.a, std::vector<int64_t>{matrix.rank, matrix.in});
      visit(prefix + name + ".lora_B", matrix.b, std::vector<int64_t>{matrix.out, matrix.rank});
    });
  }
}

}  // namespace

void SaveTrainingState(const TrainingState& state, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  auto& params = const_cast<model::LoraAdapter&>(state.params);
  auto& m = const_cast<model::LoraAdapter&>(state.optimizer.m);
  auto& v = const_cast<model::LoraAdapter&>(state.optimizer.v);
  std::vector<formats::TensorSpec> specs;
  std::vector<const std::vector<float>*> arrays;
  ForEachArray(
      params, m, v,
      [&](const std::string& name, std::vector<float>& values, std::vector<int64_t> shape) {
        specs.push_back({name, DType::kF32, std::move(shape)});
        arrays.push_back(&values);
      });
  formats::SafetensorsWriter writer(dir + "/" + kTensors, specs);
  for (const std::vector<float>* values : arrays) {
    writer.Append(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values->data()),
                                           values->size() * sizeof(float)));
  }
  writer.Finish();
  tokenizer::OrderedJson json;
  json["step"] = state.step;
  json["optimizer_step"] = state.optimizer.step;
  json["data"] = state.data;
  json["settings"] = state.settings;
  // Written last: a checkpoint whose training_state.json exists is complete (the tensors were
  // synced to disk first).
  WriteFileDurably(dir + "/" + kJson, json.dump(2) + "\n");
}

void LoadTrainingState(const std::string& dir, TrainingState& state) {
  const std::string json_path = dir + "/" + kJson;
  std::ifstream in(json_path, std::ios::binary);
  if (!in) throw IoError("cannot read " + json_path);
  std::stringstream text;
  text << in.rdbuf();
  const tokenizer::OrderedJson json =
      tokenizer::OrderedJson::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("step") ||
      !json["step"].is_number_integer() || !json.contains("optimizer_step") ||
      !json["optimizer_step"].is_number_integer() || !json.contains("data") ||
      !json.contains("settings")) {
    throw FormatError(json_path +
                      ": not a bora training state (step, optimizer_step, data, settings)");
  }
  if (json["settings"] != state.settings) {
    std::string differences;
    for (const auto& item : state.settings.items()) {
      const auto saved = json["settings"].find(item.key());
      if (saved == json["settings"].end() || *saved != item.value()) {
        differences += (differences.empty() ? "" : ", ") + item.key() + " was " +
                       (saved == json["settings"].end() ? std::string("unset") : saved->dump()) +
                       ", now " + item.value().dump();
      }
    }
    throw InvalidArgument("cannot resume from " + dir + ": it was trained with other settings (" +
                          differences + "); use the same flags or a new --out");
  }
  state.step = json["step"].get<int64_t>();
  state.data = json["data"];
  state.optimizer = NewAdamWState(state.params);
  state.optimizer.step = json["optimizer_step"].get<int64_t>();
  const formats::SafetensorsFile file = formats::SafetensorsFile::Open(dir + "/" + kTensors);
  ForEachArray(
      state.params, state.optimizer.m, state.optimizer.v,
      [&](const std::string& name, std::vector<float>& values, std::vector<int64_t> shape) {
        const formats::TensorInfo* info = file.Find(name);
        if (info == nullptr) throw FormatError(file.path() + ": missing tensor " + name);
        const formats::TensorView view = file.View(*info);
        if (view.dtype != DType::kF32 ||
            view.NumElements() != static_cast<int64_t>(values.size()) ||
            view.bytes.size() != values.size() * sizeof(float)) {
          throw FormatError(file.path() + ": tensor " + name +
                            " does not have the adapter's f32 shape");
        }
        (void)shape;
        std::memcpy(values.data(), view.bytes.data(), view.bytes.size());
      });
}

bool HasTrainingState(const std::string& dir) {
  struct stat info;
  return ::stat((dir + "/" + kTensors).c_str(), &info) == 0 &&
         ::stat((dir + "/" + kJson).c_str(), &info) == 0;
}

}  // namespace bora::train
