// Tests ggml block dequantization bit for bit against values computed here from each format's
// logical content (scales, mins, quants) with ggml's formulas, blocks packed by this file's own
// encoders (ggml's quantize_row_* packing), type geometry, Q8_0/Q4_0 repacking into bora panels
// (llama.cpp's checksums of real GGUF tensors: tests/formats/gguf_tensors_test.cc).
#include "kernels/quant/ggml_blocks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/quant/block_quant.h"

namespace bora::kernels {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t Id(GgmlType type) { return static_cast<uint32_t>(type); }

// IEEE half to float from the definition: (-1)^s * 2^(e-15) * 1.m, subnormals 2^-14 * 0.m.
float HalfValue(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 31) return mantissa ? NAN : static_cast<float>(sign * INFINITY);
  if (exponent == 0) return static_cast<float>(sign * std::ldexp(mantissa, -24));
  return static_cast<float>(sign * std::ldexp(1024 + mantissa, exponent - 25));
}

// Block scales to try: normal, negative, zero, the largest half, and subnormals (incl. 2^-24).
constexpr uint16_t kHalfScales[] = {0x3c00, 0x2e66, 0xb800, 0x1234, 0x0000, 0x7bff,
                                    0x0001, 0x03ff, 0x8123, 0x0400, 0x2b5a};

void Put16(uint8_t* p, uint16_t value) {  // little-endian
  p[0] = static_cast<uint8_t>(value & 0xff);
  p[1] = static_cast<uint8_t>(value >> 8);
}

void PutU16(Bytes& bytes, size_t offset, uint16_t value) { Put16(bytes.data() + offset, value); }

uint32_t Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

float FromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

void ExpectBitIdentical(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(Bits(got[i]), Bits(want[i]))
        << "element " << i << ": got " << got[i] << ", want " << want[i];
  }
}

std::vector<float> Dequantize(GgmlType type, const Bytes& row, int64_t n) {
  EXPECT_EQ(row.size(), GgmlRowBytes(Id(type), n));
  std::vector<float> out(static_cast<size_t>(n));
  DequantizeGgmlRow(Id(type), row.data(), n, out.data());
  return out;
}

// A row of `blocks` blocks: `encode(block_index, block_bytes, expected_values)` fills one block
// and appends its expected floats. Blocks use varied scales, the first one the extreme quants.
void CheckRow(GgmlType type, int blocks,
              const std::function<void(int, uint8_t*, std::vector<float>&)>& encode) {
  const GgmlTypeTraits info = GgmlTypeInfo(Id(type));
  Bytes row(static_cast<size_t>(blocks * info.type_size), 0);
  std::vector<float> want;
  for (int b = 0; b < blocks; ++b) encode(b, row.data() + b * info.type_size, want);
  ExpectBitIdentical(Dequantize(type, row, blocks * info.block_size), want);
}

// Logical quants in [lo, hi] of one block: block 0 alternates the extremes, others are random.
std::vector<int> Quants(std::mt19937& random, int block, int count, int lo, int hi) {
  std::vector<int> q(static_cast<size_t>(count));
  std::uniform_int_distribution<int> pick(lo, hi);
  for (int i = 0; i < count; ++i) q[i] = block == 0 ? (i % 3 == 0 ? lo : hi) : pick(random);
  return q;
}

uint16_t Scale(int block, int which = 0) {
  return kHalfScales[(block * 3 + which * 5) % std::size(kHalfScales)];
}

constexpr int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                               1,    13,   25,  38,  53,  69,  89,  113};

