// Scalar ggml block dequantizers in ggml-quants.c's exact arithmetic order, and Q8_0/Q4_0
// repacking.
#include "kernels/quant/ggml_blocks.h"

#include <array>
#include <cstring>
#include <optional>
#include <string>

#include "base/checked_math.h"
#include "base/error.h"
#include "base/float16.h"
#include "kernels/quant/block_quant.h"

namespace bora::kernels {
namespace {

// Geometry of every ggml type id that ggml.c's type_traits defines (removed ids 4, 5, 31-33,
// 36-38 are unknown). Sizes are sizeof(block_*) of ggml-common.h.
struct TypeRow {
  uint32_t id;
  const char* name;
  int64_t block_size;
  int64_t type_size;
  bool supported;
};

constexpr TypeRow kTypes[] = {
    {0, "F32", 1, 4, true},          {1, "F16", 1, 2, true},
    {2, "Q4_0", 32, 18, true},       {3, "Q4_1", 32, 20, true},
    {6, "Q5_0", 32, 22, true},       {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},       {9, "Q8_1", 32, 36, false},
    {10, "Q2_K", 256, 84, true},     {11, "Q3_K", 256, 110, true},
    {12, "Q4_K", 256, 144, true},    {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},    {15, "Q8_K", 256, 292, false},
    {16, "IQ2_XXS", 256, 66, false}, {17, "IQ2_XS", 256, 74, false},
    {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, true},    {21, "IQ3_S", 256, 110, false},
    {22, "IQ2_S", 256, 82, false},   {23, "IQ4_XS", 256, 136, true},
    {24, "I8", 1, 1, false},         {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},        {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},        {29, "IQ1_M", 256, 56, false},
    {30, "BF16", 1, 2, true},        {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},   {39, "MXFP4", 32, 17, false},
    {40, "NVFP4", 64, 36, false},    {41, "Q1_0", 128, 18, false},
    {42, "Q2_0", 64, 18, false},
};

const TypeRow* FindType(uint32_t type) {
  for (const TypeRow& row : kTypes) {
    if (row.id == type) return &row;
  }
  return nullptr;
}

// "type <N>" for ids 0..255, built at compile time so GgmlTypeInfo can hand out a static name.
struct UnknownName {
  char text[10];  // "type 255" and its terminator
};

constexpr std::array<UnknownName, 256> MakeUnknownNames() {
  std::array<UnknownName, 256> names{};
  for (int id = 0; id < 256; ++id) {
    char* p = names[id].text;
    for (char c : {'t', 'y', 'p', 'e', ' '}) *p++ = c;
    if (id >= 100) *p++ = static_cast<char>('0' + id / 100);
    if (id >= 10) *p++ = static_cast<char>('0' + id / 10 % 10);
    *p++ = static_cast<char>('0' + id % 10);
    *p = '\0';
  }
  return names;
}

constexpr std::array<UnknownName, 256> kUnknownNames = MakeUnknownNames();

// Little-endian loads from unaligned bytes (GGUF data is little-endian whatever the host).
inline uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

inline uint32_t LoadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// ggml_compute_fp16_to_fp32: exact for every finite value (subnormals included); a NaN comes out
// quiet (ggml's multiply by 2^-112 sets the quiet bit), keeping sign and payload.
inline float GgmlF16(uint16_t bits) {
  float value = F16ToF32(bits);
  if ((bits & 0x7c00u) == 0x7c00u && (bits & 0x03ffu) != 0) {
    uint32_t wide;
    std::memcpy(&wide, &value, sizeof(wide));
    wide |= 0x00400000u;
    std::memcpy(&value, &wide, sizeof(value));
  }
  return value;
}

inline float LoadF16(const uint8_t* p) { return GgmlF16(LoadU16(p)); }

// kvalues_iq4nl (ggml-common.h): the 16 non-uniform levels of IQ4_NL and IQ4_XS.
constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

// get_scale_min_k4: 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block's 12 scale bytes
// `q`. j < 4: low 6 bits of q[j] and q[j+4]; j >= 4: a nibble of q[j+4] plus the top 2 bits of
// q[j-4] (scale) or q[j] (min).
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Each Row* function below dequantizes `nb` consecutive blocks at `x` into `y`; the comment
// gives the block's byte layout (offsets in bytes).

// F32: raw little-endian floats (the host is little-endian on every platform bora builds for).
void RowF32(const uint8_t* x, int64_t n, float* y) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

void RowF16(const uint8_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = LoadF16(x + 2 * i);
}

void RowBf16(const uint8_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = Bf16ToF32(LoadU16(x + 2 * i));
}

// Q4_0 (18): f16 d @0, qs[16] @2: element j is the low nibble of qs[j], element j+16 its high
// nibble; w = (q - 8) * d.
void RowQ4_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = LoadF16(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; ++j) {
      const int x0 = (qs[j] & 0x0F) - 8;
      const int x1 = (qs[j] >> 4) - 8;
      y[j] = static_cast<float>(x0) * d;
      y[j + 16] = static_cast<float>(x1) * d;
    }
  }
}

