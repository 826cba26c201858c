// Tests the GGUF reader on images built here byte by byte: every value type, arrays, tensor
// infos and alignment, each malformed header rejected by name, and the llama / mistral3
// metadata -> ModelParams table and GGUF -> Mistral-native tensor names.
#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/error.h"
#include "formats/gguf_model.h"
#include "formats/model_params.h"
#include "kernels/quant/ggml_blocks.h"
#include "testdata.h"

namespace bora::formats {
namespace {

constexpr char kFileName[] = "bad-input.gguf";
constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kBF16 = 30;

// ---------------------------------------------------------------------------------------------
// A small GGUF writer: little-endian values, typed key/value pairs, tensor infos, padding, data.

template <typename T>
std::string Le(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
  using Bits = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  const uint64_t bits = std::bit_cast<Bits>(value);
  std::string out;
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return out;
}

std::string GgufString(const std::string& text) { return Le<uint64_t>(text.size()) + text; }

uint32_t TypeId(GgufValueType type) { return static_cast<uint32_t>(type); }

// One metadata pair as written: key, u32 value type, then `payload` (the value's bytes).
struct Kv {
  std::string key;
  uint32_t type = 0;
  std::string payload;
};

Kv U8Kv(const std::string& key, uint8_t v) { return {key, TypeId(GgufValueType::kU8), Le(v)}; }
Kv I8Kv(const std::string& key, int8_t v) { return {key, TypeId(GgufValueType::kI8), Le(v)}; }
Kv U16Kv(const std::string& key, uint16_t v) { return {key, TypeId(GgufValueType::kU16), Le(v)}; }
Kv I16Kv(const std::string& key, int16_t v) { return {key, TypeId(GgufValueType::kI16), Le(v)}; }
Kv U32Kv(const std::string& key, uint32_t v) { return {key, TypeId(GgufValueType::kU32), Le(v)}; }
Kv I32Kv(const std::string& key, int32_t v) { return {key, TypeId(GgufValueType::kI32), Le(v)}; }
Kv U64Kv(const std::string& key, uint64_t v) { return {key, TypeId(GgufValueType::kU64), Le(v)}; }
Kv I64Kv(const std::string& key, int64_t v) { return {key, TypeId(GgufValueType::kI64), Le(v)}; }
Kv F32Kv(const std::string& key, float v) { return {key, TypeId(GgufValueType::kF32), Le(v)}; }
Kv F64Kv(const std::string& key, double v) { return {key, TypeId(GgufValueType::kF64), Le(v)}; }
Kv BoolKv(const std::string& key, bool v) { return {key, TypeId(GgufValueType::kBool), Le(v)}; }
Kv StrKv(const std::string& key, const std::string& v) { return {key, TypeId(GgufValueType::kString), GgufString(v)}; }

// An array: element type, count, then `elements` (already encoded; may disagree with `count`).
Kv ArrayKv(const std::string& key, uint32_t element_type, uint64_t count, const std::string& elements) {
  return {key, TypeId(GgufValueType::kArray), Le(element_type) + Le(count) + elements};
}

template <typename T>
Kv NumberArrayKv(const std::string& key, GgufValueType element_type, const std::vector<T>& values) {
  std::string elements;
  for (T v : values) elements += Le(v);
  return ArrayKv(key, TypeId(element_type), values.size(), elements);
}

Kv StringArrayKv(const std::string& key, const std::vector<std::string>& values) {
  std::string elements;
  for (const std::string& v : values) elements += GgufString(v);
  return ArrayKv(key, TypeId(GgufValueType::kString), values.size(), elements);
}

// One tensor info; `offset` nullopt = placed after the previous auto-placed tensor, aligned.
struct TensorSpec {
  TensorSpec(std::string name_in, std::vector<int64_t> ne_in, uint32_t type_in,
             std::optional<uint64_t> offset_in = std::nullopt)
      : name(std::move(name_in)), ne(std::move(ne_in)), type(type_in), offset(offset_in) {}
  std::string name;
  std::vector<int64_t> ne;
  uint32_t type = kF32;
  std::optional<uint64_t> offset;
};

// Bytes of a well-formed tensor (0 for shapes or types the reader must refuse).
uint64_t TensorSize(const TensorSpec& t) {
  const kernels::GgmlTypeTraits traits = kernels::GgmlTypeInfo(t.type);
  if (traits.block_size <= 0 || t.ne.empty() || t.ne.size() > 4) return 0;
  uint64_t elements = 1;
  for (int64_t n : t.ne) {
    if (n <= 0 || n > (int64_t{1} << 20)) return 0;
    elements *= static_cast<uint64_t>(n);
  }
  if (t.ne[0] % traits.block_size != 0) return 0;
  return elements / static_cast<uint64_t>(traits.block_size) * static_cast<uint64_t>(traits.type_size);
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

struct Image {
  uint32_t magic = kMagic;
  uint32_t version = 3;
  std::vector<Kv> kvs;
  std::string raw_kvs;  // appended after `kvs` (malformed pairs); counted by key_count only if overridden
  std::vector<TensorSpec> tensors;
  std::optional<uint64_t> tensor_count;  // overrides tensors.size()
  std::optional<uint64_t> key_count;     // overrides kvs.size()
  uint32_t alignment = kDefaultGgufAlignment;  // padding before the data section
  int64_t data_extra = 0;  // bytes added to (or, negative, cut from) the end of the data section
  std::string trailing;    // appended after everything (ignored by the reader)

  // Offsets of the tensors as written.
  std::vector<uint64_t> Offsets() const {
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const TensorSpec& t : tensors) {
      if (t.offset) {
        offsets.push_back(*t.offset);
      } else {
        next = AlignUp(next, alignment);
        offsets.push_back(next);
        next += TensorSize(t);
      }
    }
    return offsets;
  }

  // Data bytes: up to the end of the last auto-placed tensor.
  uint64_t DataSize() const {
    const std::vector<uint64_t> offsets = Offsets();
    uint64_t end = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i].offset) end = std::max(end, offsets[i] + TensorSize(tensors[i]));
    }
    return end;
  }

  std::string Header() const {
    std::string out = Le(magic) + Le(version) + Le<uint64_t>(tensor_count.value_or(tensors.size())) +
                      Le<uint64_t>(key_count.value_or(kvs.size()));
    for (const Kv& kv : kvs) out += GgufString(kv.key) + Le(kv.type) + kv.payload;
    out += raw_kvs;
    const std::vector<uint64_t> offsets = Offsets();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorSpec& t = tensors[i];
      out += GgufString(t.name) + Le<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (int64_t n : t.ne) out += Le(n);
      out += Le(t.type) + Le(offsets[i]);
    }
    return out;
  }

  std::vector<uint8_t> Build() const {
    std::string out = Header();
    if (!tensors.empty()) {
      out.resize(AlignUp(out.size(), alignment), '\0');
      const int64_t data = static_cast<int64_t>(DataSize()) + data_extra;
      for (int64_t i = 0; i < data; ++i) out.push_back(static_cast<char>(i * 7 + 1));
      if (data < 0) out.resize(out.size() - static_cast<size_t>(-data));
    }
    out += trailing;
    return std::vector<uint8_t>(out.begin(), out.end());
  }
};

std::string Describe(const std::vector<uint8_t>& bytes) {
  return "image of " + std::to_string(bytes.size()) + " bytes";
}