TEST(GgmlBlocks, TypeInfoAndRowBytes) {
  struct Want {
    GgmlType type;
    const char* name;
    int64_t block, size;
    bool supported;
  };
  // clang-format off
  const Want wants[] = {
      {GgmlType::kF32, "F32", 1, 4, true}, {GgmlType::kF16, "F16", 1, 2, true},
      {GgmlType::kBF16, "BF16", 1, 2, true}, {GgmlType::kQ4_0, "Q4_0", 32, 18, true},
      {GgmlType::kQ4_1, "Q4_1", 32, 20, true}, {GgmlType::kQ5_0, "Q5_0", 32, 22, true},
      {GgmlType::kQ5_1, "Q5_1", 32, 24, true}, {GgmlType::kQ8_0, "Q8_0", 32, 34, true},
      {GgmlType::kQ2_K, "Q2_K", 256, 84, true}, {GgmlType::kQ3_K, "Q3_K", 256, 110, true},
      {GgmlType::kQ4_K, "Q4_K", 256, 144, true}, {GgmlType::kQ5_K, "Q5_K", 256, 176, true},
      {GgmlType::kQ6_K, "Q6_K", 256, 210, true}, {GgmlType::kIQ4_NL, "IQ4_NL", 32, 18, true},
      {GgmlType::kIQ4_XS, "IQ4_XS", 256, 136, true}, {GgmlType::kQ8_K, "Q8_K", 256, 292, false},
      {GgmlType::kIQ2_XXS, "IQ2_XXS", 256, 66, false}, {GgmlType::kIQ1_M, "IQ1_M", 256, 56, false},
      {GgmlType::kTQ1_0, "TQ1_0", 256, 54, false}, {GgmlType::kMXFP4, "MXFP4", 32, 17, false},
      {GgmlType::kI64, "I64", 1, 8, false}};
  // clang-format on
  for (const Want& want : wants) {
    const GgmlTypeTraits info = GgmlTypeInfo(Id(want.type));
    EXPECT_STREQ(info.name, want.name);
    EXPECT_EQ(info.block_size, want.block) << want.name;
    EXPECT_EQ(info.type_size, want.size) << want.name;
    EXPECT_EQ(info.supported, want.supported) << want.name;
    EXPECT_EQ(GgmlTypeName(Id(want.type)), want.name);
    EXPECT_EQ(GgmlRowBytes(Id(want.type), 4096),
              static_cast<uint64_t>(4096 / want.block * want.size));
  }
  EXPECT_EQ(GgmlRowBytes(Id(GgmlType::kQ4_K), 256), 144u);
  EXPECT_EQ(GgmlRowBytes(Id(GgmlType::kQ6_K), 768), 630u);
  EXPECT_EQ(GgmlRowBytes(Id(GgmlType::kQ8_0), 0), 0u);
  // Removed / unknown ids.
  EXPECT_STREQ(GgmlTypeInfo(4).name, "type 4");
  EXPECT_STREQ(GgmlTypeInfo(200).name, "type 200");
  EXPECT_FALSE(GgmlTypeInfo(31).supported);
  EXPECT_EQ(GgmlTypeInfo(31).block_size, 0);
  EXPECT_STREQ(GgmlTypeInfo(100000).name, "type >255");
  EXPECT_EQ(GgmlTypeName(100000), "type 100000");
  EXPECT_THROW(GgmlRowBytes(Id(GgmlType::kQ4_K), 128), InvalidArgument);
  EXPECT_THROW(GgmlRowBytes(Id(GgmlType::kQ8_0), -32), InvalidArgument);
  EXPECT_THROW(GgmlRowBytes(5, 32), InvalidArgument);
  EXPECT_THROW(GgmlRowBytes(Id(GgmlType::kF64), int64_t{1} << 62), InvalidArgument);  // 2^65 bytes
}

TEST(GgmlBlocks, UnsupportedTypesThrow) {
  Bytes block(512, 0);
  float out[256];
  for (GgmlType type :
       {GgmlType::kIQ2_XXS, GgmlType::kQ8_K, GgmlType::kTQ2_0, GgmlType::kMXFP4, GgmlType::kI8}) {
    const GgmlTypeTraits info = GgmlTypeInfo(Id(type));
    try {
      DequantizeGgmlRow(Id(type), block.data(), info.block_size, out);
      ADD_FAILURE() << info.name << " did not throw";
    } catch (const Unsupported& error) {
      EXPECT_NE(std::string(error.what()).find(info.name), std::string::npos) << error.what();
    }
  }
  EXPECT_THROW(DequantizeGgmlRow(4, block.data(), 32, out), Unsupported);
  EXPECT_THROW(DequantizeGgmlRow(Id(GgmlType::kQ4_0), block.data(), 48, out), InvalidArgument);
  EXPECT_THROW(DequantizeGgmlRow(Id(GgmlType::kF32), block.data(), -4, out), InvalidArgument);
}

