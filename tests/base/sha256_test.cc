// SHA-256 against the FIPS 180-2 test vectors, incremental = one-shot, digest comparison.
#include "base/sha256.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"

namespace bora {
namespace {

TEST(Sha256Test, MatchesFipsVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalUpdatesEqualOneShot) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += static_cast<char>(i * 7 + 3);
  for (size_t chunk : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{4096}}) {
    Sha256 hash;
    for (size_t at = 0; at < text.size(); at += chunk) {
      hash.Update(std::string_view(text).substr(at, chunk));
    }
    EXPECT_EQ(ToHex(hash.Finish()), Sha256Hex(text)) << chunk;
  }
}

TEST(Sha256Test, FinishTwiceIsAnError) {
  Sha256 hash;
  hash.Update("x");
  (void)hash.Finish();
  EXPECT_THROW(hash.Finish(), InvalidArgument);
  EXPECT_THROW(hash.Update("y"), InvalidArgument);
}

TEST(Sha256Test, DigestsEqualComparesEveryByte) {
  const Sha256Digest a = Sha256Of("key-1");
  Sha256Digest b = a;
  EXPECT_TRUE(DigestsEqual(a, b));
  for (size_t i = 0; i < b.size(); ++i) {
    b = a;
    b[i] ^= 1;
    EXPECT_FALSE(DigestsEqual(a, b)) << i;
  }
}

}  // namespace
}  // namespace bora