// The message of the `E` that parsing `bytes` throws; a test failure for anything else.
template <typename E>
std::string ParseError(const std::vector<uint8_t>& bytes) {
  try {
    ParseGgufHeader(bytes, kFileName);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "accepted an invalid " << Describe(bytes);
  return "";
}

::testing::AssertionResult Mentions(const std::string& message, const std::string& text) {
  if (message.find(text) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << message << "\" does not mention \"" << text << "\"";
}

// The message names the file, then the problem.
::testing::AssertionResult Rejected(const std::string& message, const std::string& text) {
  if (message.rfind(std::string(kFileName) + ": ", 0) != 0) {
    return ::testing::AssertionFailure() << "message \"" << message << "\" does not start with the file name";
  }
  return Mentions(message, text);
}

// An image with one key and one F32 tensor [32] (the usual base of the malformed variants).
Image OneTensorImage() {
  Image image;
  image.kvs = {StrKv("general.architecture", "llama")};
  image.tensors = {{"a", {32}, kF32}};
  return image;
}

// A valid file exercising every scalar type, arrays and five tensors of four ggml types.
Image RichImage() {
  Image image;
  image.kvs = {
      StrKv("general.architecture", "llama"),
      U8Kv("t.u8", 200),
      I8Kv("t.i8", -5),
      U16Kv("t.u16", 60000),
      I16Kv("t.i16", -30000),
      U32Kv("t.u32", 4000000000u),
      I32Kv("t.i32", -2000000000),
      F32Kv("t.f32", 1.5f),
      BoolKv("t.bool", true),
      StrKv("t.string", "h\xc3\xa9llo"),
      U64Kv("t.u64", (uint64_t{1} << 40) + 3),
      I64Kv("t.i64", -(int64_t{1} << 40)),
      F64Kv("t.f64", 0.1),
      StrKv("t.empty_string", ""),
      I64Kv("t.i64_positive", 77),
      F32Kv("t.nan", std::numeric_limits<float>::quiet_NaN()),
      StringArrayKv("t.strings", {"a", "", "bc"}),
      NumberArrayKv<uint32_t>("t.u32s", GgufValueType::kU32, {1, 2, 3}),
      NumberArrayKv<float>("t.f32s", GgufValueType::kF32, {0.5f, -2.0f}),
      NumberArrayKv<int8_t>("t.i8s", GgufValueType::kI8, {-1, 7}),
      NumberArrayKv<uint8_t>("t.bools", GgufValueType::kBool, {1, 0}),
      NumberArrayKv<uint64_t>("t.u64s", GgufValueType::kU64, {uint64_t{1} << 50}),
      NumberArrayKv<double>("t.f64s", GgufValueType::kF64, {-0.25}),
      NumberArrayKv<uint32_t>("t.empty_array", GgufValueType::kU32, {}),
  };
  image.tensors = {
      {"a", {4, 3}, kF32},           // 48 bytes at 0
      {"b", {64, 2}, kQ4_0},         // 4 blocks of 18 at 64
      {"c", {256, 1, 2}, kQ4_K},     // 2 blocks of 144 at 160
      {"d", {2, 2, 2, 2}, kBF16},    // 32 bytes at 448
      {"blk.0.e", {32}, kQ8_0},      // 34 bytes at 480: the file ends at 514 data bytes
  };
  return image;
}

// ---------------------------------------------------------------------------------------------
// Valid files.

TEST(GgufHeaderTest, ParsesEveryValueTypeAndArray) {
  const std::vector<uint8_t> bytes = RichImage().Build();
  const GgufHeader header = ParseGgufHeader(bytes, "ok.gguf");
  EXPECT_EQ(header.version, 3u);
  EXPECT_EQ(header.file_name, "ok.gguf");
  ASSERT_EQ(header.metadata.size(), RichImage().kvs.size());
  for (size_t i = 0; i < header.metadata.size(); ++i) {
    EXPECT_EQ(header.metadata[i].first, RichImage().kvs[i].key) << "metadata keeps file order";
  }

  EXPECT_EQ(header.Find("t.u8")->type, GgufValueType::kU8);
  EXPECT_EQ(header.Find("t.u8")->u, 200u);
  EXPECT_EQ(header.Find("t.i8")->type, GgufValueType::kI8);
  EXPECT_EQ(header.Find("t.i8")->i, -5);
  EXPECT_EQ(header.Find("t.u16")->u, 60000u);
  EXPECT_EQ(header.Find("t.i16")->i, -30000);
  EXPECT_EQ(header.Find("t.u32")->u, 4000000000u);
  EXPECT_EQ(header.Find("t.i32")->i, -2000000000);
  EXPECT_EQ(header.Find("t.f32")->type, GgufValueType::kF32);
  EXPECT_EQ(header.Find("t.f32")->f, 1.5);
  EXPECT_EQ(header.Find("t.bool")->type, GgufValueType::kBool);
  EXPECT_EQ(header.Find("t.string")->s, "h\xc3\xa9llo");
  EXPECT_EQ(header.Find("t.u64")->u, (uint64_t{1} << 40) + 3);
  EXPECT_EQ(header.Find("t.i64")->i, -(int64_t{1} << 40));
  EXPECT_EQ(header.Find("t.f64")->type, GgufValueType::kF64);
  EXPECT_EQ(header.Find("t.f64")->f, 0.1);
  EXPECT_EQ(header.Find("missing"), nullptr);

  const GgufValue* strings = header.Find("t.strings");
  ASSERT_NE(strings, nullptr);
  EXPECT_EQ(strings->type, GgufValueType::kArray);
  EXPECT_EQ(strings->element_type, GgufValueType::kString);
  EXPECT_EQ(strings->count, 3u);
  const GgufValue* u32s = header.Find("t.u32s");
  ASSERT_NE(u32s, nullptr);
  EXPECT_EQ(u32s->element_type, GgufValueType::kU32);
  EXPECT_EQ(u32s->count, 3u);
  EXPECT_EQ(u32s->raw.size(), 12u);

  EXPECT_EQ(GgufValueTypeName(GgufValueType::kU8), "u8");
  EXPECT_EQ(GgufValueTypeName(GgufValueType::kString), "string");
  EXPECT_EQ(GgufValueTypeName(GgufValueType::kF64), "f64");
  EXPECT_EQ(GgufValueTypeName(static_cast<GgufValueType>(13)), "unknown");
}

TEST(GgufHeaderTest, TypedAccessors) {
  const std::vector<uint8_t> bytes = RichImage().Build();
  const GgufHeader header = ParseGgufHeader(bytes, "ok.gguf");

  EXPECT_EQ(header.GetString("general.architecture"), "llama");
  EXPECT_EQ(header.GetString("t.empty_string"), "");
  EXPECT_EQ(header.GetString("missing"), std::nullopt);
  EXPECT_EQ(header.GetUint("t.u8"), 200u);
  EXPECT_EQ(header.GetUint("t.u16"), 60000u);
  EXPECT_EQ(header.GetUint("t.u32"), 4000000000u);
  EXPECT_EQ(header.GetUint("t.u64"), (uint64_t{1} << 40) + 3);
  EXPECT_EQ(header.GetUint("t.i64_positive"), 77u);
  EXPECT_EQ(header.GetUint("missing"), std::nullopt);
  EXPECT_EQ(header.GetFloat("t.f32"), 1.5);
  EXPECT_EQ(header.GetFloat("t.f64"), 0.1);
  EXPECT_EQ(header.GetFloat("t.i8"), -5.0);
  EXPECT_EQ(header.GetFloat("t.u32"), 4000000000.0);
  EXPECT_EQ(header.GetFloat("t.i64"), -1099511627776.0);
  EXPECT_EQ(header.GetFloat("missing"), std::nullopt);
  EXPECT_EQ(header.GetBool("t.bool"), true);
  EXPECT_EQ(header.GetBool("missing"), std::nullopt);
  EXPECT_EQ(header.GetStringArray("t.strings"), (std::vector<std::string_view>{"a", "", "bc"}));
  EXPECT_TRUE(header.GetStringArray("missing").empty());
  EXPECT_EQ(header.GetNumberArray("t.u32s"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(header.GetNumberArray("t.f32s"), (std::vector<double>{0.5, -2}));
  EXPECT_EQ(header.GetNumberArray("t.i8s"), (std::vector<double>{-1, 7}));
  EXPECT_EQ(header.GetNumberArray("t.bools"), (std::vector<double>{1, 0}));
  EXPECT_EQ(header.GetNumberArray("t.u64s"), (std::vector<double>{std::ldexp(1.0, 50)}));
  EXPECT_EQ(header.GetNumberArray("t.f64s"), (std::vector<double>{-0.25}));
  EXPECT_TRUE(header.GetNumberArray("t.empty_array").empty());
  EXPECT_TRUE(header.GetNumberArray("missing").empty());

  // Wrong kinds are refused naming the key.
  auto message = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const FormatError& e) {
      return e.what();
    }
    return "(no FormatError)";
  };
  EXPECT_TRUE(Mentions(message([&] { header.GetString("t.u32"); }), "\"t.u32\" is a u32, expected a string"));
  EXPECT_TRUE(Mentions(message([&] { header.GetUint("t.f32"); }), "\"t.f32\" is a f32, expected an integer"));
  EXPECT_TRUE(Mentions(message([&] { header.GetUint("t.u32s"); }), "\"t.u32s\" is a array, expected an integer"));
  EXPECT_TRUE(Mentions(message([&] { header.GetUint("t.i8"); }), "\"t.i8\" is negative"));
  EXPECT_TRUE(Mentions(message([&] { header.GetUint("t.i64"); }), "\"t.i64\" is negative"));
  EXPECT_TRUE(Mentions(message([&] { header.GetFloat("t.string"); }), "\"t.string\" is a string, expected a number"));
  EXPECT_TRUE(Mentions(message([&] { header.GetFloat("t.bool"); }), "expected a number"));
  EXPECT_TRUE(Mentions(message([&] { header.GetFloat("t.nan"); }), "\"t.nan\" is not finite"));
  EXPECT_TRUE(Mentions(message([&] { header.GetBool("t.u8"); }), "\"t.u8\" is a u8, expected a bool"));
  EXPECT_TRUE(Mentions(message([&] { header.GetStringArray("t.u32s"); }), "\"t.u32s\" is not an array of strings"));
  EXPECT_TRUE(Mentions(message([&] { header.GetStringArray("t.string"); }), "not an array of strings"));
  EXPECT_TRUE(Mentions(message([&] { header.GetNumberArray("t.strings"); }), "\"t.strings\" is not an array of numbers"));
  EXPECT_TRUE(Mentions(message([&] { header.GetNumberArray("t.u32"); }), "\"t.u32\" is not an array of numbers"));
  EXPECT_TRUE(Mentions(message([&] { header.GetString("t.u32"); }), "ok.gguf: "));
}

TEST(GgufHeaderTest, TensorInfosOffsetsAndDataStart) {
  const Image image = RichImage();
  const std::vector<uint8_t> bytes = image.Build();
  const GgufHeader header = ParseGgufHeader(bytes, "ok.gguf");
  EXPECT_EQ(header.alignment, 32u);
  EXPECT_EQ(header.data_start, AlignUp(image.Header().size(), 32));
  EXPECT_EQ(header.data_start % 32, 0u);
  ASSERT_EQ(header.tensors.size(), 5u);

  struct Expected {
    const char* name;
    std::vector<int64_t> ne;
    uint32_t type;
    uint64_t offset;
    uint64_t size;
    int64_t elements;
  };
  const Expected kExpected[] = {
      {"a", {4, 3}, kF32, 0, 48, 12},
      {"b", {64, 2}, kQ4_0, 64, 72, 128},
      {"c", {256, 1, 2}, kQ4_K, 160, 288, 512},
      {"d", {2, 2, 2, 2}, kBF16, 448, 32, 16},
      {"blk.0.e", {32}, kQ8_0, 480, 34, 32},
  };
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const GgufTensorInfo& info = header.tensors[i];
    const Expected& want = kExpected[i];
    EXPECT_EQ(info.name, want.name);
    EXPECT_EQ(info.ne, want.ne) << want.name;
    EXPECT_EQ(info.type, want.type) << want.name;
    EXPECT_EQ(info.offset, want.offset) << want.name;
    EXPECT_EQ(info.size, want.size) << want.name;
    EXPECT_EQ(info.NumElements(), want.elements) << want.name;
    EXPECT_EQ(header.FindTensor(want.name), &info);
  }
  EXPECT_EQ(header.FindTensor("missing"), nullptr);
  EXPECT_EQ(bytes.size(), header.data_start + 514);
}

TEST(GgufHeaderTest, OpensMappedFileAndGivesTensorBytes) {
  const std::vector<uint8_t> bytes = RichImage().Build();
  testing::TempDir dir;
  const std::string path = dir.File("rich.gguf");
  testing::WriteFile(path, std::string(bytes.begin(), bytes.end()));
  testing::WriteFile(dir.File("other.bin"), "GGU");

  EXPECT_TRUE(LooksLikeGguf(path));
  EXPECT_FALSE(LooksLikeGguf(dir.File("other.bin")));
  EXPECT_FALSE(LooksLikeGguf(dir.File("absent.gguf")));
  const GgufFile file = GgufFile::Open(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.file_bytes().size(), bytes.size());
  EXPECT_EQ(file.header().file_name, path);
  for (const GgufTensorInfo& info : file.header().tensors) {
    const std::span<const uint8_t> data = file.TensorBytes(info);
    ASSERT_EQ(data.size(), info.size);
    const size_t begin = file.header().data_start + info.offset;
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes.begin() + static_cast<std::ptrdiff_t>(begin)))
        << info.name;
  }
  const std::string message = [&] {
    try {
      testing::WriteFile(dir.File("bad.gguf"), "GGUF\x01");
      GgufFile::Open(dir.File("bad.gguf"));
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("(no FormatError)");
  }();
  EXPECT_TRUE(Mentions(message, dir.File("bad.gguf") + ": truncated GGUF header"));
}