TEST(GgmlBlocks, FloatTypes) {
  // F16: all 65536 bit patterns against the definition.
  Bytes f16(65536 * 2);
  for (int h = 0; h < 65536; ++h) PutU16(f16, 2 * h, static_cast<uint16_t>(h));
  const std::vector<float> halves = Dequantize(GgmlType::kF16, f16, 65536);
  for (int h = 0; h < 65536; ++h) {
    const float value = HalfValue(static_cast<uint16_t>(h));
    // A NaN keeps sign and payload and comes out quiet, as ggml's multiply by 2^-112 makes it.
    const uint32_t want = std::isnan(value)
                              ? static_cast<uint32_t>(h & 0x8000) << 16 | 0x7fc00000u |
                                    static_cast<uint32_t>(h & 0x3ff) << 13
                              : Bits(value);
    ASSERT_EQ(Bits(halves[h]), want) << "f16 bits " << h;
  }
  // BF16 is the top half of the float; F32 is copied.
  const std::vector<uint16_t> bf16 = {0x3f80, 0xbf80, 0x0001, 0x8000, 0x7f80, 0x4049, 0xc2f7};
  Bytes bf16_bytes(bf16.size() * 2);
  std::vector<float> want;
  for (size_t i = 0; i < bf16.size(); ++i) {
    PutU16(bf16_bytes, 2 * i, bf16[i]);
    want.push_back(FromBits(static_cast<uint32_t>(bf16[i]) << 16));
  }
  ExpectBitIdentical(Dequantize(GgmlType::kBF16, bf16_bytes, 7), want);
  const std::vector<float> f32 = {1.5f, -0.0f, 1e-40f, 3.4e38f, -7.25f};
  Bytes f32_bytes(f32.size() * 4);
  std::memcpy(f32_bytes.data(), f32.data(), f32_bytes.size());
  ExpectBitIdentical(Dequantize(GgmlType::kF32, f32_bytes, 5), f32);
}

// Q4_0 / Q4_1 / IQ4_NL share the nibble layout: element j low nibble of qs[j], j+16 high.
void PackNibbles32(const std::vector<int>& q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(q[j] | q[j + 16] << 4);
}

TEST(GgmlBlocks, Q4_0AndQ4_1) {
  std::mt19937 random(1);
  CheckRow(GgmlType::kQ4_0, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> q = Quants(random, b, 32, 0, 15);
    Put16(x, d);
    PackNibbles32(q, x + 2);
    for (int v : q) want.push_back(static_cast<float>(v - 8) * HalfValue(d));
  });
  CheckRow(GgmlType::kQ4_1, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b), m = Scale(b, 1);
    const std::vector<int> q = Quants(random, b, 32, 0, 15);
    Put16(x, d);
    Put16(x + 2, m);
    PackNibbles32(q, x + 4);
    for (int v : q) want.push_back(static_cast<float>(v) * HalfValue(d) + HalfValue(m));
  });
}

// Q5_0 / Q5_1: 4 low bits as Q4_0, bit 4 of element e in bit e of the little-endian u32 qh.
void PackQ5(const std::vector<int>& q, uint8_t* qh, uint8_t* qs) {
  std::vector<int> low(32);
  for (int e = 0; e < 32; ++e) {
    low[e] = q[e] & 0xF;
    if (q[e] & 0x10) qh[e / 8] |= static_cast<uint8_t>(1 << (e % 8));
  }
  PackNibbles32(low, qs);
}

TEST(GgmlBlocks, Q5_0AndQ5_1) {
  std::mt19937 random(2);
  CheckRow(GgmlType::kQ5_0, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> q = Quants(random, b, 32, 0, 31);
    Put16(x, d);
    PackQ5(q, x + 2, x + 6);
    for (int v : q) want.push_back(static_cast<float>(v - 16) * HalfValue(d));
  });
  CheckRow(GgmlType::kQ5_1, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b), m = Scale(b, 1);
    const std::vector<int> q = Quants(random, b, 32, 0, 31);
    Put16(x, d);
    Put16(x + 2, m);
    PackQ5(q, x + 4, x + 8);
    for (int v : q) want.push_back(static_cast<float>(v) * HalfValue(d) + HalfValue(m));
  });
}

TEST(GgmlBlocks, Q8_0AndIQ4_NL) {
  std::mt19937 random(3);
  CheckRow(GgmlType::kQ8_0, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> q = Quants(random, b, 32, -128, 127);
    Put16(x, d);
    for (int j = 0; j < 32; ++j) x[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
    for (int v : q) want.push_back(static_cast<float>(v) * HalfValue(d));
  });
  CheckRow(GgmlType::kIQ4_NL, 6, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> index = Quants(random, b, 32, 0, 15);
    Put16(x, d);
    PackNibbles32(index, x + 2);
    for (int i : index) want.push_back(HalfValue(d) * static_cast<float>(kIq4nl[i]));
  });
}

