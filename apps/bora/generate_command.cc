// `bora generate --model DIR (--prompt TEXT | --chat MESSAGE | --tokens IDS)`: text or token
// continuation with the model's tokenizer and instruct format, sampled like the API does,
// streamed to stdout, with a line of timings on stderr.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/error.h"
#include "commands.h"
#include "dist/sharded_model.h"
#include "lora_flag.h"
#include "formats/model_folder.h"
#include "image_flag.h"
#include "kv_flags.h"
#include "model/lora_adapter.h"
#include "model/transformer.h"
#include "runtime/constraint/json_schema.h"
#include "runtime/engine.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct GenerateFlags {
  std::string model_dir;
  std::string prompt;
  std::string chat;
  std::string system;
  std::string tokens;
  std::string tokenizer_file;
  std::string lora_dir;
  int64_t max_tokens = 256;
  bool max_tokens_given = false;
  int64_t context = 4096;
  int64_t chunk = 512;
  int threads = 0;
  bool json = false;
  std::string dtype;
  std::optional<float> temperature;
  float top_p = 1.0f;
  int32_t top_k = 0;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string json_schema_file;
  bool json_object = false;
  std::vector<std::string> images;
  KvFlags kv;
};

// The folder's generation_config.json temperature, else 0.7 (what `bora serve` also uses).
float DefaultTemperature(const std::string& model_dir) {
  const fs::path path = fs::path(model_dir) / "generation_config.json";
  std::ifstream in(path);
  if (!in) return 0.7f;
  try {
    const nlohmann::json config = nlohmann::json::parse(in);
    if (config.contains("temperature") && config["temperature"].is_number())
      return config["temperature"].get<float>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError(path.string() + ": not valid JSON");
  }
  return 0.7f;
}