TEST(GgufHeaderTest, AcceptsVersion2AndHeaderOnlyFiles) {
  Image image = RichImage();
  image.version = 2;
  const std::vector<uint8_t> v2 = image.Build();
  EXPECT_EQ(ParseGgufHeader(v2, "v2.gguf").version, 2u);

  // No keys, no tensors: 24 bytes; the data section would start at 32 but nothing lies there.
  const std::vector<uint8_t> empty = Image().Build();
  ASSERT_EQ(empty.size(), 24u);
  const GgufHeader header = ParseGgufHeader(empty, "empty.gguf");
  EXPECT_TRUE(header.metadata.empty());
  EXPECT_TRUE(header.tensors.empty());
  EXPECT_EQ(header.data_start, 32u);

  // Keys only (a vocab-only file), and trailing bytes after the last tensor are allowed.
  Image keys_only;
  keys_only.kvs = {StrKv("general.architecture", "llama"), StringArrayKv("tokenizer.ggml.tokens", {"<unk>", "a"})};
  const std::vector<uint8_t> keys_bytes = keys_only.Build();
  EXPECT_EQ(ParseGgufHeader(keys_bytes, "vocab.gguf").GetStringArray("tokenizer.ggml.tokens").size(), 2u);
  Image trailing = OneTensorImage();
  trailing.data_extra = 100;
  const std::vector<uint8_t> trailing_bytes = trailing.Build();
  EXPECT_EQ(ParseGgufHeader(trailing_bytes, "t.gguf").tensors.size(), 1u);
}

TEST(GgufHeaderTest, CustomAlignment) {
  Image image;
  image.kvs = {U32Kv("general.alignment", 64)};
  image.alignment = 64;
  image.tensors = {{"a", {12}, kF32}, {"b", {32}, kF32}, {"c", {1}, kF32}};  // 48, 128, 4 bytes
  const std::vector<uint8_t> bytes = image.Build();
  const GgufHeader header = ParseGgufHeader(bytes, "aligned.gguf");
  EXPECT_EQ(header.alignment, 64u);
  EXPECT_EQ(header.data_start % 64, 0u);
  EXPECT_EQ(header.data_start, AlignUp(image.Header().size(), 64));
  EXPECT_EQ(header.tensors[1].offset, 64u);
  EXPECT_EQ(header.tensors[2].offset, 192u);

  // Alignment 1: any offset.
  Image byte_aligned;
  byte_aligned.kvs = {U32Kv("general.alignment", 1)};
  byte_aligned.alignment = 1;
  byte_aligned.tensors = {{"a", {3}, kF16}, {"b", {1}, kF32}};  // b at offset 6
  const std::vector<uint8_t> byte_bytes = byte_aligned.Build();
  const GgufHeader byte_header = ParseGgufHeader(byte_bytes, "a1.gguf");
  EXPECT_EQ(byte_header.alignment, 1u);
  EXPECT_EQ(byte_header.data_start, byte_aligned.Header().size());
  EXPECT_EQ(byte_header.tensors[1].offset, 6u);

  // Offsets must follow the file's alignment, not the default.
  image.tensors[1].offset = 32;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()),
                       "tensor \"b\" offset 32 is not a multiple of the alignment 64"));
}