// K-quant element e of a 256 super-block in 2-bit planes (Q2_K, Q3_K): 128-element half
// h = e / 128 uses 32 bytes; e % 128 = 32 p + k sits at bits 2p of byte 32 h + k.
void Pack2BitPlanes(const std::vector<int>& low2, uint8_t* qs) {
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, p = e % 128 / 32, k = e % 32;
    qs[32 * h + k] |= static_cast<uint8_t>(low2[e] << (2 * p));
  }
}

TEST(GgmlBlocks, Q2_K) {
  std::mt19937 random(5);
  CheckRow(GgmlType::kQ2_K, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b), dmin = Scale(b, 1);
    const std::vector<int> sc = Quants(random, b + 1, 16, 0, 15), mn = Quants(random, b, 16, 0, 15);
    const std::vector<int> q = Quants(random, b, 256, 0, 3);
    for (int s = 0; s < 16; ++s) x[s] = static_cast<uint8_t>(sc[s] | mn[s] << 4);
    Pack2BitPlanes(q, x + 16);
    Put16(x + 80, d);
    Put16(x + 82, dmin);
    for (int e = 0; e < 256; ++e) {
      const float dl = HalfValue(d) * static_cast<float>(sc[e / 16]);
      const float ml = HalfValue(dmin) * static_cast<float>(mn[e / 16]);
      want.push_back(dl * static_cast<float>(q[e]) - ml);
    }
  });
}

TEST(GgmlBlocks, Q3_K) {
  std::mt19937 random(6);
  CheckRow(GgmlType::kQ3_K, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    // 6-bit scales (stored + 32) over both the low-nibble halves and all 2-bit high groups.
    const std::vector<int> ls = Quants(random, b, 16, 0, 63);
    const std::vector<int> q = Quants(random, b, 256, -4, 3);
    std::vector<int> low2(256);
    for (int e = 0; e < 256; ++e) {
      low2[e] = (q[e] + 4) & 3;
      if (q[e] >= 0) x[e % 32] |= static_cast<uint8_t>(1 << (e / 32));  // hmask: L = q + 4 > 3
    }
    Pack2BitPlanes(low2, x + 32);
    uint8_t* scales = x + 96;  // ggml's quantize_row_q3_K packing
    for (int j = 0; j < 16; ++j) {
      scales[j % 8] |= static_cast<uint8_t>((ls[j] & 0xF) << (4 * (j / 8)));
      scales[j % 4 + 8] |= static_cast<uint8_t>((ls[j] >> 4) << (2 * (j / 4)));
    }
    Put16(x + 108, d);
    for (int e = 0; e < 256; ++e) {
      const float dl = HalfValue(d) * static_cast<float>(ls[e / 16] - 32);
      want.push_back(dl * static_cast<float>(q[e]));
    }
  });
}

// Q4_K / Q5_K 12-byte scales: 8 6-bit scales and mins (ggml's quantize_row_q4_K packing).
void PackScaleMinK4(const std::vector<int>& sc, const std::vector<int>& mn, uint8_t* scales) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(sc[j]);
      scales[j + 4] = static_cast<uint8_t>(mn[j]);
    } else {
      scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
      scales[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
    }
  }
}

// Element e = 64 c + 32 half + l: nibble `half` of qs[32 c + l] (Q4_K and Q5_K low bits).
void Pack4BitChunks(const std::vector<int>& low4, uint8_t* qs) {
  for (int e = 0; e < 256; ++e) {
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(low4[e] << (4 * (e % 64 / 32)));
  }
}

void KQuantWant(uint16_t d, uint16_t dmin, const std::vector<int>& sc, const std::vector<int>& mn,
                const std::vector<int>& q, std::vector<float>& want) {
  for (int e = 0; e < 256; ++e) {
    const float d1 = HalfValue(d) * static_cast<float>(sc[e / 32]);
    const float m1 = HalfValue(dmin) * static_cast<float>(mn[e / 32]);
    want.push_back(d1 * static_cast<float>(q[e]) - m1);
  }
}

