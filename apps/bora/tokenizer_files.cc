// Tokenizer files travel with converted weights.
#include "tokenizer_files.h"

#include <fstream>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/tokenizer_file.h"
#include "tokenizer/gguf_tokenizer.h"

namespace bora::app {

namespace fs = std::filesystem;

int CopyTokenizerFiles(const std::string& model, const fs::path& to) {
  if (!fs::is_directory(model)) {
    const formats::GgufFile file = formats::GgufFile::Open(model);
    if (!tokenizer::GgufHasTokenizer(file.header())) return 0;
    const tokenizer::GgufTokenizer gguf = tokenizer::LoadGgufTokenizer(file.header());
    const fs::path path = to / gguf.file_name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(gguf.file_bytes.data(), static_cast<std::streamsize>(gguf.file_bytes.size()));
    if (!out) throw IoError(path.string() + ": cannot write");
    return 1;
  }
  int copied = 0;
  for (const auto& entry : fs::directory_iterator(model)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file()) continue;
    if (!formats::IsTokenizerFileName(name) && name != "tokenizer.json" && name != "tokenizer_config.json" &&
        name != "generation_config.json") {
      continue;
    }
    std::error_code error;
    fs::copy_file(entry.path(), to / name, fs::copy_options::overwrite_existing, error);
    if (error) throw IoError((to / name).string() + ": cannot copy: " + error.message());
    ++copied;
  }
  return copied;
}

}  // namespace bora::app