// ---------------------------------------------------------------------------------------------
// Magic and version.

TEST(GgufHeaderRejectTest, BadMagic) {
  Image image = OneTensorImage();
  image.magic = 0x47475546;  // "FUGG"
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "not a GGUF file (bad magic)"));
  std::vector<uint8_t> safetensors = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(safetensors), "bad magic"));
  EXPECT_TRUE(Rejected(ParseError<FormatError>({}), "truncated GGUF header: magic"));
}

TEST(GgufHeaderRejectTest, Versions) {
  Image image = OneTensorImage();
  image.version = 1;
  EXPECT_TRUE(Rejected(ParseError<Unsupported>(image.Build()), "GGUF version 1"));
  image.version = 4;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "unknown GGUF version 4"));
  image.version = 0;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "unknown GGUF version 0"));
  image.version = 0xFFFFFFFFu;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "unknown GGUF version 4294967295"));
  // A big-endian file's version 3 or 2 read little-endian.
  image.version = 0x03000000u;
  EXPECT_TRUE(Rejected(ParseError<Unsupported>(image.Build()), "big-endian"));
  image.version = 0x02000000u;
  EXPECT_TRUE(Rejected(ParseError<Unsupported>(image.Build()), "big-endian"));
}

// ---------------------------------------------------------------------------------------------
// Truncation and counts.

TEST(GgufHeaderRejectTest, EveryPrefixOfAValidFileIsRejected) {
  const std::vector<uint8_t> bytes = RichImage().Build();
  ASSERT_NO_THROW(ParseGgufHeader(bytes, kFileName));
  for (size_t length = 0; length < bytes.size(); ++length) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
    try {
      ParseGgufHeader(prefix, kFileName);
      ADD_FAILURE() << "a prefix of " << length << " of " << bytes.size() << " bytes was accepted";
    } catch (const FormatError& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.find("truncated") != std::string::npos || message.find("exceed") != std::string::npos ||
                  message.find("past the end") != std::string::npos || message.find("outside") != std::string::npos)
          << "prefix " << length << ": " << message;
    }
  }
}

TEST(GgufHeaderRejectTest, HugeCounts) {
  Image image = OneTensorImage();
  image.tensor_count = kMaxGgufTensors + 1;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor count 1048577 is too large"));
  image.tensor_count = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor count 18446744073709551615 is too large"));
  image.tensor_count.reset();
  image.key_count = kMaxGgufKeys + 1;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "metadata count 1048577 is too large"));
  image.key_count = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "metadata count"));
  // Within the limits but more than the file could hold.
  image.key_count = 1000;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "counts exceed the file size"));
  image.key_count.reset();
  image.tensor_count = 100;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "counts exceed the file size"));
  // One more key than written: the next read runs into the tensor infos or data and fails.
  image.tensor_count.reset();
  image.key_count = 2;
  EXPECT_NO_FATAL_FAILURE(ParseError<FormatError>(image.Build()));
}

TEST(GgufHeaderRejectTest, StringsPastTheEnd) {
  Image image;
  image.trailing = std::string(64, '\0');  // enough bytes for the count check
  image.key_count = 1;
  image.raw_kvs = Le<uint64_t>(200) + "abc";  // a key of 200 bytes with 3 there
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "truncated GGUF header: key needs 200 bytes, 67 left"));
  image.raw_kvs = Le<uint64_t>(kMaxGgufNameBytes + 1) + "abc";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key of 257 bytes exceeds the limit of 256"));
  image.raw_kvs = Le<uint64_t>(std::numeric_limits<uint64_t>::max()) + "abc";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "exceeds the limit"));
  // String values may be as long as the rest of the file, not longer.
  image.raw_kvs = GgufString("k") + Le(TypeId(GgufValueType::kString)) + Le<uint64_t>(uint64_t{1} << 62) + "xyz";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()),
                       "string value of 4611686018427387904 bytes exceeds the limit"));
  image.raw_kvs = GgufString("k") + Le(TypeId(GgufValueType::kString)) + Le<uint64_t>(~uint64_t{0}) + "xyz";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "string value of 18446744073709551615 bytes exceeds"));
  image.raw_kvs = GgufString("k") + Le(TypeId(GgufValueType::kString)) + Le<uint64_t>(68) + "xyz";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "truncated GGUF header: string value needs 68 bytes, 67 left"));
  image.raw_kvs = GgufString("k") + Le(TypeId(GgufValueType::kString)) + Le<uint64_t>(67) + "xyz";
  EXPECT_NO_THROW(ParseGgufHeader(image.Build(), kFileName));
  // A string array whose second string runs past the end.
  image.raw_kvs = GgufString("k") + Le(TypeId(GgufValueType::kArray)) + Le(TypeId(GgufValueType::kString)) +
                  Le<uint64_t>(2) + GgufString("ok") + Le<uint64_t>(1000);
  image.trailing = std::string(8, 'x');
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "array string of 1000 bytes exceeds the limit"));
  // A tensor name past the end and one over the limit.
  Image tensor = OneTensorImage();
  tensor.tensors[0].name = std::string(kMaxGgufNameBytes + 1, 'n');
  EXPECT_TRUE(Rejected(ParseError<FormatError>(tensor.Build()), "tensor name of 257 bytes exceeds the limit of 256"));
  tensor.tensors[0].name = std::string(kMaxGgufNameBytes, 'n');
  EXPECT_NO_THROW(ParseGgufHeader(tensor.Build(), kFileName));
}

TEST(GgufHeaderRejectTest, ArrayCounts) {
  Image image;
  image.trailing = std::string(64, '\0');
  image.key_count = 1;
  auto array = [](GgufValueType element, uint64_t count) {
    return GgufString("big") + Le(TypeId(GgufValueType::kArray)) + Le(TypeId(element)) + Le(count);
  };
  image.raw_kvs = array(GgufValueType::kU64, uint64_t{1} << 61);  // 2^64 bytes
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"big\": array length overflows"));
  image.raw_kvs = array(GgufValueType::kU32, ~uint64_t{0});
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "array length overflows"));
  image.raw_kvs = array(GgufValueType::kF64, (uint64_t{1} << 61) + 1);
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "array length overflows"));
  image.raw_kvs = array(GgufValueType::kU8, uint64_t{1} << 40);
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "truncated GGUF header: array data needs 1099511627776"));
  image.raw_kvs = array(GgufValueType::kString, uint64_t{1} << 60);
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"big\": array length exceeds the file"));
  image.raw_kvs = array(GgufValueType::kString, 9);  // 9 lengths need 72 bytes, 64 there
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "array length exceeds the file"));
}

// ---------------------------------------------------------------------------------------------
// Values.

TEST(GgufHeaderRejectTest, NestedArraysAndUnknownTypes) {
  Image image = OneTensorImage();
  image.kvs.push_back(ArrayKv("nested", TypeId(GgufValueType::kArray), 1,
                              Le(TypeId(GgufValueType::kU8)) + Le<uint64_t>(1) + "x"));
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"nested\": nested arrays are not supported"));
  image.kvs.back() = Kv{"odd", 13, Le<uint32_t>(0)};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"odd\" has unknown value type 13"));
  image.kvs.back() = Kv{"odd", 0xFFFFFFFFu, Le<uint32_t>(0)};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "unknown value type 4294967295"));
  image.kvs.back() = ArrayKv("odd_array", 13, 1, Le<uint32_t>(0));
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"odd_array\" has unknown value type 13"));
}

TEST(GgufHeaderRejectTest, BoolValues) {
  Image image = OneTensorImage();
  image.kvs.push_back(Kv{"flag", TypeId(GgufValueType::kBool), std::string(1, '\x02')});
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"flag\" has bool value 2"));
  image.kvs.back() = Kv{"flag", TypeId(GgufValueType::kBool), std::string(1, '\xff')};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"flag\" has bool value 255"));
  image.kvs.back() = NumberArrayKv<uint8_t>("flags", GgufValueType::kBool, {1, 0, 2});
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "key \"flags\" has a bool array element 2"));
}

