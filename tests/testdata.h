// Test utilities: locating ../shared (env BORA_SHARED overrides) and temporary folders.
#pragma once

#include <string>

namespace bora::testing {

// Path of the shared data folder, or "" when absent. Tests that need it use
// BORA_REQUIRE_SHARED(), which skips with a visible reason, or fails under CI=true.
std::string SharedDir();

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `bytes` to `path` (binary), creating or truncating it.
void WriteFile(const std::string& path, const std::string& bytes);

// Whether CI=true is set (missing shared data is then an error, not a skip).
bool RunningInCi();

}  // namespace bora::testing

// Use at the start of a test body: yields `const std::string shared` or skips/fails.
#define BORA_REQUIRE_SHARED(shared)                                                        \
  const std::string shared = ::bora::testing::SharedDir();                                 \
  if (shared.empty()) {                                                                    \
    if (::bora::testing::RunningInCi()) {                                                  \
      FAIL() << "shared data folder not found (set BORA_SHARED or put shared/ beside the " \
                "checkout); CI=true makes this an error";                                  \
    }                                                                                      \
    GTEST_SKIP() << "shared data folder not found: set BORA_SHARED or place ../shared";    \
  }
