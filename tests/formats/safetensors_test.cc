// Tests the safetensors reader's validation (rule L7), its typed views, and the writer round trip.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/safetensors_writer.h"
#include "testdata.h"

namespace bora::formats {
namespace {

constexpr char kFileName[] = "bad-input.safetensors";

// A file image: 8-byte little-endian `length`, then `header`, then `data_bytes` bytes (0, 1, 2...).
std::vector<uint8_t> FileWithLength(uint64_t length, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(length >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<uint8_t>(i * 7 + 1));
  return bytes;
}

// A file image whose length prefix matches `header`.
std::vector<uint8_t> File(const std::string& header, size_t data_bytes) {
  return FileWithLength(header.size(), header, data_bytes);
}

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A header with several dtypes, a rank-0 scalar, metadata, and empty tensors that share the
// offsets of non-empty ones (allowed: zero-length ranges may touch). 40 data bytes.
const char kValidHeader[] = R"({"__metadata__":{"format":"pt","note":"unit test"},)"
                            R"("b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},)"
                            R"("a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},)"
                            R"("z0":{"dtype":"F16","shape":[0],"data_offsets":[0,0]},)"
                            R"("z8":{"dtype":"F32","shape":[3,0,2],"data_offsets":[8,8]},)"
                            R"("scalar":{"dtype":"I64","shape":[],"data_offsets":[32,40]},)"
                            R"("cube":{"dtype":"U8","shape":[0,1,1],"data_offsets":[40,40]}}    )";
constexpr size_t kValidDataBytes = 40;

const TensorInfo* FindInfo(const SafetensorsHeader& header, const std::string& name) {
  for (const TensorInfo& info : header.tensors) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

TEST(SafetensorsHeaderTest, ParsesNamesDtypesShapesOffsetsAndMetadata) {
  std::vector<uint8_t> bytes = File(kValidHeader, kValidDataBytes);
  SafetensorsHeader header = ParseSafetensorsHeader(bytes, "ok.safetensors");

  EXPECT_EQ(header.data_start, 8 + std::strlen(kValidHeader));
  EXPECT_EQ(header.data_size, kValidDataBytes);
  EXPECT_EQ(header.metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", "unit test"}}));
  ASSERT_EQ(header.tensors.size(), 6u);  // __metadata__ is not a tensor

  // Sorted by data offset, ties by end: empty ranges come before the tensor starting there.
  std::vector<std::string> order;
  for (const TensorInfo& info : header.tensors) order.push_back(info.name);
  EXPECT_EQ(order, (std::vector<std::string>{"z0", "a", "z8", "b", "scalar", "cube"}));

  const TensorInfo* a = FindInfo(header, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype_name, "BF16");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(a->begin, 0u);
  EXPECT_EQ(a->end, 8u);

  const TensorInfo* b = FindInfo(header, "b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype_name, "F32");
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->begin, 8u);
  EXPECT_EQ(b->end, 32u);

  const TensorInfo* scalar = FindInfo(header, "scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_EQ(scalar->dtype_name, "I64");
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->begin, 32u);
  EXPECT_EQ(scalar->end, 40u);

  const TensorInfo* z8 = FindInfo(header, "z8");
  ASSERT_NE(z8, nullptr);
  EXPECT_EQ(z8->shape, (std::vector<int64_t>{3, 0, 2}));
  EXPECT_EQ(z8->begin, 8u);
  EXPECT_EQ(z8->end, 8u);

  const TensorInfo* cube = FindInfo(header, "cube");
  ASSERT_NE(cube, nullptr);
  EXPECT_EQ(cube->begin, 40u);  // an empty tensor may sit exactly at the end of the buffer
  EXPECT_EQ(cube->end, 40u);
}

TEST(SafetensorsHeaderTest, AcceptsEmptyHeaderAndNoData) {
  std::vector<uint8_t> bytes = File("{}", 0);
  SafetensorsHeader header = ParseSafetensorsHeader(bytes, "empty.safetensors");
  EXPECT_TRUE(header.tensors.empty());
  EXPECT_TRUE(header.metadata.empty());
  EXPECT_EQ(header.data_start, 10u);
  EXPECT_EQ(header.data_size, 0u);
}

TEST(SafetensorsHeaderTest, AcceptsUnknownEntryKeysNestedExactlyFourDeep) {
  // Objects at depths 1..4 (root, entry, "extra", "x"): the deepest allowed nesting.
  std::string header =
      R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":{"y":1}}}})";
  std::vector<uint8_t> bytes = File(header, 4);
  SafetensorsHeader parsed = ParseSafetensorsHeader(bytes, "deep.safetensors");
  ASSERT_EQ(parsed.tensors.size(), 1u);
  EXPECT_EQ(parsed.tensors[0].name, "t");
}

TEST(SafetensorsHeaderTest, AcceptsLongNamesAndAllKnownDtypes) {
  std::string long_name(1 << 20, 'n');
  std::string header =
      R"({")" + long_name + R"(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  std::vector<uint8_t> bytes = File(header, 1);
  SafetensorsHeader parsed = ParseSafetensorsHeader(bytes, "long.safetensors");
  ASSERT_EQ(parsed.tensors.size(), 1u);
  EXPECT_EQ(parsed.tensors[0].name, long_name);

  const std::pair<const char*, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (const auto& [name, size] : kSizes) {
    EXPECT_EQ(SafetensorsDTypeSize(name), size) << name;
    std::string one = std::string(R"({"t":{"dtype":")") + name +
                      R"(","shape":[3],"data_offsets":[0,)" + std::to_string(3 * size) + "]}}";
    std::vector<uint8_t> file = File(one, 3 * size);
    EXPECT_NO_THROW(ParseSafetensorsHeader(file, "dtype.safetensors")) << name;
  }
  EXPECT_EQ(SafetensorsDTypeSize("F33"), 0u);
  EXPECT_EQ(SafetensorsDTypeSize("f32"), 0u);
  EXPECT_EQ(SafetensorsDTypeSize(""), 0u);
}

