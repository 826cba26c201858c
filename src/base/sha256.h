// SHA-256 digests (OpenSSL's implementation) for file checksums, key comparison and allowlists.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace bora {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hashing: Update() any number of times, then Finish() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  Sha256Digest Finish();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
  bool finished_ = false;
};

Sha256Digest Sha256Of(std::string_view bytes);

// 64 lowercase hex digits.
std::string ToHex(const Sha256Digest& digest);
std::string Sha256Hex(std::string_view bytes);

// True when the two digests are equal; runs the same instructions whatever the contents.
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace bora