TEST(GgufHeaderRejectTest, DuplicateAndEmptyKeys) {
  Image image = OneTensorImage();
  image.kvs.push_back(U32Kv("x.y", 1));
  image.kvs.push_back(StrKv("x.y", "again"));
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "duplicate key \"x.y\""));
  image.kvs.pop_back();
  image.kvs.push_back(StrKv("general.architecture", "llama"));
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "duplicate key \"general.architecture\""));
  image.kvs.back() = U32Kv("", 1);
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "empty metadata key"));
}

TEST(GgufHeaderRejectTest, BadAlignment) {
  for (const Kv& kv : {U32Kv("general.alignment", 0), U32Kv("general.alignment", 3), U32Kv("general.alignment", 96),
                       U64Kv("general.alignment", 32), I32Kv("general.alignment", 32), U16Kv("general.alignment", 32),
                       StrKv("general.alignment", "32"), F32Kv("general.alignment", 32)}) {
    Image image = OneTensorImage();
    image.kvs.push_back(kv);
    EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "general.alignment must be a u32 power of two"))
        << "type " << kv.type;
  }
  // No tensors: still refused.
  Image header_only;
  header_only.kvs = {U32Kv("general.alignment", 0)};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(header_only.Build()), "general.alignment"));
}

// ---------------------------------------------------------------------------------------------
// Tensor infos.

TEST(GgufHeaderRejectTest, DuplicateAndEmptyTensorNames) {
  Image image = OneTensorImage();
  image.tensors.push_back({"b", {32}, kF32});
  image.tensors.push_back({"a", {8}, kF32});
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "duplicate tensor \"a\""));
  image.tensors.back().name = "";
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "empty tensor name"));
}

TEST(GgufHeaderRejectTest, Dimensions) {
  Image image = OneTensorImage();
  image.tensors[0].ne = {};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has 0 dimensions (1 to 4 allowed)"));
  image.tensors[0].ne = {32, 1, 1, 1, 1};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has 5 dimensions"));
  image.tensors[0].ne = {32, 0};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has dimension 0"));
  image.tensors[0].ne = {32, -3};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has dimension -3"));
  image.tensors[0].ne = {std::numeric_limits<int64_t>::min()};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "has dimension -9223372036854775808"));
  image.tensors[0].ne = {(int64_t{1} << 40) + 1};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "has dimension 1099511627777"));
  // Each dimension in range, the product not.
  image.tensors[0].ne = {int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has too many elements"));
  image.tensors[0].ne = {int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "too many elements"));
  image.tensors[0].ne = {int64_t{1} << 24, int64_t{1} << 24, 2};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "too many elements"));
  // 2^48 elements exactly pass the count check and fail the bounds check.
  image.tensors[0].ne = {int64_t{1} << 24, int64_t{1} << 24};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "lies outside"));
}

TEST(GgufHeaderRejectTest, TensorTypes) {
  Image image = OneTensorImage();
  for (uint32_t type : {4u, 5u, 31u, 1000u, 0xFFFFFFFFu}) {
    image.tensors[0].type = type;
    EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"a\" has unknown type " + std::to_string(type)));
  }
  image.tensors[0] = {"q", {33, 2}, kQ4_0};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()),
                       "tensor \"q\" of type Q4_0 has a row of 33 elements, not a multiple of its block size 32"));
  image.tensors[0] = {"k", {32, 8}, kQ4_K};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "of type Q4_K has a row of 32 elements, not a multiple of its block size 256"));
  // Types bora cannot compute with are still parsed (the refusal comes when decoding).
  image.tensors[0] = {"iq", {256}, 16};  // IQ2_XXS
  const std::vector<uint8_t> bytes = image.Build();
  EXPECT_EQ(ParseGgufHeader(bytes, kFileName).tensors[0].size, 66u);
}

TEST(GgufHeaderRejectTest, OffsetsAndBounds) {
  Image image = OneTensorImage();
  image.tensors.push_back({"b", {8}, kF32, 16});
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"b\" offset 16 is not a multiple of the alignment 32"));
  image.tensors.back().offset = 1;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "offset 1 is not a multiple"));
  // Out of bounds: past the data, and an offset whose end wraps around 2^64.
  image.tensors.back().offset = 1024;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()),
                       "tensor \"b\" data [1024, +32) lies outside the file's data section of 128 bytes"));
  image.tensors.back().offset = ~uint64_t{31};
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"b\" data [18446744073709551584, +32) lies outside"));
  // One byte short at the end (a truncated download).
  image.tensors.pop_back();
  image.data_extra = -1;
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "lies outside the file's data section of 127 bytes (truncated download?)"));
  // Cut before the data section even begins.
  Image cut = OneTensorImage();
  std::string arch = "llama";
  while (cut.Header().size() % 32 == 0) {
    arch += "x";
    cut.kvs.back().payload = GgufString(arch);
  }
  std::vector<uint8_t> bytes = cut.Build();
  bytes.resize(cut.Header().size());
  EXPECT_TRUE(Rejected(ParseError<FormatError>(bytes), "the data section starts past the end of the file"));
}

TEST(GgufHeaderRejectTest, OverlappingTensors) {
  Image image;
  image.tensors = {{"a", {32}, kF32}, {"b", {32}, kF32}, {"c", {8}, kF32, 64}};  // c lies inside a's 128 bytes
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensors \"a\" and \"c\" overlap"));
  image.tensors[2].offset = 128;  // the first byte of b
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "overlap"));
  image.tensors[2].offset = 0;  // same start as a
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "overlap"));
  image.tensors[2].offset = 224;  // the last 32 bytes of b = [128, 256)
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "overlap"));
  image.tensors[2] = {"c", {8}, kF32, 256};  // starts where b ends: outside the 256 data bytes
  EXPECT_TRUE(Rejected(ParseError<FormatError>(image.Build()), "tensor \"c\" data [256, +32) lies outside"));
  image.data_extra = 32;
  EXPECT_NO_THROW(ParseGgufHeader(image.Build(), kFileName));
  // A tensor listed first but stored last, reusing nobody's bytes: fine.
  Image reordered;
  reordered.data_extra = 32;
  reordered.tensors = {{"late", {8}, kF32, 128}, {"early", {32}, kF32}};
  EXPECT_NO_THROW(ParseGgufHeader(reordered.Build(), kFileName));
}

// ---------------------------------------------------------------------------------------------
// GgufModelParams: a small llama / mistral3 header built from key lists.

std::vector<Kv> ModelKvs(const std::string& arch) {
  const std::string p = arch + ".";
  return {StrKv("general.architecture", arch),
          U32Kv(p + "embedding_length", 64),
          U32Kv(p + "block_count", 2),
          U32Kv(p + "feed_forward_length", 128),
          U32Kv(p + "attention.head_count", 4),
          F32Kv(p + "attention.layer_norm_rms_epsilon", 1e-5f),
          U32Kv(p + "context_length", 2048)};
}

// `kvs` with `kv` replacing the pair of the same key, or appended.
std::vector<Kv> With(std::vector<Kv> kvs, const Kv& kv) {
  for (Kv& existing : kvs) {
    if (existing.key == kv.key) {
      existing = kv;
      return kvs;
    }
  }
  kvs.push_back(kv);
  return kvs;
}

std::vector<Kv> Without(std::vector<Kv> kvs, const std::string& key) {
  std::erase_if(kvs, [&](const Kv& kv) { return kv.key == key; });
  return kvs;
}

struct ModelTensors {
  bool embedding = true;
  bool output = true;
};

std::vector<uint8_t> ModelImage(const std::vector<Kv>& kvs, ModelTensors tensors = {}) {
  Image image;
  image.kvs = kvs;
  if (tensors.embedding) image.tensors.push_back({"token_embd.weight", {64, 100}, kQ8_0});
  image.tensors.push_back({"output_norm.weight", {64}, kF32});
  if (tensors.output) image.tensors.push_back({"output.weight", {64, 100}, kQ8_0});
  return image.Build();
}

ModelParams ParamsOf(const std::vector<Kv>& kvs, ModelTensors tensors = {}) {
  const std::vector<uint8_t> bytes = ModelImage(kvs, tensors);
  const GgufHeader header = ParseGgufHeader(bytes, kFileName);
  return GgufModelParams(header);
}

