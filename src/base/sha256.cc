// SHA-256 through OpenSSL's EVP interface.
#include "base/sha256.h"

#include <openssl/evp.h>

#include "base/error.h"

namespace bora {

struct Sha256::Context {
  EVP_MD_CTX* ctx = nullptr;
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {
  context_->ctx = EVP_MD_CTX_new();
  if (context_->ctx == nullptr || EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr) != 1) {
    throw ResourceExhausted("cannot start a SHA-256 digest (OpenSSL)");
  }
}

Sha256::~Sha256() = default;

void Sha256::Update(std::string_view bytes) {
  if (finished_) throw InvalidArgument("Sha256::Update after Finish");
  if (!bytes.empty() && EVP_DigestUpdate(context_->ctx, bytes.data(), bytes.size()) != 1) {
    throw ResourceExhausted("SHA-256 update failed (OpenSSL)");
  }
}

Sha256Digest Sha256::Finish() {
  if (finished_) throw InvalidArgument("Sha256::Finish called twice");
  finished_ = true;
  Sha256Digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_->ctx, digest.data(), &length) != 1 || length != digest.size()) {
    throw ResourceExhausted("SHA-256 finish failed (OpenSSL)");
  }
  return digest;
}

Sha256Digest Sha256Of(std::string_view bytes) {
  Sha256 hash;
  hash.Update(bytes);
  return hash.Finish();
}

std::string ToHex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(digest.size() * 2, '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view bytes) { return ToHex(Sha256Of(bytes)); }

bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b) {
  // OR of all byte differences: no early exit, so the time does not depend on where they differ.
  volatile uint8_t difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference = difference | (a[i] ^ b[i]);
  return difference == 0;
}

}  // namespace bora
