// Test utilities: shared data lookup and temporary folders.
#include "testdata.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace bora::testing {

namespace fs = std::filesystem;

std::string SharedDir() {
  if (const char* env = std::getenv("BORA_SHARED"); env != nullptr && *env != '\0') {
    return fs::is_directory(env) ? fs::path(env).string() : std::string();
  }
  fs::path beside = fs::path(BORA_SOURCE_DIR).parent_path() / "shared";
  return fs::is_directory(beside / "reference-models") ? beside.string() : std::string();
}

bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "bora-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace bora::testing
