// Loading a served model and describing it as a model card.
#include "server/served_model.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>

#include "base/error.h"
#include "dist/sharded_model.h"
#include "tokenizer/instruct_encoder.h"

namespace bora::server {
namespace fs = std::filesystem;

std::unique_ptr<ServedModel> ServedModel::Load(const std::string& id, const std::string& dir,
                                               const model::LoadOptions& load,
                                               const runtime::EngineOptions& engine) {
  std::unique_ptr<ServedModel> served(new ServedModel());
  served->id_ = id;
  served->dir_ = dir;
  // First, on every rank alike: under mpirun the ranks load their parts together.
  dist::ShardedModel sharded = dist::LoadShardedModel(dir, load);
  served->comm_ = std::move(sharded.comm);
  served->model_ = std::move(sharded.model);
  served->group_ = std::move(sharded.group);
  const std::string tokenizer_file = tokenizer::FindTokenizerFile(dir);
  if (tokenizer_file.empty()) {
    throw InvalidArgument(
        dir +
        ": no tokenizer file (tekken.json or tokenizer.model*) in the model folder; "
        "serving needs one to build prompts");
  }
  served->tokenizer_ = tokenizer::LoadTokenizer(tokenizer_file);
  served->version_ = served->tokenizer_.version.version;
  if (served->tokenizer_.tokenizer->vocab_size() != served->model_->params().vocab_size) {
    throw FormatError(dir + ": the tokenizer has " +
                      std::to_string(served->tokenizer_.tokenizer->vocab_size()) +
                      " ids but the model's vocabulary is " +
                      std::to_string(served->model_->params().vocab_size));
  }
  // Pieces as written (SentencePiece's U+2581 counts 3 bytes) and as decoded: the larger
  // bounds the text one token covers, special and user-defined pieces included.
  const tokenizer::Tokenizer& tok = *served->tokenizer_.tokenizer;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const int64_t bytes =
        static_cast<int64_t>(std::max(tok.TokenBytes(id).size(), tok.IdToPiece(id).size()));
    served->max_token_bytes_ = std::max(served->max_token_bytes_, bytes);
  }
  served->vision_ = vision::LoadVisionFor(*served->model_, load.dtype, served->group_ != nullptr);
  runtime::EngineOptions engine_options = engine;
  if (served->vision_ != nullptr) {
    if (!tok.image_config()) {
      std::fprintf(stderr, "note: %s: the tokenizer has no image settings; this model answers text only\n",
                   dir.c_str());
      served->vision_.reset();
    } else {
      vision::CheckImageConfig(*served->vision_, *tok.image_config(), dir);
    }
  }
  engine_options.vision = served->vision_.get();
  served->engine_ = std::make_unique<runtime::Engine>(*served->model_,
                                                      served->tokenizer_.tokenizer.get(), engine_options);

  std::ifstream config(fs::path(dir) / "generation_config.json");
  if (config) {
    try {
      const Json parsed = Json::parse(config);
      if (parsed.contains("temperature") && parsed["temperature"].is_number()) {
        served->default_temperature_ = parsed["temperature"].get<double>();
      }
    } catch (const Json::exception&) {
      throw FormatError(dir + "/generation_config.json: not valid JSON");
    }
  }
  served->supports_fim_ = served->version() != tokenizer::InstructVersion::kV1 &&
                          tok.FindSpecial("[SUFFIX]") && tok.FindSpecial("[PREFIX]");
  served->supports_tools_ = tok.FindSpecial("[TOOL_CALLS]").has_value() &&
                            tok.FindSpecial("[AVAILABLE_TOOLS]").has_value();
  served->created_ = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return served;
}

std::unique_ptr<ServedModel> ServedModel::LoadAdapter(const std::string& name,
                                                      const std::string& dir, ServedModel& base) {
  if (base.is_adapter())
    throw InvalidArgument("a LoRA adapter needs a base model, not another adapter");
  std::unique_ptr<ServedModel> served(new ServedModel());
  served->id_ = name;
  served->dir_ = dir;
  if (name.rfind("ft:", 0) != 0) served->alias_ = "ft:" + base.id() + ":" + name;
  served->base_ = &base;
  served->adapter_ = std::make_shared<const model::LoraAdapter>(
      model::LoadLoraAdapter(dir, base.model().params()));
  served->version_ = base.version();
  if (!served->adapter_->instruct_version.empty()) {
    try {
      served->version_ = tokenizer::ParseInstructVersion(served->adapter_->instruct_version);
      // Fails now, not per request, when the tokenizer lacks this version's control tokens.
      tokenizer::InstructEncoder check(base.tokenizer(), served->version_);
    } catch (const Error& e) {
      throw FormatError(dir + ": instruct version " + served->adapter_->instruct_version +
                        " cannot be used with " + base.id() + "'s tokenizer: " + e.what());
    }
  }
  served->max_token_bytes_ = base.max_token_bytes_;
  served->default_temperature_ = base.default_temperature_;
  const tokenizer::Tokenizer& tok = base.tokenizer();
  served->supports_fim_ = served->version_ != tokenizer::InstructVersion::kV1 &&
                          tok.FindSpecial("[SUFFIX]") && tok.FindSpecial("[PREFIX]");
  served->supports_tools_ = base.supports_tools_;
  served->created_ = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return served;
}

Json ServedModel::Card() const {
  Json card;
  card["id"] = id_;
  card["object"] = "model";
  card["created"] = created_;
  card["owned_by"] = "bora";
  card["type"] = base_ != nullptr ? "fine-tuned" : "base";
  card["capabilities"] = {{"completion_chat", true},
                          {"completion_fim", supports_fim_},
                          {"function_calling", supports_tools_},
                          {"fine_tuning", false},
                          {"vision", supports_images()},
                          {"classification", false}};
  card["name"] = id_;
  card["description"] = "served by bora from " + fs::path(dir_).filename().string();
  card["max_context_length"] = context_length();
  card["aliases"] = alias_.empty() ? Json::array() : Json::array({alias_});
  card["deprecation"] = nullptr;
  card["default_model_temperature"] = default_temperature_;
  if (base_ != nullptr) {
    // Mistral's FTModelCard (job, root, archived) and the OpenAI-style `parent` of vLLM's
    // adapter cards.
    card["description"] = "LoRA adapter " + fs::path(dir_).filename().string() + " (rank " +
                          std::to_string(adapter_->rank) + ") on " + base_->id();
    card["job"] = job_;
    card["root"] = base_->id();
    card["parent"] = base_->id();
    card["archived"] = false;
  }
  return card;
}

}  // namespace bora::server
