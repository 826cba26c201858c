// `bora chat --model DIR`: a terminal chat in the model's instruct format, streaming replies and
// keeping the history; /reset, /system TEXT, /exit.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "dist/sharded_model.h"
#include "lora_flag.h"
#include "formats/model_folder.h"
#include "image_flag.h"
#include "kv_flags.h"
#include "model/lora_adapter.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "runtime/engine.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::app {
namespace {

struct ChatFlags {
  std::string model_dir;
  std::string system;
  std::string lora_dir;
  float temperature = 0.7f;
  float top_p = 1.0f;
  std::optional<uint64_t> seed;
  int64_t max_tokens = 1024;
  int64_t context = 4096;
  int threads = 0;
  std::string dtype;
  std::vector<std::string> images;
  KvFlags kv;
};

tokenizer::Message MakeMessage(tokenizer::Role role, const std::string& text) {
  tokenizer::Message message;
  message.role = role;
  message.content = tokenizer::Content::Text(text);
  return message;
}

int RunChat(const ChatFlags& flags) {
  const std::string file = tokenizer::FindTokenizerFile(flags.model_dir);
  if (file.empty())
    throw InvalidArgument(flags.model_dir +
                          " has no tokenizer file (tekken.json, tokenizer.model*)");
  // A LoRA adapter applies to every turn; its instruct version (when saved) renders the chat.
  const LoraFlag lora_flag = LoadLoraFlag(flags.lora_dir, flags.model_dir);
  const std::shared_ptr<const model::LoraAdapter>& lora = lora_flag.adapter;
  const std::optional<tokenizer::InstructVersion>& version = lora_flag.version;
  tokenizer::LoadedTokenizer loaded = tokenizer::LoadTokenizer(file, version);
  model::LoadOptions options;
  options.context = flags.context;
  options.threads = flags.threads;
  if (!flags.dtype.empty()) options.dtype = model::ParseWeightDType(flags.dtype);
  // Under mpirun: this rank's part of the model; ranks >= 1 replay rank 0's steps until it is done.
  dist::ShardedModel sharded = dist::LoadShardedModel(flags.model_dir, options);
  if (sharded.follower()) {
    sharded.group->FollowSteps();
    return 0;
  }
  std::unique_ptr<model::Transformer>& model = sharded.model;
  runtime::EngineOptions engine_options;
  engine_options.max_sequences = 1;
  engine_options.max_queued = 1;
  ApplyKvFlags(flags.kv,
               engine_options);  // the prefix cache makes each turn prefill only what is new
  std::unique_ptr<vision::VisionEncoder> vision =
      LoadVisionTower(*model, options.dtype, sharded.group != nullptr, *loaded.tokenizer, !flags.images.empty());
  engine_options.vision = vision.get();
  runtime::Engine engine(*model, loaded.tokenizer.get(), engine_options);
  tokenizer::InstructEncoder encoder(*loaded.tokenizer, loaded.version.version);
  // Images attach to the next message: --image to the first, /image FILE to any later one.
  std::vector<tokenizer::ContentChunk> attached = ReadImageFiles(flags.images);

  std::string system = flags.system;
  std::vector<tokenizer::Message> history;
  std::fprintf(stderr, "bora chat: %s (%s). Commands: /reset, /system TEXT,%s /exit. Ctrl-D quits.\n",
               flags.model_dir.c_str(), loaded.path.c_str(), vision ? " /image FILE," : "");
  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.clear();
      std::fprintf(stderr, "(history cleared)\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      system = line.size() > 8 ? line.substr(8) : "";
      history.clear();
      std::fprintf(stderr, "(system prompt %s; history cleared)\n",
                   system.empty() ? "removed" : "set");
      continue;
    }
    if (line.rfind("/image", 0) == 0) {
      if (!vision) {
        std::fprintf(stderr, "bora chat: this model does not read images\n");
        continue;
      }
      try {
        for (auto& chunk : ReadImageFiles({line.size() > 7 ? line.substr(7) : ""})) attached.push_back(std::move(chunk));
        std::fprintf(stderr, "(%zu image%s attached to your next message)\n", attached.size(),
                     attached.size() == 1 ? "" : "s");
      } catch (const Error& e) {
        std::fprintf(stderr, "bora chat: %s\n", e.what());
      }
      continue;
    }
    tokenizer::ChatRequest request;
    if (!system.empty()) request.messages.push_back(MakeMessage(tokenizer::Role::kSystem, system));
    request.messages.insert(request.messages.end(), history.begin(), history.end());
    const tokenizer::Message user = UserMessageWithImages(line, attached);
    request.messages.push_back(user);
    runtime::GenerationRequest generation;
    try {
      tokenizer::Tokenized tokenized = encoder.EncodeChat(request, tokenizer::ValidationMode::kServing);
      generation.prompt = std::move(tokenized.ids);
      generation.images = std::move(tokenized.images);
    } catch (const InvalidArgument& e) {
      std::fprintf(stderr, "bora chat: %s\n", e.what());
      continue;
    }
    const int64_t room = model->context_length() - static_cast<int64_t>(generation.prompt.size());
    if (room < 1) {
      std::fprintf(
          stderr,
          "bora chat: the conversation fills the context of %lld tokens; /reset or raise --ctx\n",
          static_cast<long long>(model->context_length()));
      continue;
    }
    generation.sampling.temperature = flags.temperature;
    generation.sampling.top_p = flags.top_p;
    generation.sampling.seed = flags.seed;
    generation.max_tokens = std::min(flags.max_tokens, room);
    generation.lora = lora;
    std::shared_ptr<runtime::RequestStream> stream = engine.Submit(std::move(generation));
    std::string reply;
    runtime::Event event;
    while (stream->Next(event)) {
      std::fwrite(event.text.data(), 1, event.text.size(), stdout);
      std::fflush(stdout);
      reply += event.text;
      if (event.kind == runtime::Event::Kind::kDone) {
        if (event.finish == runtime::FinishReason::kLength)
          std::fprintf(stderr, "\n(reply cut at --max-tokens)");
        if (event.finish == runtime::FinishReason::kError)
          std::fprintf(stderr, "\nbora chat: %s", event.error.c_str());
        break;
      }
    }
    std::printf("\n");
    history.push_back(user);  // its images stay in the conversation (the prefix cache keeps their KV)
    history.push_back(MakeMessage(tokenizer::Role::kAssistant, reply));
    attached.clear();
  }
  return 0;
}

}  // namespace