int RunGenerate(const GenerateFlags& flags) {
  const int modes = !flags.prompt.empty() + !flags.chat.empty() + !flags.tokens.empty();
  if (modes != 1)
    throw InvalidArgument("give exactly one of --prompt TEXT, --chat MESSAGE or --tokens IDS");
  if (!flags.system.empty() && flags.chat.empty())
    throw InvalidArgument("--system goes with --chat");
  if (!flags.images.empty() && flags.chat.empty()) throw InvalidArgument("--image goes with --chat");
  const bool text_mode = flags.tokens.empty();
  // Constrained decoding: the output is one JSON object, or a value valid under the schema.
  std::shared_ptr<const runtime::constraint::Grammar> grammar;
  if (!flags.json_schema_file.empty() || flags.json_object) {
    if (!text_mode)
      throw InvalidArgument(
          "--json-schema and --json-object need text (--prompt or --chat), not --tokens");
    if (!flags.json_schema_file.empty() && flags.json_object) {
      throw InvalidArgument("give one of --json-schema FILE and --json-object");
    }
    if (flags.json_object) {
      grammar = runtime::constraint::JsonObjectGrammar();
    } else {
      std::ifstream in(flags.json_schema_file, std::ios::binary);
      if (!in) throw InvalidArgument("cannot read the JSON schema " + flags.json_schema_file);
      const std::string schema_text((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
      try {
        grammar = runtime::constraint::CompileJsonSchemaText(schema_text);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(flags.json_schema_file + ": " + e.what());
      }
    }
  }
  // Token ids in, ids out: greedy unless asked otherwise (a reproducible default for scripts).
  runtime::SamplingParams sampling;
  sampling.temperature =
      flags.temperature.value_or(text_mode ? DefaultTemperature(flags.model_dir) : 0.0f);
  sampling.top_p = flags.top_p;
  sampling.top_k = flags.top_k;
  sampling.min_p = flags.min_p;
  sampling.presence_penalty = flags.presence_penalty;
  sampling.frequency_penalty = flags.frequency_penalty;
  sampling.repetition_penalty = flags.repetition_penalty;

  // A LoRA adapter applies to every token; its instruct version (when saved) builds --chat.
  const LoraFlag lora_flag = LoadLoraFlag(flags.lora_dir, flags.model_dir);
  const std::shared_ptr<const model::LoraAdapter>& lora = lora_flag.adapter;
  const std::optional<tokenizer::InstructVersion>& version = lora_flag.version;

  std::optional<tokenizer::LoadedTokenizer> loaded;
  std::vector<int32_t> prompt;
  std::vector<std::shared_ptr<const image::PreprocessedImage>> images;
  if (text_mode) {
    std::string file = flags.tokenizer_file.empty() ? tokenizer::FindTokenizerFile(flags.model_dir)
                                                    : flags.tokenizer_file;
    if (file.empty()) {
      throw InvalidArgument(flags.model_dir +
                            " has no tokenizer file (tekken.json, tokenizer.model*); pass "
                            "--tokenizer FILE or use --tokens");
    }
    loaded = tokenizer::LoadTokenizer(file, version);
    if (!flags.prompt.empty()) {
      prompt = loaded->tokenizer->Encode(flags.prompt);
      prompt.insert(prompt.begin(), loaded->tokenizer->bos_id());
    } else {
      tokenizer::ChatRequest request;
      auto add = [&](tokenizer::Role role, const std::string& content) {
        tokenizer::Message message;
        message.role = role;
        message.content = tokenizer::Content::Text(content);
        request.messages.push_back(std::move(message));
      };
      if (!flags.system.empty()) add(tokenizer::Role::kSystem, flags.system);
      request.messages.push_back(UserMessageWithImages(flags.chat, ReadImageFiles(flags.images)));
      tokenizer::InstructEncoder encoder(*loaded->tokenizer, loaded->version.version);
      tokenizer::Tokenized tokenized = encoder.EncodeChat(request, tokenizer::ValidationMode::kServing);
      prompt = std::move(tokenized.ids);
      images = std::move(tokenized.images);
    }
  } else {
    prompt = ParseTokenList(flags.tokens);
  }

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
  const int64_t vocab = model->params().vocab_size;
  if (loaded && loaded->tokenizer->vocab_size() != vocab) {
    throw InvalidArgument("the tokenizer has " + std::to_string(loaded->tokenizer->vocab_size()) +
                          " tokens but the model " + std::to_string(vocab));
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= vocab)
      throw InvalidArgument("prompt token " + std::to_string(id) + " is outside the vocabulary");
  }
  // Text runs stop at the context's end by default; --max-tokens must fit with the prompt.
  const int64_t room = model->context_length() - static_cast<int64_t>(prompt.size());
  if (room < 1) {
    throw InvalidArgument("the prompt (" + std::to_string(prompt.size()) +
                          " tokens) does not fit the context of " +
                          std::to_string(model->context_length()) + " tokens; raise --ctx");
  }
  int64_t max_tokens = flags.max_tokens;
  if (max_tokens > room) {
    if (flags.max_tokens_given) {
      throw InvalidArgument("prompt (" + std::to_string(prompt.size()) +
                            " tokens) + --max-tokens (" + std::to_string(max_tokens) +
                            ") exceeds the context of " + std::to_string(model->context_length()) +
                            " tokens; raise --ctx or lower --max-tokens");
    }
    max_tokens = room;
  }
  // The same engine that serves requests: one sequence, prompt chunks of --prefill-chunk.
  sampling.seed = flags.seed.value_or(runtime::RandomSeed());
  runtime::EngineOptions engine_options;
  engine_options.max_sequences = 1;
  engine_options.max_queued = 1;
  engine_options.prefill_budget = flags.chunk;
  ApplyKvFlags(flags.kv, engine_options);
  std::unique_ptr<vision::VisionEncoder> vision;
  if (!images.empty()) vision = LoadVisionTower(*model, options.dtype, sharded.group != nullptr, *loaded->tokenizer, true);
  engine_options.vision = vision.get();
  runtime::Engine engine(*model, loaded ? loaded->tokenizer.get() : nullptr, engine_options);
  runtime::GenerationRequest request;
  request.prompt = prompt;
  request.images = images;
  request.sampling = sampling;
  request.max_tokens = max_tokens;
  request.stop = flags.stop;
  request.grammar = grammar;
  request.lora = lora;

  std::vector<int32_t> generated;
  std::string text;
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    text += piece;
    if (!flags.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  };
  const auto start = Clock::now();
  auto first_token = start;
  std::shared_ptr<runtime::RequestStream> stream = engine.Submit(std::move(request));
  runtime::Event event;
  std::string finish;
  while (stream->Next(event)) {
    if (event.kind == runtime::Event::Kind::kDone) {
      if (event.finish == runtime::FinishReason::kError)
        throw Error("generation failed: " + event.error);
      emit(event.text);
      finish = runtime::FinishReasonName(event.finish);
      break;
    }
    if (generated.empty()) first_token = Clock::now();
    generated.push_back(event.token.id);
    if (loaded) {
      emit(event.text);
    } else if (!flags.json) {
      std::printf(generated.size() == 1 ? "%d" : " %d", event.token.id);
    }
  }
  const auto done = Clock::now();
  const uint64_t seed = *sampling.seed;

  if (flags.json) {
    nlohmann::json out = {{"tokens", generated}, {"finish_reason", finish}, {"seed", seed}};
    if (loaded) out["text"] = text;
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("\n");
  }
  const auto prefilled = generated.empty() ? done : first_token;
  const double prefill_s =
      std::chrono::duration<double>(prefilled - start).count();  // to the first token
  const double decode_s = std::chrono::duration<double>(done - prefilled).count();
  // Decode rate over the tokens after the first (the first one ends the prefill).
  const double decoded = generated.size() > 1 ? static_cast<double>(generated.size() - 1) : 0.0;
  std::fprintf(stderr,
               "prompt %zu tokens in %.2f s (%.1f tok/s); generated %zu tokens, decode %.1f tok/s; "
               "finish %s; seed %llu\n",
               prompt.size(), prefill_s, prompt.size() / std::max(prefill_s, 1e-9),
               generated.size(), decoded / std::max(decode_s, 1e-9), finish.c_str(),
               static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace

Command RegisterGenerate(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* sub = app.add_subcommand(
      "generate",
      "Continue a text prompt, answer a chat message in the model's instruct format, or continue\n"
      "token ids; text streams to stdout, timings go to stderr.\n"
      "Examples: bora generate --model DIR --chat \"Write a haiku\" --system \"Be brief\"\n"
      "          bora generate --model DIR --prompt \"def fib(n):\" --temperature 0 --stop "
      "\"\\n\\n\"\n"
      "          bora generate --model demo-model --tokens 1,330,1584 --max-tokens 16");
  sub->add_option("--model", flags->model_dir,
                  "Model folder (params.json or config.json + safetensors) or GGUF file")
      ->required();
  sub->add_option("--prompt", flags->prompt,
                  "Raw text to continue (BOS + the text, no instruct format)");
  sub->add_option("--chat", flags->chat, "A user message, rendered in the model's instruct format");
  sub->add_option("--system", flags->system, "System prompt for --chat");
  sub->add_option("--image", flags->images,
                  "Image file (PNG, JPEG, WebP, GIF) for --chat, repeatable; needs a model with a vision encoder");
  sub->add_option("--tokens", flags->tokens,
                  "Prompt token ids, comma-separated (prints the new ids)");
  sub->add_option("--tokenizer", flags->tokenizer_file,
                  "Tokenizer file (default: the one in the model folder)");
  sub->add_option("--lora", flags->lora_dir,
                  "LoRA adapter folder (mistral-finetune or PEFT) applied to the model; --chat "
                  "uses the adapter's instruct version when it records one");
  sub->add_option("-n,--max-tokens", flags->max_tokens,
                  "Most tokens to generate (text: default up to the context end)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->each([flags](const std::string&) { flags->max_tokens_given = true; })
      ->capture_default_str();
  sub->add_option("--temperature", flags->temperature,
                  "0 = greedy (default: generation_config.json's, else 0.7; 0 for --tokens)")
      ->check(CLI::Range(0.0, 2.0));
  sub->add_option("--top-p", flags->top_p, "Nucleus sampling mass (1 = off)")
      ->capture_default_str();
  sub->add_option("--top-k", flags->top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  sub->add_option("--min-p", flags->min_p,
                  "Drop tokens below min-p times the most likely one (0 = off)")
      ->capture_default_str();
  sub->add_option("--presence-penalty", flags->presence_penalty, "-2..2")->capture_default_str();
  sub->add_option("--frequency-penalty", flags->frequency_penalty, "-2..2")->capture_default_str();
  sub->add_option("--repetition-penalty", flags->repetition_penalty, "CTRL-style, 1 = off")
      ->capture_default_str();
  sub->add_option("--seed", flags->seed,
                  "Random seed (same seed, same output; default: random, printed)");
  sub->add_option("--stop", flags->stop, "Stop string (repeatable); not printed");
  sub->add_option("--ctx", flags->context, "Context length in tokens (capped by the model)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--prefill-chunk", flags->chunk, "Prompt tokens per forward call")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  AddKvFlags(sub, &flags->kv);
  sub->add_option("--dtype", flags->dtype,
                  "Convert the weights at load: f32 (exact), bf16, q8 or q4 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  sub->add_option(
         "--json-schema", flags->json_schema_file,
         "Constrain the output to JSON valid under this JSON Schema file (the subset clients use)")
      ->check(CLI::ExistingFile);
  sub->add_flag("--json-object", flags->json_object,
                "Constrain the output to one JSON object (JSON mode)");
  sub->add_flag("--json", flags->json,
                "Print one JSON object {tokens, text, finish_reason, seed} at the end");
  return {sub, [flags] { return RunGenerate(*flags); }};
}

}  // namespace bora::app
