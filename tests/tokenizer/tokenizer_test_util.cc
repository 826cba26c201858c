// Shared tokenizer test helpers (cached loads, a Tekken file with v11/v13 special tokens).
#include "tokenizer/tokenizer_test_util.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "testdata.h"

namespace bora::testing {

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

tokenizer::OrderedJson ReadJson(const std::string& path) {
  return tokenizer::OrderedJson::parse(ReadText(path));
}

const tokenizer::LoadedTokenizer& SharedTokenizer(const std::string& shared,
                                                  const std::string& name) {
  static std::map<std::string, tokenizer::LoadedTokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache.emplace(name, tokenizer::LoadTokenizer(shared + "/tokenizers/" + name)).first;
  }
  return it->second;
}

const tokenizer::LoadedTokenizer& TekkenWithToolTokens(const std::string& shared,
                                                       const std::string& version) {
  static std::map<std::string, tokenizer::LoadedTokenizer> cache;
  static TempDir folder;
  auto it = cache.find(version);
  if (it != cache.end()) return it->second;
  auto file = ReadJson(shared + "/tokenizers/tekken_240718-reconstructed.json");
  const char* names[] = {"<unk>",
                         "<s>",
                         "</s>",
                         "[INST]",
                         "[/INST]",
                         "[AVAILABLE_TOOLS]",
                         "[/AVAILABLE_TOOLS]",
                         "[TOOL_RESULTS]",
                         "[/TOOL_RESULTS]",
                         "[TOOL_CALLS]",
                         "[IMG]",
                         "<pad>",
                         "[IMG_BREAK]",
                         "[IMG_END]",
                         "[PREFIX]",
                         "[MIDDLE]",
                         "[SUFFIX]",
                         "[SYSTEM_PROMPT]",
                         "[/SYSTEM_PROMPT]",
                         "[TOOL_CONTENT]"};
  tokenizer::OrderedJson specials = tokenizer::OrderedJson::array();
  for (int rank = 0; rank < 36; ++rank) {
    std::string token = rank < 20 ? names[rank] : "<SPECIAL_" + std::to_string(rank) + ">";
    if (rank == 32) token = "[ARGS]";
    if (rank == 33) token = "[CALL_ID]";
    if (rank == 34) token = "[THINK]";
    if (rank == 35) token = "[/THINK]";
    specials.push_back({{"rank", rank}, {"token_str", token}, {"is_control", true}});
  }
  file["special_tokens"] = specials;
  file["config"]["version"] = version;
  std::string path = folder.File("tekken_" + version + ".json");
  WriteFile(path, file.dump());
  return cache.emplace(version, tokenizer::LoadTokenizer(path)).first->second;
}

}  // namespace bora::testing