// One malformed file image and a fragment its error message must contain.
struct MalformedCase {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* problem;
};

// Makes a failing case print its name rather than its bytes.
void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

std::string Entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + R"(":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" +
         offsets + "}";
}

std::vector<MalformedCase> MalformedCases() {
  const std::string ok = Entry("t", "F32", "[2]", "[0,8]");
  std::string deep_array =
      R"({"__metadata__":{"k":)" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  return {
      {"EmptyFile", {}, "shorter than the 8-byte"},
      {"SevenBytes", {2, 0, 0, 0, 0, 0, 0}, "shorter than the 8-byte"},
      {"HeaderLengthZero", FileWithLength(0, "", 0), "does not start with '{'"},
      {"HeaderLengthAbove100MB", FileWithLength(100'000'001, "{}", 0), "exceeds 100 MB"},
      {"HeaderLengthMaxU64", FileWithLength(UINT64_MAX, "{}", 0), "exceeds 100 MB"},
      {"HeaderLengthPastEof", FileWithLength(100, "{" + ok + "}", 0), "runs past the end"},
      {"HeaderLengthOnePastEof", FileWithLength(3, "{}", 0), "runs past the end"},
      {"LeadingSpace", File(" {" + ok + "}", 8), "does not start with '{'"},
      {"TopLevelArray", File("[{" + ok + "}]", 8), "does not start with '{'"},
      {"InvalidJson", File(R"({"t":})", 0), "not valid JSON"},
      {"TruncatedJson", File(R"({"t":{"dtype":"F32","shape":[2])", 8), "not valid JSON"},
      {"TrailingGarbageAfterObject", File("{" + ok + "} x", 8), "not valid JSON"},
      {"InvalidUtf8InName", File("{" + Entry("t\xff\xfe", "F32", "[2]", "[0,8]") + "}", 8),
       "not valid JSON"},
      {"OverlongUtf8InName", File("{" + Entry("t\xc0\xaf", "F32", "[2]", "[0,8]") + "}", 8),
       "not valid JSON"},
      {"DuplicateTensorNames",
       File("{" + Entry("t", "F32", "[1]", "[0,4]") + "," + Entry("t", "F32", "[1]", "[4,8]") + "}",
            8),
       "duplicate key \"t\""},
      {"DuplicateKeyInsideEntry",
       File(R"({"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8),
       "duplicate key \"dtype\""},
      {"DuplicateMetadataKey", File(R"({"__metadata__":{"k":"a","k":"b"},)" + ok + "}", 8),
       "duplicate key \"k\""},
      {"NestingFiveDeep",
       File(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":{"x":{"y":{"z":1}}}}})",
            8),
       "nested deeper than 4"},
      {"NestingHundredThousandDeep", File(deep_array, 0), "nested deeper than 4"},
      {"UnknownDtype", File("{" + Entry("t", "F33", "[2]", "[0,8]") + "}", 8),
       "unknown dtype \"F33\""},
      {"LowercaseDtype", File("{" + Entry("t", "f32", "[2]", "[0,8]") + "}", 8), "unknown dtype"},
      {"DtypeNotString", File(R"({"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
       "missing string \"dtype\""},
      {"NegativeShapeEntry", File("{" + Entry("t", "F32", "[-1]", "[0,4]") + "}", 4),
       "non-negative integers"},
      {"FloatShapeEntry", File("{" + Entry("t", "F32", "[1.5]", "[0,4]") + "}", 4),
       "non-negative integers"},
      {"IntegralFloatShapeEntry", File("{" + Entry("t", "F32", "[2.0]", "[0,8]") + "}", 8),
       "non-negative integers"},
      {"StringShapeEntry", File("{" + Entry("t", "F32", "[\"2\"]", "[0,8]") + "}", 8),
       "non-negative integers"},
      {"ShapeEntryTwoTo63", File("{" + Entry("t", "U8", "[9223372036854775808]", "[0,8]") + "}", 8),
       "overflows"},
      {"ShapeProductOverflow",
       File("{" + Entry("t", "F32", "[1099511627776,1099511627776]", "[0,4]") + "}", 4),
       "shape product overflows"},
      {"ShapeProductWrapsToFour",  // 2^32 * 2^32 + ... would wrap to a small size without checks
       File("{" + Entry("t", "U8", "[4294967296,4294967296,4]", "[0,4]") + "}", 4),
       "shape product overflows"},
      {"ByteSizeOverflow", File("{" + Entry("t", "F32", "[4611686018427387904]", "[0,0]") + "}", 0),
       "byte size overflows"},
      {"RankAboveEight", File("{" + Entry("t", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") + "}", 1),
       "rank above 8"},
      {"ShapeNotArray", File(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
       "missing array \"shape\""},
      {"DataOffsetsOneEntry", File("{" + Entry("t", "F32", "[2]", "[8]") + "}", 8),
       "must be [begin, end]"},
      {"DataOffsetsThreeEntries", File("{" + Entry("t", "F32", "[2]", "[0,8,8]") + "}", 8),
       "must be [begin, end]"},
      {"DataOffsetsNotArray", File(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":8}})", 8),
       "must be [begin, end]"},
      {"EndBeforeBegin", File("{" + Entry("t", "F32", "[1]", "[8,4]") + "}", 8), "end < begin"},
      {"NegativeBegin", File("{" + Entry("t", "F32", "[1]", "[-4,0]") + "}", 0),
       "data_offsets must be non-negative"},
      {"NegativeEnd", File("{" + Entry("t", "F32", "[0]", "[0,-1]") + "}", 0),
       "data_offsets must be non-negative"},
      {"FloatOffsets", File("{" + Entry("t", "F32", "[2]", "[0.0,8.0]") + "}", 8),
       "data_offsets must be non-negative"},
      {"SizeMismatchWithDtypeTimesShape",  // 4 bytes cannot hold 2 x F32 (the mlx#3364 shape)
       File("{" + Entry("t", "F32", "[2]", "[0,4]") + "}", 4), "needs 8"},
      {"SizeLargerThanDtypeTimesShape", File("{" + Entry("t", "BF16", "[2]", "[0,8]") + "}", 8),
       "needs 4"},
      {"HoleBetweenTensors",
       File(
           "{" + Entry("a", "F32", "[1]", "[0,4]") + "," + Entry("b", "F32", "[1]", "[8,12]") + "}",
           12),
       "leaving a hole"},
      {"OverlappingTensors",
       File(
           "{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("b", "F32", "[2]", "[4,12]") + "}",
           12),
       "overlapping"},
      {"IdenticalRanges",
       File("{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("b", "F32", "[2]", "[0,8]") + "}",
            8),
       "overlapping"},
      {"EmptyTensorInsideAnother",
       File("{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("e", "F32", "[0]", "[4,4]") + "}",
            8),
       "overlapping"},
      {"EmptyTensorPastTheEnd",
       File("{" + Entry("a", "F32", "[2]", "[0,8]") + "," + Entry("e", "F32", "[0]", "[12,12]") +
                "}",
            8),
       "leaving a hole"},
      {"FirstTensorNotAtZero", File("{" + Entry("t", "F32", "[1]", "[4,8]") + "}", 8),
       "leaving a hole"},
      {"TrailingByteAfterLastTensor", File("{" + ok + "}", 9), "trailing bytes"},
      {"DataWithoutTensors", File("{}", 1), "trailing bytes"},
      {"DataShorterThanDeclared", File("{" + ok + "}", 7), "truncated file"},
      {"OffsetsFarPastTheBuffer",
       File("{" + Entry("t", "U8", "[1]", "[18446744073709551614,18446744073709551615]") + "}", 1),
       "leaving a hole"},
      {"MetadataNotObject", File(R"({"__metadata__":"pt",)" + ok + "}", 8),
       "__metadata__ must be an object"},
      {"MetadataArray", File(R"({"__metadata__":["pt"],)" + ok + "}", 8),
       "__metadata__ must be an object"},
      {"MetadataValueNotString", File(R"({"__metadata__":{"format":1},)" + ok + "}", 8),
       "is not a string"},
      {"MetadataValueNull", File(R"({"__metadata__":{"format":null},)" + ok + "}", 8),
       "is not a string"},
      {"EntryNotObject", File(R"({"t":[1,2]})", 0), "entry is not an object"},
      {"EntryString", File(R"({"t":"F32"})", 0), "entry is not an object"},
      {"MissingDtype", File(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", 8),
       "missing string \"dtype\""},
      {"MissingShape", File(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       "missing array \"shape\""},
      {"MissingDataOffsets", File(R"({"t":{"dtype":"F32","shape":[2]}})", 8),
       "must be [begin, end]"},
      {"EmptyTensorName", File("{" + Entry("", "F32", "[2]", "[0,8]") + "}", 8),
       "empty tensor name"},
  };
}

class MalformedSafetensorsTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedSafetensorsTest, IsRejectedWithFormatErrorNamingTheFile) {
  const MalformedCase& c = GetParam();
  EXPECT_THROW(ParseSafetensorsHeader(c.bytes, kFileName), bora::FormatError);
  try {
    ParseSafetensorsHeader(c.bytes, kFileName);
    FAIL() << "no exception";
  } catch (const bora::FormatError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.rfind(std::string(kFileName) + ": invalid safetensors file: ", 0), 0u)
        << message;
    EXPECT_NE(message.find(c.problem), std::string::npos)
        << "expected \"" << c.problem << "\" in: " << message;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, MalformedSafetensorsTest, ::testing::ValuesIn(MalformedCases()),
                         [](const ::testing::TestParamInfo<MalformedCase>& info) {
                           return info.param.name;
                         });

TEST(SafetensorsHeaderTest, TheSameHeaderWithCorrectDataLengthIsAccepted) {
  // Guards the trailing/truncated cases above: they differ from a valid file only in data length.
  const std::string header = "{" + Entry("t", "F32", "[2]", "[0,8]") + "}";
  EXPECT_NO_THROW(ParseSafetensorsHeader(File(header, 8), kFileName));
  EXPECT_THROW(ParseSafetensorsHeader(File(header, 7), kFileName), bora::FormatError);
  EXPECT_THROW(ParseSafetensorsHeader(File(header, 9), kFileName), bora::FormatError);
}

// Writes `bytes` into a temporary file and opens it.
class SafetensorsFileTest : public ::testing::Test {
 protected:
  SafetensorsFile OpenBytes(const std::vector<uint8_t>& bytes) {
    path_ = dir_.File("model.safetensors");
    bora::testing::WriteFile(path_, AsString(bytes));
    return SafetensorsFile::Open(path_);
  }

  bora::testing::TempDir dir_;
  std::string path_;
};

TEST_F(SafetensorsFileTest, ViewsPointIntoTheDataBuffer) {
  std::vector<uint8_t> bytes = File(kValidHeader, kValidDataBytes);
  SafetensorsFile file = OpenBytes(bytes);
  EXPECT_EQ(file.path(), path_);
  EXPECT_EQ(file.header().tensors.size(), 6u);
  const size_t data_start = 8 + std::strlen(kValidHeader);

  TensorView b = file.View("b");
  EXPECT_EQ(b.info, file.Find("b"));
  EXPECT_EQ(b.dtype, DType::kF32);
  EXPECT_EQ(b.NumElements(), 6);
  ASSERT_EQ(b.bytes.size(), 24u);
  EXPECT_EQ(std::vector<uint8_t>(b.bytes.begin(), b.bytes.end()),
            std::vector<uint8_t>(bytes.begin() + data_start + 8, bytes.begin() + data_start + 32));
  MatrixView matrix = b.AsMatrix();
  EXPECT_EQ(matrix.dtype, DType::kF32);
  EXPECT_EQ(matrix.rows, 2);
  EXPECT_EQ(matrix.cols, 3);
  EXPECT_EQ(matrix.data, b.bytes.data());
  EXPECT_EQ(matrix.RowBytes(1), b.bytes.data() + 12);

  TensorView a = file.View("a");
  EXPECT_EQ(a.dtype, DType::kBF16);
  EXPECT_EQ(a.NumElements(), 4);
  EXPECT_EQ(a.bytes.size(), 8u);
  EXPECT_EQ(a.bytes.data(), b.bytes.data() - 8);
  MatrixView vector = a.AsMatrix();  // a vector is a [1, n] matrix
  EXPECT_EQ(vector.dtype, DType::kBF16);
  EXPECT_EQ(vector.rows, 1);
  EXPECT_EQ(vector.cols, 4);

  TensorView z0 = file.View("z0");
  EXPECT_EQ(z0.dtype, DType::kF16);
  EXPECT_EQ(z0.NumElements(), 0);
  EXPECT_TRUE(z0.bytes.empty());

  TensorView z8 = file.View("z8");  // rank 3 is not a matrix
  EXPECT_EQ(z8.NumElements(), 0);
  EXPECT_THROW(z8.AsMatrix(), bora::FormatError);
}

TEST_F(SafetensorsFileTest, ViewRejectsNonStorageDtypesAndMissingNames) {
  SafetensorsFile file = OpenBytes(File(kValidHeader, kValidDataBytes));
  ASSERT_NE(file.Find("scalar"), nullptr);
  EXPECT_THROW(file.View("scalar"), bora::Unsupported);  // I64
  EXPECT_THROW(file.View(*file.Find("scalar")), bora::Unsupported);
  EXPECT_EQ(file.View("cube").dtype, bora::DType::kU8);  // raw bytes of packed q8/q4 planes
  EXPECT_EQ(file.Find("missing"), nullptr);
  EXPECT_EQ(file.Find("__metadata__"), nullptr);
  try {
    file.View("missing");
    FAIL() << "no exception";
  } catch (const bora::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("\"missing\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsFileTest, ScalarIsNotAMatrix) {
  std::string header = "{" + Entry("s", "F32", "[]", "[0,4]") + "}";
  SafetensorsFile file = OpenBytes(File(header, 4));
  TensorView s = file.View("s");
  EXPECT_EQ(s.NumElements(), 1);
  EXPECT_THROW(s.AsMatrix(), bora::FormatError);
}

TEST_F(SafetensorsFileTest, OpenNamesThePathOfAnInvalidFile) {
  bora::testing::WriteFile(dir_.File("bad.safetensors"), AsString(File("{}", 3)));
  try {
    SafetensorsFile::Open(dir_.File("bad.safetensors"));
    FAIL() << "no exception";
  } catch (const bora::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.File("bad.safetensors")), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(SafetensorsFile::Open(dir_.File("absent.safetensors")), bora::IoError);
  EXPECT_THROW(SafetensorsFile::Open(dir_.path()), bora::IoError);  // a directory
}

// Deterministic bytes for tensor number `index`.
std::vector<uint8_t> PatternBytes(size_t count, int index) {
  std::vector<uint8_t> bytes(count);
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(index * 31 + i * 5 + 3);
  return bytes;
}

TEST_F(SafetensorsFileTest, WriterRoundTrip) {
  std::vector<TensorSpec> specs = {
      {"layers.0.w", DType::kF32, {2, 3}}, {"norm", DType::kBF16, {5}},
      {"empty", DType::kF16, {0, 4}},      {"cube", DType::kF16, {2, 1, 3}},
      {"scalar", DType::kF32, {}},
  };
  EXPECT_EQ(specs[0].ByteSize(), 24u);
  EXPECT_EQ(specs[1].ByteSize(), 10u);
  EXPECT_EQ(specs[2].ByteSize(), 0u);
  EXPECT_EQ(specs[3].ByteSize(), 12u);
  EXPECT_EQ(specs[4].ByteSize(), 4u);
  const std::string path = dir_.File("written.safetensors");
  std::vector<std::vector<uint8_t>> data;
  {
    SafetensorsWriter writer(path, specs, {{"format", "pt"}, {"origin", "round trip"}});
    EXPECT_EQ(writer.total_data_bytes(), 50u);
    EXPECT_TRUE(std::filesystem::exists(path + ".partial"));
    EXPECT_FALSE(std::filesystem::exists(path));
    for (size_t i = 0; i < specs.size(); ++i) {
      data.push_back(PatternBytes(specs[i].ByteSize(), static_cast<int>(i)));
      // Append in two pieces to check that several calls per tensor concatenate.
      std::span<const uint8_t> all(data.back());
      writer.Append(all.first(all.size() / 2));
      writer.Append(all.subspan(all.size() / 2));
    }
    writer.Finish();
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  ASSERT_TRUE(std::filesystem::exists(path));

  SafetensorsFile file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.header().metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"origin", "round trip"}}));
  EXPECT_EQ((file.header().data_start - 8) % 8, 0u);  // header padded to a multiple of 8
  EXPECT_EQ(file.header().data_size, 50u);
  EXPECT_EQ(std::filesystem::file_size(path), file.header().data_start + 50);
  ASSERT_EQ(file.header().tensors.size(), specs.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE(specs[i].name);
    const TensorInfo* info = file.Find(specs[i].name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->dtype_name, DTypeName(specs[i].dtype));
    EXPECT_EQ(info->shape, specs[i].shape);
    EXPECT_EQ(info->begin, offset);  // declaration order
    EXPECT_EQ(info->end, offset + specs[i].ByteSize());
    offset = info->end;
    TensorView view = file.View(specs[i].name);
    EXPECT_EQ(view.dtype, specs[i].dtype);
    EXPECT_EQ(std::vector<uint8_t>(view.bytes.begin(), view.bytes.end()), data[i]);
  }
}