TEST(GgmlBlocks, Q4_K) {
  std::mt19937 random(7);
  CheckRow(GgmlType::kQ4_K, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b), dmin = Scale(b, 1);
    const std::vector<int> sc = Quants(random, b, 8, 0, 63), mn = Quants(random, b + 1, 8, 0, 63);
    const std::vector<int> q = Quants(random, b, 256, 0, 15);
    Put16(x, d);
    Put16(x + 2, dmin);
    PackScaleMinK4(sc, mn, x + 4);
    Pack4BitChunks(q, x + 16);
    KQuantWant(d, dmin, sc, mn, q, want);
  });
}

TEST(GgmlBlocks, Q5_K) {
  std::mt19937 random(8);
  CheckRow(GgmlType::kQ5_K, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b), dmin = Scale(b, 1);
    const std::vector<int> sc = Quants(random, b + 1, 8, 0, 63), mn = Quants(random, b, 8, 0, 63);
    const std::vector<int> q = Quants(random, b, 256, 0, 31);
    Put16(x, d);
    Put16(x + 2, dmin);
    PackScaleMinK4(sc, mn, x + 4);
    std::vector<int> low4(256);
    for (int e = 0; e < 256; ++e) {
      low4[e] = q[e] & 0xF;
      if (q[e] > 15) x[16 + e % 32] |= static_cast<uint8_t>(1 << (2 * (e / 64) + e % 64 / 32));
    }
    Pack4BitChunks(low4, x + 48);
    KQuantWant(d, dmin, sc, mn, q, want);
  });
}

TEST(GgmlBlocks, Q6_K) {
  std::mt19937 random(9);
  CheckRow(GgmlType::kQ6_K, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> sc = Quants(random, b, 16, -128, 127);
    const std::vector<int> q = Quants(random, b, 256, -32, 31);
    // ggml's quantize_row_q6_K packing of L = q + 32: per 128-element half, element l + 32 k
    // has its low nibble in ql[l + 32 (k % 2)] (nibble k / 2), its top 2 bits at 2k in qh[l].
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, k = e % 128 / 32, l = e % 32, stored = q[e] + 32;
      x[64 * h + l + 32 * (k % 2)] |= static_cast<uint8_t>((stored & 0xF) << (4 * (k / 2)));
      x[128 + 32 * h + l] |= static_cast<uint8_t>((stored >> 4) << (2 * k));
    }
    for (int s = 0; s < 16; ++s) x[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(sc[s]));
    Put16(x + 208, d);
    for (int e = 0; e < 256; ++e) {
      want.push_back(HalfValue(d) * static_cast<float>(sc[e / 16]) * static_cast<float>(q[e]));
    }
  });
}

TEST(GgmlBlocks, IQ4_XS) {
  std::mt19937 random(10);
  CheckRow(GgmlType::kIQ4_XS, 3, [&](int b, uint8_t* x, std::vector<float>& want) {
    const uint16_t d = Scale(b);
    const std::vector<int> ls = Quants(random, b, 8, 0, 63);
    const std::vector<int> index = Quants(random, b, 256, 0, 15);
    uint16_t scales_h = 0;
    for (int ib = 0; ib < 8; ++ib) {
      x[4 + ib / 2] |= static_cast<uint8_t>((ls[ib] & 0xF) << (4 * (ib % 2)));
      scales_h = static_cast<uint16_t>(scales_h | (ls[ib] >> 4) << (2 * ib));
      PackNibbles32(std::vector<int>(index.begin() + 32 * ib, index.begin() + 32 * ib + 32),
                    x + 8 + 16 * ib);
    }
    Put16(x, d);
    Put16(x + 2, scales_h);
    for (int e = 0; e < 256; ++e) {
      const float dl = HalfValue(d) * static_cast<float>(ls[e / 32] - 32);
      want.push_back(dl * static_cast<float>(kIq4nl[index[e]]));
    }
  });
}

// A [rows, cols] Q8_0 or Q4_0 matrix of random blocks (Q8_0 quants in [-127, 127]).
Bytes RandomGgmlMatrix(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 random(seed);
  const bool q8 = type == GgmlType::kQ8_0;
  const int block_bytes = q8 ? 34 : 18;
  Bytes data(static_cast<size_t>(rows * cols / 32 * block_bytes));
  for (size_t offset = 0; offset < data.size(); offset += block_bytes) {
    PutU16(data, offset, kHalfScales[random() % std::size(kHalfScales)]);
    for (int j = 2; j < block_bytes; ++j) {
      data[offset + j] = static_cast<uint8_t>(q8 ? random() % 255 + 129 : random());
    }
  }
  return data;
}

