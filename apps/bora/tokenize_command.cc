// `bora tokenize` and `bora render`: JSON-lines front ends of the tokenizers and prompt builder.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/instruct_encoder.h"
#include "tokenizer/load_tokenizer.h"

namespace bora::app {
namespace {

using tokenizer::OrderedJson;

void WriteLine(const OrderedJson& value) {
  std::string line = value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// Runs `handle` on every non-empty stdin line parsed as JSON; a bad line yields {"error"}.
template <typename Handler>
void ForEachJsonLine(Handler handle) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      OrderedJson input = OrderedJson::parse(line);
      WriteLine(handle(input));
    } catch (const OrderedJson::exception& e) {
      WriteLine(OrderedJson{{"error", std::string("invalid JSON line: ") + e.what()}});
    } catch (const Error& e) {
      WriteLine(OrderedJson{{"error", e.what()}});
    }
  }
}

struct TokenizeFlags {
  std::string tokenizer_path;
  bool decode = false;
};

int RunTokenize(const TokenizeFlags& flags) {
  auto loaded = tokenizer::LoadTokenizer(flags.tokenizer_path);
  const tokenizer::Tokenizer& tok = *loaded.tokenizer;
  ForEachJsonLine([&](const OrderedJson& input) -> OrderedJson {
    if (flags.decode) {
      auto ids = input.find("ids");
      if (ids == input.end() || !ids->is_array())
        throw InvalidArgument("expected {\"ids\": [...]}");
      std::vector<int32_t> values;
      for (const auto& id : *ids) {
        if (!id.is_number_integer()) throw InvalidArgument("ids must be integers");
        int64_t value = id.get<int64_t>();
        if (value < 0 || value >= tok.vocab_size()) {
          throw InvalidArgument("id " + std::to_string(value) + " is outside the vocabulary [0, " +
                                std::to_string(tok.vocab_size()) + ")");
        }
        values.push_back(static_cast<int32_t>(value));
      }
      return OrderedJson{{"text", tok.Decode(values)}};
    }
    auto text = input.find("text");
    if (text == input.end() || !text->is_string())
      throw InvalidArgument("expected {\"text\": \"...\"}");
    return OrderedJson{{"ids", tok.Encode(text->get<std::string>())}};
  });
  return 0;
}

struct RenderFlags {
  std::string tokenizer_path;
  std::string version;
  std::string mode = "test";
  bool explain = false;
};

int RunRender(const RenderFlags& flags) {
  std::optional<tokenizer::InstructVersion> override_version;
  if (!flags.version.empty()) override_version = tokenizer::ParseInstructVersion(flags.version);
  tokenizer::ValidationMode mode = tokenizer::ValidationMode::kTest;
  if (flags.mode == "serving") mode = tokenizer::ValidationMode::kServing;
  auto loaded = tokenizer::LoadTokenizer(flags.tokenizer_path, override_version);
  if (flags.explain) {
    std::fprintf(stderr, "bora: %s: instruct version %s (%s)\n", flags.tokenizer_path.c_str(),
                 tokenizer::InstructVersionName(loaded.version.version).c_str(),
                 loaded.version.reason.c_str());
  }
  tokenizer::InstructEncoder encoder(*loaded.tokenizer, loaded.version.version);
  ForEachJsonLine([&](const OrderedJson& input) -> OrderedJson {
    if (!input.is_object()) throw InvalidArgument("expected {\"request\": {...}}");
    auto wrapped = input.find("request");
    const OrderedJson& request = wrapped != input.end() ? *wrapped : input;
    tokenizer::Tokenized tokenized =
        tokenizer::IsFimRequestBody(request)
            ? encoder.EncodeFim(tokenizer::ParseFimRequest(request))
            : encoder.EncodeChat(tokenizer::ParseChatRequest(request, mode), mode);
    return OrderedJson{{"ids", tokenized.ids}, {"text", tokenized.text}};
  });
  return 0;
}

}  // namespace

Command RegisterTokenize(CLI::App& app) {
  auto flags = std::make_shared<TokenizeFlags>();
  CLI::App* command = app.add_subcommand("tokenize",
                                         "Encode JSON lines {\"text\": ...} from stdin to "
                                         "{\"ids\": [...]} (no BOS/EOS), or decode with --decode");
  command
      ->add_option("--tokenizer", flags->tokenizer_path,
                   "Tokenizer file (tokenizer.model*, tekken*.json, or a GGUF's vocabulary)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_flag("--decode", flags->decode,
                    "Read {\"ids\": [...]} lines and write {\"text\": ...}");
  return {command, [flags] { return RunTokenize(*flags); }};
}

Command RegisterRender(CLI::App& app) {
  auto flags = std::make_shared<RenderFlags>();
  CLI::App* command = app.add_subcommand("render",
                                         "Build prompts exactly like mistral-common: JSON lines "
                                         "{\"request\": chat or FIM request} from stdin "
                                         "to {\"ids\": [...], \"text\": ...} or {\"error\": ...}");
  command
      ->add_option("--tokenizer", flags->tokenizer_path,
                   "Tokenizer file (tokenizer.model*, tekken*.json, or a GGUF's vocabulary)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option(
      "--version,--instruct-version", flags->version,
      "Instruct version v1|v2|v3|v7|v11|v13|v15 (default: from the tokenizer file)");
  command
      ->add_option("--mode", flags->mode,
                   "Validation: test (mistral-common default) or serving (API rules)")
      ->check(CLI::IsMember({"test", "serving"}));
  command->add_flag("--explain", flags->explain,
                    "Print on stderr which instruct version is used and why");
  return {command, [flags] { return RunRender(*flags); }};
}

}  // namespace bora::app
