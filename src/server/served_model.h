// One model a server offers: its weights, tokenizer and instruct version, the engine that runs
// its requests, and the model card both API dialects read.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/transformer.h"
#include "runtime/engine.h"
#include "server/json_body.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::server {

class ServedModel {
 public:
  // Loads `dir` (weights + its tokenizer file) and starts its engine. Throws bora errors naming
  // the folder (no tokenizer file, bad weights, memory).
  static std::unique_ptr<ServedModel> Load(const std::string& id, const std::string& dir,
                                           const model::LoadOptions& load,
                                           const runtime::EngineOptions& engine);

  const std::string& id() const { return id_; }
  model::Transformer& model() { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_.tokenizer; }
  tokenizer::InstructVersion version() const { return tokenizer_.version.version; }
  runtime::Engine& engine() { return *engine_; }
  int64_t context_length() const { return model_->context_length(); }
  // Most text bytes one token of this tokenizer can stand for: a prompt of B bytes has at
  // least B / max_token_bytes() tokens (the cheap bound that refuses huge prompts early).
  int64_t max_token_bytes() const { return max_token_bytes_; }
  // generation_config.json's temperature, else 0.7: what a request without `temperature` gets.
  float default_temperature() const { return static_cast<float>(default_temperature_); }
  bool supports_fim() const { return supports_fim_; }
  bool supports_tools() const { return supports_tools_; }
  int64_t created() const { return created_; }

  // A card with the OpenAI fields and the Mistral BaseModelCard fields (type, capabilities...).
  Json Card() const;

 private:
  ServedModel() = default;

  std::string id_;
  std::string dir_;
  std::unique_ptr<model::Transformer> model_;
  tokenizer::LoadedTokenizer tokenizer_;
  int64_t max_token_bytes_ = 1;
  std::unique_ptr<runtime::Engine> engine_;
  double default_temperature_ = 0.7;
  bool supports_fim_ = false;
  bool supports_tools_ = false;
  int64_t created_ = 0;
};

}  // namespace bora::server