Command RegisterChat(CLI::App& app) {
  auto flags = std::make_shared<ChatFlags>();
  CLI::App* sub = app.add_subcommand(
      "chat",
      "Chat with a model in the terminal: replies stream as they are generated and the "
      "conversation\n"
      "is kept (rendered in the model's instruct format each turn). Commands: /reset, /system "
      "TEXT, /exit.\n"
      "Example: bora chat --model models/mistral-7b-instruct --system \"Answer briefly\"");
  sub->add_option("--model", flags->model_dir, "Model folder with its tokenizer file, or GGUF file")->required();
  sub->add_option("--system", flags->system, "System prompt");
  sub->add_option("--image", flags->images,
                  "Image file (PNG, JPEG, WebP, GIF) attached to the first message, repeatable; /image FILE "
                  "attaches one to the next");
  sub->add_option("--lora", flags->lora_dir,
                  "LoRA adapter folder (mistral-finetune or PEFT) applied to the model");
  sub->add_option("--temperature", flags->temperature, "0 = greedy")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  sub->add_option("--top-p", flags->top_p, "Nucleus sampling mass (1 = off)")
      ->capture_default_str();
  sub->add_option("--seed", flags->seed, "Random seed (default: random)");
  sub->add_option("-n,--max-tokens", flags->max_tokens, "Most tokens per reply")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--ctx", flags->context, "Context length in tokens (capped by the model)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--dtype", flags->dtype, "Convert the weights at load: f32, bf16, q8 or q4")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  AddKvFlags(sub, &flags->kv);
  return {sub, [flags] { return RunChat(*flags); }};
}

}  // namespace bora::app