// The message of the `E` that GgufModelParams throws for `kvs`.
template <typename E>
std::string ParamsError(const std::vector<Kv>& kvs, ModelTensors tensors = {}) {
  const std::vector<uint8_t> bytes = ModelImage(kvs, tensors);
  const GgufHeader header = ParseGgufHeader(bytes, kFileName);
  try {
    GgufModelParams(header);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "GgufModelParams accepted the header";
  return "";
}

// transformers' get_mscale, written out here.
double Mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

TEST(GgufModelParamsTest, RequiredKeysAndDefaults) {
  for (const std::string arch : {"llama", "mistral3"}) {
    SCOPED_TRACE(arch);
    const ModelParams params = ParamsOf(ModelKvs(arch));
    EXPECT_EQ(params.dim, 64);
    EXPECT_EQ(params.n_layers, 2);
    EXPECT_EQ(params.hidden_dim, 128);
    EXPECT_EQ(params.n_heads, 4);
    EXPECT_EQ(params.n_kv_heads, 4);  // head_count_kv defaults to head_count
    EXPECT_EQ(params.head_dim, 16);   // embedding_length / head_count
    EXPECT_EQ(params.rope_theta, 10000.0);  // llama.cpp's default freq_base
    EXPECT_EQ(params.norm_eps, static_cast<double>(1e-5f));
    EXPECT_EQ(params.vocab_size, 100);  // from token_embd.weight
    EXPECT_EQ(params.max_positions, 2048);
    EXPECT_EQ(params.layer_windows, (std::vector<int64_t>{0, 0}));
    EXPECT_FALSE(params.tie_embeddings);
    EXPECT_FALSE(params.moe.has_value());
    EXPECT_FALSE(params.yarn.has_value());
    EXPECT_FALSE(params.llama4_scaling.has_value());
  }
  // No context_length: no stated maximum.
  EXPECT_FALSE(ParamsOf(Without(ModelKvs("llama"), "llama.context_length")).max_positions.has_value());
}

TEST(GgufModelParamsTest, ExplicitValues) {
  std::vector<Kv> kvs = ModelKvs("llama");
  kvs.push_back(U32Kv("llama.attention.head_count_kv", 2));
  kvs.push_back(U32Kv("llama.attention.key_length", 32));
  kvs.push_back(U32Kv("llama.attention.value_length", 32));
  kvs.push_back(U32Kv("llama.rope.dimension_count", 32));
  kvs.push_back(F32Kv("llama.rope.freq_base", 1e6f));
  kvs.push_back(U32Kv("llama.vocab_size", 100));
  kvs.push_back(U32Kv("llama.attention.sliding_window", 4096));
  const ModelParams params = ParamsOf(kvs);
  EXPECT_EQ(params.n_kv_heads, 2);
  EXPECT_EQ(params.head_dim, 32);  // key_length wins over dim / heads
  EXPECT_EQ(params.rope_theta, 1e6);
  EXPECT_EQ(params.vocab_size, 100);
  EXPECT_EQ(params.layer_windows, (std::vector<int64_t>{4096, 4096}));
  // Integer types other than u32 are read too.
  EXPECT_EQ(ParamsOf(With(kvs, U64Kv("llama.embedding_length", 64))).dim, 64);
  EXPECT_EQ(ParamsOf(With(kvs, I32Kv("llama.block_count", 2))).n_layers, 2);
  // value_length and rope.dimension_count must equal the head size.
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(kvs, U32Kv("llama.attention.value_length", 16))),
                       "attention.value_length differs from attention.key_length"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(kvs, U32Kv("llama.rope.dimension_count", 16))),
                       "rope.dimension_count 16 is not the head size 32 (partial rotary embeddings)"));
  // vocab_size wins over the embedding table; with neither, the tokenizer's token list counts.
  EXPECT_EQ(ParamsOf(With(kvs, U32Kv("llama.vocab_size", 90))).vocab_size, 90);
  std::vector<std::string> tokens(50, "t");
  const std::vector<Kv> tokenizer = With(Without(kvs, "llama.vocab_size"), StringArrayKv("tokenizer.ggml.tokens", tokens));
  EXPECT_EQ(ParamsOf(tokenizer, {.embedding = false}).vocab_size, 50);
  EXPECT_EQ(ParamsOf(tokenizer).vocab_size, 100);
}

TEST(GgufModelParamsTest, MissingRequiredKeys) {
  for (const char* key : {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                          "llama.attention.head_count", "llama.attention.layer_norm_rms_epsilon"}) {
    EXPECT_TRUE(Mentions(ParamsError<FormatError>(Without(ModelKvs("llama"), key)),
                         std::string("required key \"") + key + "\" is missing"));
  }
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(Without(ModelKvs("llama"), "general.architecture")),
                       "general.architecture is missing"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(ModelKvs("llama"), U32Kv("general.architecture", 1))),
                       "\"general.architecture\" is a u32, expected a string"));
  // Present but out of range or of the wrong type.
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(ModelKvs("llama"), U32Kv("llama.block_count", 0))),
                       "\"llama.block_count\" = 0 is out of range"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(ModelKvs("llama"), I32Kv("llama.block_count", -2))),
                       "\"llama.block_count\" is negative"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(ModelKvs("llama"), F32Kv("llama.embedding_length", 64))),
                       "expected an integer"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(ModelKvs("llama"), F32Kv("llama.attention.layer_norm_rms_epsilon", 0))),
                       "norm_eps must be finite and > 0"));
  // head_dim: not derivable, then derived from key_length.
  const std::vector<Kv> uneven = With(ModelKvs("llama"), U32Kv("llama.attention.head_count", 3));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(uneven), "attention.key_length is missing"));
  EXPECT_EQ(ParamsOf(With(uneven, U32Kv("llama.attention.key_length", 16))).head_dim, 16);
}

TEST(GgufModelParamsTest, PerLayerArrays) {
  std::vector<Kv> kvs = ModelKvs("llama");
  kvs = With(kvs, NumberArrayKv<uint32_t>("llama.attention.head_count", GgufValueType::kU32, {4, 4}));
  kvs = With(kvs, NumberArrayKv<int32_t>("llama.attention.head_count_kv", GgufValueType::kI32, {2, 2}));
  kvs = With(kvs, NumberArrayKv<uint32_t>("llama.feed_forward_length", GgufValueType::kU32, {128, 128}));
  const ModelParams params = ParamsOf(kvs);
  EXPECT_EQ(params.n_heads, 4);
  EXPECT_EQ(params.n_kv_heads, 2);
  EXPECT_EQ(params.hidden_dim, 128);

  EXPECT_TRUE(Mentions(
      ParamsError<Unsupported>(With(kvs, NumberArrayKv<uint32_t>("llama.feed_forward_length", GgufValueType::kU32, {128, 256}))),
      "\"llama.feed_forward_length\" differs between layers"));
  EXPECT_TRUE(Mentions(
      ParamsError<Unsupported>(With(kvs, NumberArrayKv<int32_t>("llama.attention.head_count_kv", GgufValueType::kI32, {2, 1}))),
      "\"llama.attention.head_count_kv\" differs between layers"));
  EXPECT_TRUE(Mentions(
      ParamsError<FormatError>(With(kvs, NumberArrayKv<uint32_t>("llama.attention.head_count", GgufValueType::kU32, {}))),
      "\"llama.attention.head_count\" is an empty array"));
  EXPECT_TRUE(Mentions(
      ParamsError<FormatError>(With(kvs, NumberArrayKv<int32_t>("llama.attention.head_count", GgufValueType::kI32, {0, 0}))),
      "\"llama.attention.head_count\" is out of range"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(kvs, StringArrayKv("llama.attention.head_count", {"4", "4"}))),
                       "not an array of numbers"));
}