TEST_F(SafetensorsFileTest, WriterWithoutMetadataWritesNoMetadataKey) {
  const std::string path = dir_.File("plain.safetensors");
  {
    SafetensorsWriter writer(path, {{"x", DType::kF32, {1}}}, {});
    std::vector<uint8_t> bytes = PatternBytes(4, 1);
    writer.Append(bytes);
    writer.Finish();
  }
  SafetensorsFile file = SafetensorsFile::Open(path);
  EXPECT_TRUE(file.header().metadata.empty());
  ASSERT_EQ(file.header().tensors.size(), 1u);
  EXPECT_EQ(file.header().tensors[0].name, "x");
}

TEST_F(SafetensorsFileTest, WriterRejectsDuplicateNames) {
  std::vector<TensorSpec> specs = {{"a", bora::DType::kF32, {1}}, {"a", bora::DType::kF32, {1}}};
  EXPECT_THROW(SafetensorsWriter(dir_.File("dup.safetensors"), specs), bora::InvalidArgument);
}

TEST_F(SafetensorsFileTest, WriterRejectsWrongDataAmountsAndLeavesNoFile) {
  const std::string path = dir_.File("partial.safetensors");
  {
    SafetensorsWriter writer(path, {{"x", DType::kF32, {2}}});
    std::vector<uint8_t> too_much(12, 0);
    EXPECT_THROW(writer.Append(too_much), bora::InvalidArgument);
    std::vector<uint8_t> some(4, 0);
    writer.Append(some);
    EXPECT_THROW(writer.Finish(), bora::InvalidArgument);  // 4 of 8 bytes
  }
  // Abandoned without a successful Finish(): neither the file nor its .partial remain.
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

}  // namespace
}  // namespace bora::formats
