// One model a server offers: its weights, tokenizer and instruct version, the engine that runs
// its requests, and the model card both API dialects read. A LoRA adapter is offered as a model
// of its own that runs on its base model's engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dist/tensor_parallel.h"
#include "model/lora_adapter.h"
#include "model/transformer.h"
#include "runtime/engine.h"
#include "server/json_body.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/load_tokenizer.h"
#include "vision/vision_encoder.h"

namespace bora::server {

class ServedModel {
 public:
  // Loads `dir` (weights + its tokenizer file) and starts its engine. Throws bora errors naming
  // the folder (no tokenizer file, bad weights, memory).
  static std::unique_ptr<ServedModel> Load(const std::string& id, const std::string& dir,
                                           const model::LoadOptions& load,
                                           const runtime::EngineOptions& engine);

  // Offers the LoRA adapter in `dir` as model `name` (also addressable as
  // "ft:<base id>:<name>" unless `name` starts with "ft:" already) on `base`'s engine and tokenizer, prompting with the adapter's
  // instruct version when it names one. `base` must outlive the result. Throws bora errors
  // naming the folder (see LoadLoraAdapter; an instruct version the tokenizer cannot encode).
  static std::unique_ptr<ServedModel> LoadAdapter(const std::string& name, const std::string& dir,
                                                  ServedModel& base);

  const std::string& id() const { return id_; }
  // The folder the weights (or the adapter) were loaded from.
  const std::string& dir() const { return dir_; }
  // The fine-tuning job that made this adapter (its card's `job`).
  void set_job(std::string job_id) { job_ = std::move(job_id); }
  // Whether requests naming `name` go to this model (its id or, for adapters, its ft: alias).
  bool Answers(const std::string& name) const {
    return name == id_ || (!alias_.empty() && name == alias_);
  }
  model::Transformer& model() { return base_ != nullptr ? base_->model() : *model_; }
  const tokenizer::Tokenizer& tokenizer() const {
    return base_ != nullptr ? base_->tokenizer() : *tokenizer_.tokenizer;
  }
  tokenizer::InstructVersion version() const { return version_; }
  runtime::Engine& engine() { return base_ != nullptr ? base_->engine() : *engine_; }
  // The adapter every request to this model runs with (null for a base model).
  std::shared_ptr<const model::LoraAdapter> adapter() const { return adapter_; }
  bool is_adapter() const { return base_ != nullptr; }
  int64_t context_length() const {
    return base_ != nullptr ? base_->context_length() : model_->context_length();
  }
  // Most text bytes one token of this tokenizer can stand for: a prompt of B bytes has at
  // least B / max_token_bytes() tokens (the cheap bound that refuses huge prompts early).
  int64_t max_token_bytes() const { return max_token_bytes_; }
  // generation_config.json's temperature, else 0.7: what a request without `temperature` gets.
  float default_temperature() const { return static_cast<float>(default_temperature_); }
  bool supports_fim() const { return supports_fim_; }
  bool supports_tools() const { return supports_tools_; }
  // Limits on the images of one chat request (--max-images, --max-image-bytes, --max-image-pixels).
  const tokenizer::ImageRequestLimits& image_limits() const {
    return base_ != nullptr ? base_->image_limits() : image_limits_;
  }
  void set_image_limits(const tokenizer::ImageRequestLimits& limits) { image_limits_ = limits; }
  // Whether chat requests may carry images (a vision tower and tokenizer image settings).
  bool supports_images() const { return base_ != nullptr ? base_->supports_images() : vision_ != nullptr; }
  int64_t created() const { return created_; }

  // A card with the OpenAI fields and the Mistral BaseModelCard fields (type, capabilities...).
  Json Card() const;

 private:
  ServedModel() = default;

  std::string id_;
  std::string dir_;
  std::string alias_;            // adapters: "ft:<base id>:<id>" (none when id starts "ft:")
  std::string job_;              // adapters made by a fine-tuning job: its id
  ServedModel* base_ = nullptr;  // adapters: the model whose engine runs them
  std::shared_ptr<const model::LoraAdapter> adapter_;
  tokenizer::InstructVersion version_ = tokenizer::InstructVersion::kV1;
  std::unique_ptr<dist::Communicator> comm_;  // under mpirun: this model's own communicator
  std::unique_ptr<model::Transformer> model_;
  std::unique_ptr<vision::VisionEncoder> vision_;  // null: text only
  tokenizer::ImageRequestLimits image_limits_;
  std::unique_ptr<dist::TensorParallelGroup> group_;  // under mpirun: rank 0's side of the group
  tokenizer::LoadedTokenizer tokenizer_;
  int64_t max_token_bytes_ = 1;
  std::unique_ptr<runtime::Engine> engine_;
  double default_temperature_ = 0.7;
  bool supports_fim_ = false;
  bool supports_tools_ = false;
  int64_t created_ = 0;
};

}  // namespace bora::server