TEST(GgufModelParamsTest, UnknownKeysAreRefusedByName) {
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("llama.foo", 1))),
                       "unknown GGUF key \"llama.foo\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("mistral3"), BoolKv("mistral3.attention.foo", true))),
                       "unknown GGUF key \"mistral3.attention.foo\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("foo.bar", 1))),
                       "unknown GGUF key \"foo.bar\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("mistral3.block_count", 2))),
                       "unknown GGUF key \"mistral3.block_count\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("adapter.lora.alpha", 2))),
                       "\"adapter.lora.alpha\""));
  // Keys of other model families are named with the family.
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("mistral3"), U32Kv("mistral3.attention.kv_lora_rank", 512))),
                       "\"mistral3.attention.kv_lora_rank\" is multi-head latent attention"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("llama.expert_shared_count", 1))),
                       "shared experts"));

  // Descriptions, tokenizer and quantizer notes, and a 1-file "split" are harmless.
  std::vector<Kv> kvs = ModelKvs("llama");
  kvs.push_back(StrKv("general.name", "tiny"));
  kvs.push_back(StrKv("general.type", "model"));
  kvs.push_back(U32Kv("general.file_type", 15));
  kvs.push_back(U32Kv("general.quantization_version", 2));
  kvs.push_back(StrKv("general.some_future_field", "x"));
  kvs.push_back(StrKv("tokenizer.ggml.model", "llama"));
  kvs.push_back(StringArrayKv("tokenizer.ggml.tokens", {"<unk>", "<s>"}));
  kvs.push_back(U32Kv("tokenizer.ggml.bos_token_id", 1));
  kvs.push_back(StrKv("quantize.imatrix.file", "imatrix.dat"));
  kvs.push_back(I32Kv("quantize.imatrix.entries_count", 7));
  kvs.push_back(U16Kv("split.no", 0));
  kvs.push_back(U16Kv("split.count", 1));
  kvs.push_back(I32Kv("split.tensors.count", 3));
  EXPECT_EQ(ParamsOf(kvs).dim, 64);
}

TEST(GgufModelParamsTest, RefusedFilesAndArchitectures) {
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), StrKv("general.architecture", "gemma3"))),
                       "GGUF architecture \"gemma3\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), StrKv("general.architecture", "deepseek2"))),
                       "latent attention"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), StrKv("general.architecture", "clip"))),
                       "vision projector"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U16Kv("split.count", 2))),
                       "part of a 2-file split GGUF"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), StrKv("general.type", "adapter"))),
                       "general.type is \"adapter\""));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), U32Kv("general.quantization_version", 1))),
                       "general.quantization_version 1"));
}

TEST(GgufModelParamsTest, YarnScaling) {
  for (const std::string arch : {"llama", "mistral3"}) {
    SCOPED_TRACE(arch);
    const std::string p = arch + ".";
    std::vector<Kv> kvs = ModelKvs(arch);
    kvs.push_back(StrKv(p + "rope.scaling.type", "yarn"));
    kvs.push_back(F32Kv(p + "rope.scaling.factor", 16.0f));
    kvs.push_back(U32Kv(p + "rope.scaling.original_context_length", 1024));
    const ModelParams defaults = ParamsOf(kvs);
    ASSERT_TRUE(defaults.yarn.has_value());
    EXPECT_EQ(defaults.yarn->factor, 16.0);
    EXPECT_EQ(defaults.yarn->original_max_positions, 1024);
    EXPECT_EQ(defaults.yarn->beta_fast, 32.0);
    EXPECT_EQ(defaults.yarn->beta_slow, 1.0);
    EXPECT_DOUBLE_EQ(defaults.yarn->attention_factor, 0.1 * std::log(16.0) + 1.0);  // no log multiplier

    kvs.push_back(F32Kv(p + "rope.scaling.yarn_beta_fast", 16.0f));
    kvs.push_back(F32Kv(p + "rope.scaling.yarn_beta_slow", 2.0f));
    const ModelParams betas = ParamsOf(kvs);
    EXPECT_EQ(betas.yarn->beta_fast, 16.0);
    EXPECT_EQ(betas.yarn->beta_slow, 2.0);
    // An explicit attention factor wins.
    EXPECT_EQ(ParamsOf(With(kvs, F32Kv(p + "rope.scaling.attn_factor", 1.25f))).yarn->attention_factor, 1.25);

    EXPECT_TRUE(Mentions(ParamsError<FormatError>(Without(kvs, p + "rope.scaling.original_context_length")),
                         "required key \"" + p + "rope.scaling.original_context_length\" is missing"));
    EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(kvs, F32Kv(p + "rope.scaling.factor", 0.5f))),
                         "rope.scaling.factor must be at least 1 for YaRN"));
    EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(kvs, F32Kv(p + "rope.scaling.yarn_beta_fast", -1))),
                         "beta_fast/beta_slow"));
  }

  // yarn_log_multiplier (mscale_all_dim): mistral3 only.
  std::vector<Kv> kvs = ModelKvs("mistral3");
  kvs.push_back(StrKv("mistral3.rope.scaling.type", "yarn"));
  kvs.push_back(F32Kv("mistral3.rope.scaling.factor", 16.0f));
  kvs.push_back(U32Kv("mistral3.rope.scaling.original_context_length", 16384));
  const ModelParams one = ParamsOf(With(kvs, F32Kv("mistral3.rope.scaling.yarn_log_multiplier", 1.0f)));
  EXPECT_DOUBLE_EQ(one.yarn->attention_factor, 1.0);  // Ministral 3: mscale == mscale_all_dim
  const ModelParams half = ParamsOf(With(kvs, F32Kv("mistral3.rope.scaling.yarn_log_multiplier", 0.5f)));
  EXPECT_DOUBLE_EQ(half.yarn->attention_factor, Mscale(16, 1) / Mscale(16, 0.5));
  EXPECT_EQ(half.yarn->original_max_positions, 16384);
  // A zero multiplier counts as absent.
  const ModelParams zero = ParamsOf(With(kvs, F32Kv("mistral3.rope.scaling.yarn_log_multiplier", 0.0f)));
  EXPECT_DOUBLE_EQ(zero.yarn->attention_factor, Mscale(16, 1));
  // Factor 1: every mscale is 1.
  const ModelParams unit = ParamsOf(With(With(kvs, F32Kv("mistral3.rope.scaling.factor", 1.0f)),
                                         F32Kv("mistral3.rope.scaling.yarn_log_multiplier", 0.5f)));
  EXPECT_DOUBLE_EQ(unit.yarn->attention_factor, 1.0);

  std::vector<Kv> llama = ModelKvs("llama");
  llama.push_back(StrKv("llama.rope.scaling.type", "yarn"));
  llama.push_back(F32Kv("llama.rope.scaling.factor", 4.0f));
  llama.push_back(U32Kv("llama.rope.scaling.original_context_length", 1024));
  llama.push_back(F32Kv("llama.rope.scaling.yarn_log_multiplier", 0.1f));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(llama), "yarn_log_multiplier on architecture \"llama\""));
}

TEST(GgufModelParamsTest, OtherRopeScaling) {
  std::vector<Kv> kvs = ModelKvs("llama");
  EXPECT_FALSE(ParamsOf(With(kvs, StrKv("llama.rope.scaling.type", "none"))).yarn.has_value());
  EXPECT_FALSE(ParamsOf(With(With(kvs, StrKv("llama.rope.scaling.type", "linear")), F32Kv("llama.rope.scaling.factor", 1)))
                   .yarn.has_value());
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(With(kvs, StrKv("llama.rope.scaling.type", "linear")),
                                                     F32Kv("llama.rope.scaling.factor", 2))),
                       "linear position interpolation"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(kvs, F32Kv("llama.rope.scaling.factor", 8))),
                       "rope.scaling.type \"none\" with factor"));
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(kvs, StrKv("llama.rope.scaling.type", "longrope"))),
                       "rope.scaling.type \"longrope\" is not supported"));
}

