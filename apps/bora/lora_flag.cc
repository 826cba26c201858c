// Loading the adapter named by --lora.
#include "lora_flag.h"

#include "formats/model_folder.h"

namespace bora::app {

LoraFlag LoadLoraFlag(const std::string& lora_dir, const std::string& model_dir) {
  LoraFlag flag;
  if (lora_dir.empty()) return flag;
  const formats::ModelFolder folder = formats::InspectModelFolder(model_dir);
  flag.adapter =
      std::make_shared<const model::LoraAdapter>(model::LoadLoraAdapter(lora_dir, folder.params));
  if (!flag.adapter->instruct_version.empty()) {
    flag.version = tokenizer::ParseInstructVersion(flag.adapter->instruct_version);
  }
  return flag;
}

}  // namespace bora::app