// Q4_1 (20): f16 d @0, f16 m @2, qs[16] @4 (as Q4_0); w = q * d + m.
void RowQ4_1(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 20, y += 32) {
    const float d = LoadF16(x);
    const float m = LoadF16(x + 2);
    const uint8_t* qs = x + 4;
    for (int j = 0; j < 16; ++j) {
      const int x0 = qs[j] & 0x0F;
      const int x1 = qs[j] >> 4;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + 16] = static_cast<float>(x1) * d + m;
    }
  }
}

// Q5_0 (22): f16 d @0, u32 qh @2 (bit e = 5th bit of element e), qs[16] @6 (as Q4_0);
// w = (q - 16) * d.
void RowQ5_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 22, y += 32) {
    const float d = LoadF16(x);
    const uint32_t qh = LoadU32(x + 2);
    const uint8_t* qs = x + 6;
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16;
      const int32_t x1 = ((qs[j] >> 4) | xh_1) - 16;
      y[j] = static_cast<float>(x0) * d;
      y[j + 16] = static_cast<float>(x1) * d;
    }
  }
}

// Q5_1 (24): f16 d @0, f16 m @2, u32 qh @4, qs[16] @8 (as Q5_0); w = q * d + m.
void RowQ5_1(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 24, y += 32) {
    const float d = LoadF16(x);
    const float m = LoadF16(x + 2);
    const uint32_t qh = LoadU32(x + 4);
    const uint8_t* qs = x + 8;
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (qs[j] & 0x0F) | xh_0;
      const int x1 = (qs[j] >> 4) | xh_1;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + 16] = static_cast<float>(x1) * d + m;
    }
  }
}

// Q8_0 (34): f16 d @0, int8 qs[32] @2; w = q * d.
void RowQ8_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
    const float d = LoadF16(x);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(x[2 + j])) * d;
  }
}

// Q2_K (84): scales[16] @0 (low nibble scale, high nibble min of 16-element sub-block s),
// qs[64] @16, f16 d @80, f16 dmin @82. Each 128-element half uses 32 qs bytes; bit pair p
// (shift 2p) of qs[l] is element 32p + l, of qs[l + 16] element 32p + 16 + l.
// w = (d * sc) * q - dmin * m.
void RowQ2K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 84) {
    const uint8_t* scales = x;
    const uint8_t* q = x + 16;
    const float d = LoadF16(x + 80);
    const float min = LoadF16(x + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            const int8_t value = static_cast<int8_t>((q[l + 16 * half] >> shift) & 3);
            *y++ = dl * static_cast<float>(value) - ml;
          }
        }
      }
    }
  }
}

// Q3_K (110): hmask[32] @0, qs[64] @32, scales[12] @96, f16 d @108. The 16 6-bit scales: low
// nibble of byte j % 8 (shift 4 * (j / 8)), top 2 bits from byte 8 + j % 4 (shift 2 * (j / 4));
// quants as Q2_K, minus 4 where the hmask bit (bit k of hmask[l], k = 4 * half128 + pair) is 0.
// w = (d * (sc - 32)) * q.
void RowQ3K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 110) {
    const uint8_t* hm = x;
    const uint8_t* q = x + 32;
    const uint8_t* packed = x + 96;
    const float d_all = LoadF16(x + 108);
    int8_t scales[16];
    for (int j = 0; j < 16; ++j) {
      const int low = (packed[j % 8] >> (4 * (j / 8))) & 0xF;
      const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
      scales[j] = static_cast<int8_t>(low | high << 4);
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * static_cast<float>(scales[is++] - 32);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * half;
            const int value = static_cast<int8_t>((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(value);
          }
        }
      }
    }
  }
}