void CheckRepack(GgmlType type, int64_t rows, int64_t cols) {
  const QuantFormat format = type == GgmlType::kQ8_0 ? QuantFormat::kQ8 : QuantFormat::kQ4;
  const Bytes data = RandomGgmlMatrix(type, rows, cols, static_cast<uint32_t>(rows * 7 + cols));
  const PackedShape shape{format, rows, cols};
  Bytes quants(static_cast<size_t>(shape.quant_bytes()), 0x5a);
  std::vector<uint16_t> scales(static_cast<size_t>(shape.scale_count()), 0x5a5a);
  ASSERT_TRUE(RepackGgmlToPanels(Id(type), data.data(), rows, cols, quants.data(), scales.data()));
  const uint64_t row_bytes = GgmlRowBytes(Id(type), cols);
  std::vector<float> want(static_cast<size_t>(cols)), got(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeGgmlRow(Id(type), data.data() + r * row_bytes, cols, want.data());
    DequantizeRow(shape, quants.data(), scales.data(), r, got.data());
    ExpectBitIdentical(got, want);
  }
  // The padded rows of the last panel hold exactly what QuantizePanel writes for missing rows.
  const int64_t blocks = shape.blocks(), last = shape.panels() - 1;
  Bytes padded_quants(static_cast<size_t>(blocks * QuantBlockBytes(format)));
  std::vector<uint16_t> padded_scales(static_cast<size_t>(blocks * kPanelRows));
  const std::vector<float> nothing(static_cast<size_t>(cols));
  QuantizePanel(format, nothing.data(), 0, cols, padded_quants.data(), padded_scales.data());
  const uint8_t* last_quants = quants.data() + last * blocks * QuantBlockBytes(format);
  const uint16_t* last_scales = scales.data() + last * blocks * kPanelRows;
  const int64_t first_padded = rows - last * kPanelRows;
  for (int64_t k = 0; k < blocks * QuantBlockBytes(format); ++k) {  // byte k holds row k % 64 / 4
    EXPECT_TRUE(k % 64 / 4 < first_padded || last_quants[k] == padded_quants[k]) << k;
  }
  for (int64_t k = 0; k < blocks * kPanelRows; ++k) {
    EXPECT_TRUE(k % kPanelRows < first_padded || last_scales[k] == padded_scales[k]) << k;
  }
}

TEST(GgmlBlocks, RepackIsLossless) {
  CheckRepack(GgmlType::kQ8_0, 37, 96);
  CheckRepack(GgmlType::kQ8_0, 5, 32);
  CheckRepack(GgmlType::kQ8_0, 16, 64);
  CheckRepack(GgmlType::kQ4_0, 37, 96);
  CheckRepack(GgmlType::kQ4_0, 1, 160);
  CheckRepack(GgmlType::kQ4_0, 33, 32);
}

TEST(GgmlBlocks, RepackQ8_0WithMinus128Refuses) {
  Bytes data = RandomGgmlMatrix(GgmlType::kQ8_0, 20, 64, 11);
  data[GgmlRowBytes(Id(GgmlType::kQ8_0), 64) * 19 + 34 + 2 + 31] = 0x80;  // row 19, block 1
  const PackedShape shape{QuantFormat::kQ8, 20, 64};
  Bytes quants(static_cast<size_t>(shape.quant_bytes()), 0x5a);
  std::vector<uint16_t> scales(static_cast<size_t>(shape.scale_count()), 0x5a5a);
  EXPECT_FALSE(
      RepackGgmlToPanels(Id(GgmlType::kQ8_0), data.data(), 20, 64, quants.data(), scales.data()));
  EXPECT_EQ(quants, Bytes(quants.size(), 0x5a));  // nothing written
  EXPECT_EQ(scales, std::vector<uint16_t>(scales.size(), 0x5a5a));
  EXPECT_THROW(
      RepackGgmlToPanels(Id(GgmlType::kQ4_K), data.data(), 1, 256, quants.data(), scales.data()),
      Unsupported);
  EXPECT_THROW(
      RepackGgmlToPanels(Id(GgmlType::kQ4_0), data.data(), 1, 48, quants.data(), scales.data()),
      InvalidArgument);
}

}  // namespace
}  // namespace bora::kernels