TEST(GgufModelParamsTest, AttentionTemperature) {
  std::vector<Kv> kvs = ModelKvs("mistral3");
  kvs.push_back(StrKv("mistral3.rope.scaling.type", "yarn"));
  kvs.push_back(F32Kv("mistral3.rope.scaling.factor", 16.0f));
  kvs.push_back(U32Kv("mistral3.rope.scaling.original_context_length", 16384));
  kvs.push_back(F32Kv("mistral3.rope.scaling.yarn_log_multiplier", 1.0f));
  kvs.push_back(F32Kv("mistral3.attention.temperature_scale", 0.1f));
  const ModelParams params = ParamsOf(kvs);
  ASSERT_TRUE(params.llama4_scaling.has_value());
  EXPECT_EQ(params.llama4_scaling->beta, static_cast<double>(0.1f));
  EXPECT_EQ(params.llama4_scaling->original_max_positions, 16384);  // the YaRN original context
  const ModelParams length = ParamsOf(With(kvs, U32Kv("mistral3.attention.temperature_length", 8192)));
  EXPECT_EQ(length.llama4_scaling->original_max_positions, 8192);
  // Zero scale: no temperature.
  EXPECT_FALSE(ParamsOf(With(kvs, F32Kv("mistral3.attention.temperature_scale", 0))).llama4_scaling.has_value());

  // Without YaRN a length is needed.
  std::vector<Kv> plain = With(ModelKvs("mistral3"), F32Kv("mistral3.attention.temperature_scale", 0.1f));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(plain), "attention.temperature_scale needs rope.scaling.original_context_length"));
  EXPECT_EQ(ParamsOf(With(plain, U32Kv("mistral3.attention.temperature_length", 4096))).llama4_scaling->original_max_positions,
            4096);
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(With(plain, U32Kv("mistral3.attention.temperature_length", 4096)),
                                                     F32Kv("mistral3.attention.temperature_scale", -1))),
                       "llama_4_scaling beta"));
  // Not a llama feature.
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(ModelKvs("llama"), F32Kv("llama.attention.temperature_scale", 0.1f))),
                       "attention.temperature_scale on architecture \"llama\""));
}

TEST(GgufModelParamsTest, TiedEmbeddingsWithoutOutputTensor) {
  EXPECT_FALSE(ParamsOf(ModelKvs("llama")).tie_embeddings);
  EXPECT_TRUE(ParamsOf(ModelKvs("llama"), {.output = false}).tie_embeddings);
  EXPECT_TRUE(ParamsOf(ModelKvs("mistral3"), {.output = false}).tie_embeddings);
}

TEST(GgufModelParamsTest, MixtureOfExperts) {
  std::vector<Kv> kvs = ModelKvs("llama");
  kvs.push_back(U32Kv("llama.expert_count", 8));
  kvs.push_back(U32Kv("llama.expert_used_count", 2));
  const ModelParams params = ParamsOf(kvs);
  ASSERT_TRUE(params.moe.has_value());
  EXPECT_EQ(params.moe->num_experts, 8);
  EXPECT_EQ(params.moe->num_experts_per_tok, 2);
  EXPECT_EQ(params.hidden_dim, 128);  // per expert

  EXPECT_EQ(ParamsOf(With(kvs, U32Kv("llama.expert_gating_func", 1))).moe->num_experts, 8);  // softmax
  EXPECT_TRUE(Mentions(ParamsError<Unsupported>(With(kvs, U32Kv("llama.expert_gating_func", 2))), "expert_gating_func 2"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(Without(kvs, "llama.expert_used_count")),
                       "required key \"llama.expert_used_count\" is missing"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(With(kvs, U32Kv("llama.expert_used_count", 9))),
                       "\"llama.expert_used_count\" = 9 is out of range"));
  EXPECT_TRUE(Mentions(ParamsError<FormatError>(Without(kvs, "llama.expert_count")), "expert_used_count without expert_count"));
  // expert_count 0 (llama.cpp writes it for dense models): dense.
  const ModelParams dense = ParamsOf(With(With(kvs, U32Kv("llama.expert_count", 0)), U32Kv("llama.expert_used_count", 0)));
  EXPECT_FALSE(dense.moe.has_value());
}

// ---------------------------------------------------------------------------------------------
// Tensor names and decoded sizes.

TEST(GgufNamesTest, EveryReadmeTensorName) {
  struct Case {
    const char* gguf;
    const char* native;
    bool slabs;
  };
  const Case kCases[] = {
      {"token_embd.weight", "tok_embeddings.weight", false},
      {"output.weight", "output.weight", false},
      {"output_norm.weight", "norm.weight", false},
      {"blk.0.attn_norm.weight", "layers.0.attention_norm.weight", false},
      {"blk.3.attn_q.weight", "layers.3.attention.wq.weight", false},
      {"blk.3.attn_k.weight", "layers.3.attention.wk.weight", false},
      {"blk.3.attn_v.weight", "layers.3.attention.wv.weight", false},
      {"blk.12.attn_output.weight", "layers.12.attention.wo.weight", false},
      {"blk.1.ffn_norm.weight", "layers.1.ffn_norm.weight", false},
      {"blk.1.ffn_gate.weight", "layers.1.feed_forward.w1.weight", false},
      {"blk.1.ffn_down.weight", "layers.1.feed_forward.w2.weight", false},
      {"blk.1.ffn_up.weight", "layers.1.feed_forward.w3.weight", false},
      {"blk.0.ffn_gate_inp.weight", "layers.0.feed_forward.gate.weight", false},
      {"blk.0.ffn_gate_exps.weight", "layers.0.feed_forward.experts.{e}.w1.weight", true},
      {"blk.0.ffn_down_exps.weight", "layers.0.feed_forward.experts.{e}.w2.weight", true},
      {"blk.7.ffn_up_exps.weight", "layers.7.feed_forward.experts.{e}.w3.weight", true},
      // Old Mixtral conversions: one tensor per expert.
      {"blk.2.ffn_gate.5.weight", "layers.2.feed_forward.experts.5.w1.weight", false},
      {"blk.2.ffn_down.0.weight", "layers.2.feed_forward.experts.0.w2.weight", false},
      {"blk.2.ffn_up.7.weight", "layers.2.feed_forward.experts.7.w3.weight", false},
      {"blk.123456.attn_q.weight", "layers.123456.attention.wq.weight", false},
  };
  for (const Case& c : kCases) {
    const GgufNativeName name = GgufToNativeName(c.gguf, kFileName);
    EXPECT_EQ(name.native, c.native) << c.gguf;
    EXPECT_EQ(name.expert_slabs, c.slabs) << c.gguf;
  }
}

TEST(GgufNamesTest, UnknownNamesAreRefused) {
  for (const char* name :
       {"blk.0.attn_q.bias", "blk.0.attn_qkv.weight", "blk.0.attn_norm_2.weight", "foo.weight", "token_embd",
        "blk.0.ffn_gate_exps.1.weight", "blk.0.attn_q.0.weight", "blk.0.ffn_gate_inp.3.weight", "blk.x.attn_q.weight",
        "blk.1234567.attn_q.weight", "blk..attn_q.weight", "output.bias", "blk.0.attn_q.weight.extra", "",
        "layers.0.attention.wq.weight", "v.blk.0.attn_q.weight", "blk.0.post_attention_norm.weight"}) {
    try {
      GgufToNativeName(name, kFileName);
      ADD_FAILURE() << "accepted \"" << name << "\"";
    } catch (const FormatError& e) {
      EXPECT_TRUE(Rejected(e.what(), "unexpected tensor \"" + std::string(name) + "\""));
    }
  }
  try {
    GgufToNativeName("rope_freqs.weight", kFileName);
    ADD_FAILURE() << "accepted rope_freqs.weight";
  } catch (const Unsupported& e) {
    EXPECT_TRUE(Rejected(e.what(), "rope_freqs.weight"));
  }
}

TEST(GgufNamesTest, DecodedBytes) {
  Image image;
  image.tensors = {{"f32", {32, 2}, kF32},      // 256 bytes whatever the decoding
                   {"bf16", {32}, kBF16},       // 64
                   {"q4_0", {64, 2}, kQ4_0},    // 72 in the file, 512 as f32
                   {"q8_0", {32, 2}, kQ8_0},    // 68 in the file, 256 as f32
                   {"q4_k", {256, 2}, kQ4_K}};  // 288 in the file, 2048 as f32, 16 q8 blocks of 34
  const std::vector<uint8_t> bytes = image.Build();
  const GgufHeader header = ParseGgufHeader(bytes, kFileName);
  EXPECT_EQ(GgufDecodedBytes(header, /*exact=*/true), 256u + 64 + 512 + 256 + 2048);
  EXPECT_EQ(GgufDecodedBytes(header, /*exact=*/false), 256u + 64 + 72 + 68 + 16 * 34);
}

}  // namespace
}  // namespace bora::formats