// Q4_K (144): f16 d @0, f16 dmin @2, scales[12] @4 (ScaleMinK4), qs[128] @16. Each 64-element
// chunk uses 32 qs bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1.
// w = (d * sc) * q - dmin * m.
void RowQ4K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = LoadF16(x);
    const float min = LoadF16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* q = x + 16;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      ScaleMinK4(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      ScaleMinK4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K (176): as Q4_K with qh[32] @16 and qs[128] @48; bit 2c (2c + 1) of qh[l] adds 16 to
// the low (high) nibble quant of chunk c.
void RowQ5K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 176) {
    const float d = LoadF16(x);
    const float min = LoadF16(x + 2);
    const uint8_t* scales = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, ql += 32) {
      uint8_t sc, m;
      ScaleMinK4(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      ScaleMinK4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      }
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

// Q6_K (210): ql[128] @0, qh[64] @128, int8 scales[16] @192, f16 d @208. Per 128-element half
// (64 ql, 32 qh, 8 scales): element l + 32 * k (k = 0..3) takes the low (k even) or high nibble
// of ql[l + 32 * (k % 2)] and bits 2k..2k+1 of qh[l]; scale index l / 16 + 2k.
// w = (d * sc) * (q - 32).
void RowQ6K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    const float d = LoadF16(x + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int8_t q1 = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int8_t q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int8_t q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int8_t q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// IQ4_NL (18): f16 d @0, qs[16] @2 (nibbles as Q4_0) indexing kIq4nlValues; w = d * value.
void RowIq4Nl(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = LoadF16(x);
    const uint8_t* qs = x + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[qs[j] & 0xf]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
    }
  }
}

// IQ4_XS (136): f16 d @0, u16 scales_h @2, scales_l[4] @4, qs[128] @8. Sub-block b (32
// elements, 16 qs bytes, nibbles as IQ4_NL) has the 6-bit scale ls = nibble b % 2 of
// scales_l[b / 2] | bits 2b..2b+1 of scales_h << 4; w = (d * (ls - 32)) * value.
void RowIq4Xs(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 136) {
    const float d = LoadF16(x);
    const uint16_t scales_h = LoadU16(x + 2);
    const uint8_t* scales_l = x + 4;
    const uint8_t* qs = x + 8;
    for (int ib = 0; ib < 8; ++ib, y += 32, qs += 16) {
      const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

// Element count of n elements checked against the type's block size (InvalidArgument if not).
int64_t BlockCount(const TypeRow& row, int64_t n) {
  if (n < 0 || n % row.block_size != 0) {
    throw InvalidArgument("a row of ggml type " + std::string(row.name) + " needs a multiple of " +
                          std::to_string(row.block_size) + " elements, got " + std::to_string(n));
  }
  return n / row.block_size;
}

}  // namespace

GgmlTypeTraits GgmlTypeInfo(uint32_t type) {
  if (const TypeRow* row = FindType(type)) {
    return {row->name, row->block_size, row->type_size, row->supported};
  }
  return {type < kUnknownNames.size() ? kUnknownNames[type].text : "type >255", 0, 0, false};
}

std::string GgmlTypeName(uint32_t type) {
  if (const TypeRow* row = FindType(type)) return row->name;
  return "type " + std::to_string(type);
}

uint64_t GgmlRowBytes(uint32_t type, int64_t n) {
  const TypeRow* row = FindType(type);
  if (row == nullptr) throw InvalidArgument("unknown ggml tensor type id " + std::to_string(type));
  const int64_t blocks = BlockCount(*row, n);
  const std::optional<uint64_t> bytes =
      CheckedMul(static_cast<uint64_t>(blocks), static_cast<uint64_t>(row->type_size));
  if (!bytes) {
    throw InvalidArgument("a row of " + std::to_string(n) + " " + row->name + " values overflows");
  }
  return *bytes;
}

void DequantizeGgmlRow(uint32_t type, const uint8_t* src, int64_t n, float* out) {
  const TypeRow* row = FindType(type);
  if (row == nullptr || !row->supported) {
    throw Unsupported("ggml tensor type " + GgmlTypeName(type) +
                      " cannot be dequantized (bora reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, "
                      "Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL and IQ4_XS)");
  }
  const int64_t nb = BlockCount(*row, n);
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32:
      return RowF32(src, nb, out);
    case GgmlType::kF16:
      return RowF16(src, nb, out);
    case GgmlType::kBF16:
      return RowBf16(src, nb, out);
    case GgmlType::kQ4_0:
      return RowQ4_0(src, nb, out);
    case GgmlType::kQ4_1:
      return RowQ4_1(src, nb, out);
    case GgmlType::kQ5_0:
      return RowQ5_0(src, nb, out);
    case GgmlType::kQ5_1:
      return RowQ5_1(src, nb, out);
    case GgmlType::kQ8_0:
      return RowQ8_0(src, nb, out);
    case GgmlType::kQ2_K:
      return RowQ2K(src, nb, out);
    case GgmlType::kQ3_K:
      return RowQ3K(src, nb, out);
    case GgmlType::kQ4_K:
      return RowQ4K(src, nb, out);
    case GgmlType::kQ5_K:
      return RowQ5K(src, nb, out);
    case GgmlType::kQ6_K:
      return RowQ6K(src, nb, out);
    case GgmlType::kIQ4_NL:
      return RowIq4Nl(src, nb, out);
    case GgmlType::kIQ4_XS:
      return RowIq4Xs(src, nb, out);
    default:
      break;
  }
  throw Unsupported("ggml tensor type " + GgmlTypeName(type) + " cannot be dequantized");
}

bool RepackGgmlToPanels(uint32_t type, const uint8_t* src, int64_t rows, int64_t cols,
                        uint8_t* quants, uint16_t* scales) {
  const GgmlType ggml = static_cast<GgmlType>(type);
  if (ggml != GgmlType::kQ8_0 && ggml != GgmlType::kQ4_0) {
    throw Unsupported("ggml tensor type " + GgmlTypeName(type) +
                      " cannot be repacked into bora panels (only Q8_0 and Q4_0)");
  }
  if (rows < 0 || cols < 0 || cols % kQuantBlock != 0) {
    throw InvalidArgument("cannot repack a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                          "] ggml matrix: cols must be a multiple of 32");
  }
  const bool q8 = ggml == GgmlType::kQ8_0;
  const QuantFormat format = q8 ? QuantFormat::kQ8 : QuantFormat::kQ4;
  const int64_t src_block_bytes = q8 ? 34 : 18;  // sizeof(block_q8_0), sizeof(block_q4_0)
  const PackedShape shape{format, rows, cols};
  const int64_t blocks = shape.blocks();
  const int64_t row_bytes = blocks * src_block_bytes;
  if (q8) {  // a quant of -128 (byte 0x80) has no q8 slot: refuse before writing anything
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* qs = src + r * row_bytes + b * src_block_bytes + 2;
        for (int c = 0; c < kQuantBlock; ++c) {
          if (qs[c] == 0x80) return false;
        }
      }
    }
  }
  const int64_t dst_block_bytes = QuantBlockBytes(format);
  // Zero quants at the zero point: 128 for q8, 8 in both nibbles for q4.
  const uint8_t padding = q8 ? 0x80 : 0x88;
  for (int64_t panel = 0; panel < shape.panels(); ++panel) {
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = quants + (panel * blocks + b) * dst_block_bytes;
      uint16_t* block_scales = scales + (panel * blocks + b) * kPanelRows;
      std::memset(block, padding, static_cast<size_t>(dst_block_bytes));
      for (int64_t r = 0; r < kPanelRows; ++r) {
        const int64_t row = panel * kPanelRows + r;
        if (row >= rows) {
          block_scales[r] = 0;
          continue;
        }
        const uint8_t* in = src + row * row_bytes + b * src_block_bytes;
        block_scales[r] = LoadU16(in);
        const uint8_t* qs = in + 2;
        if (q8) {
          // Column c = 4 * quad + j at byte quad * 64 + r * 4 + j; int8 q -> q + 128 = q ^ 0x80.
          for (int c = 0; c < kQuantBlock; ++c) {
            block[(c / 4) * 64 + r * 4 + c % 4] = static_cast<uint8_t>(qs[c] ^ 0x80);
          }
        } else {
          // Vector v, byte r * 4 + j: low nibble column 8v + j, high nibble column 8v + 4 + j;
          // Q4_0 column c is the low nibble of qs[c] (c < 16) or the high one of qs[c - 16].
          auto nibble = [qs](int c) { return c < 16 ? qs[c] & 0x0F : qs[c - 16] >> 4; };
          for (int v = 0; v < 4; ++v) {
            for (int j = 0; j < 4; ++j) {
              block[v * 64 + r * 4 + j] =
                  static_cast<uint8_t>(nibble(8 * v + j) | nibble(8 * v + 4 + j) << 4);
            }
          }
        }
      }
    }
  }
  return true;
}

}  // namespace bora::kernels
