// Unit tests of multipart/form-data parsing: the bodies the official SDKs send to /v1/files,
// binary data, boundary and filename encodings, every named error, and the limits.
#include "server/http/multipart.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace bora::server::http {
namespace {

// A std::string of a literal's bytes, NULs included.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// The message of the InvalidArgument that `fn` throws, or "" when it throws nothing.
template <typename Fn>
std::string ErrorOf(Fn fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

std::string ParseError(const std::string& body, const std::string& boundary,
                       size_t max_parts = 64) {
  return ErrorOf([&] { ParseMultipartFormData(body, boundary, max_parts); });
}

std::string BoundaryError(const std::string& header) {
  return ErrorOf([&] { MultipartBoundary(header); });
}

// What Node's FormData (undici, used by the official TypeScript SDKs) sends.
const std::string kNodeBoundary = "----formdata-undici-0123";
const std::string kNodeBody =
    "------formdata-undici-0123\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"train.jsonl\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": \"yo\"}]}\n"
    "\r\n"
    "------formdata-undici-0123\r\n"
    "Content-Disposition: form-data; name=\"purpose\"\r\n"
    "\r\n"
    "fine-tune\r\n"
    "------formdata-undici-0123--\r\n";

TEST(MultipartTest, ParsesANodeFormDataUpload) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=----formdata-undici-0123"),
            kNodeBoundary);
  const std::vector<FormPart> parts = ParseMultipartFormData(kNodeBody, kNodeBoundary);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "file");
  EXPECT_EQ(parts[0].filename, "train.jsonl");
  EXPECT_EQ(parts[0].content_type, "application/octet-stream");
  EXPECT_EQ(parts[0].data,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
            "{\"messages\": [{\"role\": \"user\", \"content\": \"yo\"}]}\n");
  EXPECT_EQ(parts[1].name, "purpose");
  EXPECT_FALSE(parts[1].filename.has_value());
  EXPECT_EQ(parts[1].content_type, "text/plain");
  EXPECT_EQ(parts[1].data, "fine-tune");
  // The data are views into the body, not copies.
  EXPECT_GE(parts[0].data.data(), kNodeBody.data());
  EXPECT_LE(parts[1].data.data() + parts[1].data.size(), kNodeBody.data() + kNodeBody.size());

  const FormPart* purpose = FindPart(parts, "purpose");
  ASSERT_NE(purpose, nullptr);
  EXPECT_EQ(purpose->data, "fine-tune");
  EXPECT_EQ(FindPart(parts, "file"), &parts[0]);
  EXPECT_EQ(FindPart(parts, "Purpose"), nullptr);  // field names are case-sensitive
  EXPECT_EQ(FindPart(parts, "missing"), nullptr);
}

TEST(MultipartTest, ParsesAPythonRequestsAndHttpxUpload) {
  // requests/urllib3 and httpx (the Python SDKs): hex boundary, fields first, no trailing CRLF.
  const std::string boundary = "9f2c1e0b8a7d4e6f9a0b1c2d3e4f5a6b";
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + boundary), boundary);
  const std::string body =
      "--" + boundary +
      "\r\n"
      "Content-Disposition: form-data; name=\"purpose\"\r\n"
      "\r\n"
      "fine-tune\r\n"
      "--" +
      boundary +
      "\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"data.jsonl\"\r\n"
      "Content-Type: application/jsonl\r\n"
      "\r\n"
      "{\"text\": \"a\"}\n\r\n"
      "--" +
      boundary + "--";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, boundary);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "purpose");
  EXPECT_EQ(parts[0].data, "fine-tune");
  EXPECT_EQ(parts[1].name, "file");
  EXPECT_EQ(parts[1].filename, "data.jsonl");
  EXPECT_EQ(parts[1].content_type, "application/jsonl");
  EXPECT_EQ(parts[1].data, "{\"text\": \"a\"}\n");
}

TEST(MultipartTest, IgnoresPreambleEpilogueAndOtherHeaders) {
  const std::string body =
      "This is the preamble.\r\n--b\r\n--b is data here\r\n"
      "--XYZ\r\n"
      "content-disposition: FORM-DATA; NAME=a; Filename=x.bin\r\n"
      "X-Custom: ignored\r\n"
      "Content-Transfer-Encoding: binary\r\n"
      "\r\n"
      "1\r\n"
      "--XYZ  \t\r\n"  // transport padding
      "Content-Disposition: form-data; name=b\r\n\r\n"
      "2\r\n"
      "--XYZ--trailing junk\r\nepilogue --XYZ\r\nContent-Disposition: form-data; name=c\r\n";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, "XYZ");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "a");
  EXPECT_EQ(parts[0].filename, "x.bin");
  EXPECT_EQ(parts[0].data, "1");
  EXPECT_EQ(parts[1].name, "b");
  EXPECT_EQ(parts[1].data, "2");
}

TEST(MultipartTest, AcceptsBareLineFeeds) {
  const std::string body =
      "--b\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\n\nline1\nline2\n"
      "--b\nContent-Disposition: form-data; name=\"purpose\"\n\nfine-tune\n--b--\n";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, "b");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].data, "line1\nline2");
  EXPECT_EQ(parts[1].data, "fine-tune");
}

TEST(MultipartTest, BinaryDataWithLineBreaksAndPartialBoundariesIsKeptExactly) {
  const std::string boundary = "----formdata-undici-0123";
  const std::string data = Bytes(
      "\r\n\r\n\0\xff\xfe\r\n-"
      "\r\n--\r\n------formdata-undici-012\r\n"     // a prefix of the delimiter
      "\n------formdata-undici-01234\r\n"           // the boundary followed by more characters
      "\r\n------formdata-undici-0123x--\r\n"       // ... and a close look-alike
      "x------formdata-undici-0123\r\n"             // not at a line start
      "\r\r\n\r\n------formdata-undici-0123 x\r\n"  // padding then not a line break
      "end\r\n\r");
  const std::string body =
      "--" + boundary +
      "\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"blob.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
      data + "\r\n--" + boundary + "--\r\n";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, boundary);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(std::string(parts[0].data), data);
}

TEST(MultipartTest, EmptyFilesAndFields) {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"empty.jsonl\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"\"; filename=\"\"\r\n\r\n\r\n"
      "--b--";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, "b");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].filename, "empty.jsonl");
  EXPECT_TRUE(parts[0].data.empty());
  // Headers followed directly by the delimiter: RFC 2046 allows a part that is headers only.
  EXPECT_EQ(parts[1].name, "purpose");
  EXPECT_TRUE(parts[1].data.empty());
  EXPECT_EQ(parts[2].name, "");
  EXPECT_EQ(parts[2].filename, "");  // a browser's "no file chosen"
  EXPECT_TRUE(parts[2].data.empty());
  // A body that only closes has no parts.
  EXPECT_TRUE(ParseMultipartFormData("--b--\r\n", "b").empty());
  EXPECT_TRUE(ParseMultipartFormData("preamble\r\n--b--", "b").empty());
}

TEST(MultipartTest, ReadsBoundariesFromContentTypes) {
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("Multipart/Form-Data;BOUNDARY=abc"), "abc");
  EXPECT_EQ(MultipartBoundary("multipart/form-data ; charset=utf-8; boundary = \"a b:c\" ;"),
            "a b:c");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=\"q\\\"uo\\\\te\""), "q\"uo\\te");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=----=_Part_0_1.2"),
            "----=_Part_0_1.2");
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary=" + std::string(70, 'x')),
            std::string(70, 'x'));
  // A quoted boundary works end to end, including characters that need the quotes.
  const std::string boundary = MultipartBoundary("multipart/form-data; boundary=\"(weird) b?\"");
  const std::vector<FormPart> parts = ParseMultipartFormData(
      "--(weird) b?\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--(weird) b?--",
      boundary);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "v");
}

TEST(MultipartTest, BoundaryErrorsAreDistinct) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "no Content-Type"},
      {"application/json", "not multipart/form-data"},
      {"multipart/mixed; boundary=x", "not multipart/form-data"},
      {"multipart/form-data", "no boundary parameter"},
      {"multipart/form-data; charset=utf-8", "no boundary parameter"},
      {"multipart/form-data; boundary=", "empty value"},
      {"multipart/form-data; boundary=\"\"", "1 to 70 characters"},
      {"multipart/form-data; boundary=" + std::string(71, 'x'), "1 to 70 characters"},
      {"multipart/form-data; boundary=\"abc", "unterminated quoted string"},
      {"multipart/form-data; boundary=a; boundary=b", "repeated"},
      {"multipart/form-data; boundary", "has no value"},
      {"multipart/form-data; boundary=a b", "unexpected"},
      {"multipart/form-data; =x", "malformed parameter"},
      {"multipart/form-data; boundary=\"ab \"", "ends with a space"},
      {"multipart/form-data; boundary=\"a\xc3\xa9\"", "outside printable ASCII"},
  };
  for (const auto& [header, expected] : cases) {
    const std::string error = BoundaryError(header);
    EXPECT_NE(error.find(expected), std::string::npos) << header << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(MultipartTest, FilenameStarWinsAndIsDecoded) {
  const auto parse_filename = [](const std::string& disposition) {
    const std::string body = "--b\r\nContent-Disposition: " + disposition + "\r\n\r\nx\r\n--b--";
    return ParseMultipartFormData(body, "b").at(0).filename;
  };
  EXPECT_EQ(parse_filename("form-data; name=f; filename=\"fallback.txt\"; "
                           "filename*=UTF-8''na%C3%AFve%20data.jsonl"),
            "na\xc3\xafve data.jsonl");
  EXPECT_EQ(parse_filename("form-data; name=f; filename*=utf-8'en'%E2%82%AC.txt; filename=e.txt"),
            "\xe2\x82\xac.txt");
  EXPECT_EQ(parse_filename("form-data; name=f; filename*=ISO-8859-1''caf%E9"), "caf\xc3\xa9");
  EXPECT_EQ(parse_filename("form-data; name=f; filename=\"a \\\"quoted\\\" \\\\name\""),
            "a \"quoted\" \\name");
  EXPECT_EQ(parse_filename("form-data; name=f; filename=\"caf\xc3\xa9.jsonl\""),
            "caf\xc3\xa9.jsonl");
  const std::vector<std::pair<std::string, std::string>> errors = {
      {"filename*=UTF-8%C3%A9", "not charset'language'value"},
      {"filename*=KOI8-R''abc", "has charset"},
      {"filename*=UTF-8''bad%2", "malformed percent escape"},
      {"filename*=UTF-8''bad%zz", "malformed percent escape"},
      {"filename*=UTF-8''a%00b", "NUL byte"},
      {"filename*=UTF-8''%C3%28", "not valid UTF-8"},
      {"filename*=UTF-8''%ED%A0%80", "not valid UTF-8"},  // a surrogate
  };
  for (const auto& [parameter, expected] : errors) {
    const std::string body =
        "--b\r\nContent-Disposition: form-data; name=f; " + parameter + "\r\n\r\nx\r\n--b--";
    const std::string error = ParseError(body, "b");
    EXPECT_NE(error.find(expected), std::string::npos) << parameter << " -> " << error;
    EXPECT_NE(error.find("filename*"), std::string::npos) << error;
  }
}

TEST(MultipartTest, BodyErrorsAreDistinct) {
  const std::string open = "--b\r\n";
  const std::string named = "Content-Disposition: form-data; name=\"x\"\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "no \"--b\" delimiter line"},
      {"--c\r\n" + named + "\r\nv\r\n--c--", "no \"--b\" delimiter line"},
      {"--bb\r\n" + named + "\r\nv\r\n--bb--", "no \"--b\" delimiter line"},
      {open + named + "\r\nv", "without the closing \"--b--\" delimiter"},
      {open + named + "\r\nv\r\n--b", "without the closing \"--b--\" delimiter"},
      {open + named + "\r\nv\r\n--b-", "without the closing \"--b--\" delimiter"},
      {open + named + "\r\nv\r\n--b\r\n", "part 2: the body ends inside the part headers"},
      {open + named, "part 1: the body ends inside the part headers"},
      {open + "\r\nv\r\n--b--", "part 1 has no Content-Disposition header"},
      {open + "Content-Type: text/plain\r\n\r\nv\r\n--b--", "has no Content-Disposition"},
      {open + "Content-Disposition: form-data\r\n\r\nv\r\n--b--", "has no name parameter"},
      {open + "Content-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--b--", "no name"},
      {open + "Content-Disposition: attachment; name=x\r\n\r\nv\r\n--b--", "not form-data"},
      {open + named + named + "\r\nv\r\n--b--", "more than one Content-Disposition"},
      {open + named + "Content-Type: a\r\nContent-Type: b\r\n\r\nv\r\n--b--",
       "more than one Content-Type"},
      {open + "Content-Disposition: form-data; name=x; name=y\r\n\r\nv\r\n--b--", "repeated"},
      {open + "Content-Disposition: form-data; name=\"x\r\n\r\nv\r\n--b--",
       "unterminated quoted string"},
      {open + "Content-Disposition: form-data; name=\"x\" y\r\n\r\nv\r\n--b--", "unexpected"},
      {open + "Content-Disposition: form-data name=x\r\n\r\nv\r\n--b--", "not form-data"},
      {open + named + "No colon here\r\n\r\nv\r\n--b--", "malformed header line"},
      {open + named + ": empty name\r\n\r\nv\r\n--b--", "malformed header line"},
      {open + named + " folded\r\n\r\nv\r\n--b--", "folded header lines"},
      {open + named + "X: a\rb\r\n\r\nv\r\n--b--", "control character in a header line"},
      {open + named + Bytes("X: a\0b\r\n\r\nv\r\n--b--"), "control character in a header line"},
      {open + named + "Content-Transfer-Encoding: base64\r\n\r\ndg==\r\n--b--",
       "Content-Transfer-Encoding \"base64\" is not supported"},
      {open + named + "X: " + std::string(20000, 'h') + "\r\n\r\nv\r\n--b--",
       "part headers are larger than 16384 bytes"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string error = ParseError(body, "b");
    EXPECT_NE(error.find(expected), std::string::npos) << body.substr(0, 120) << "\n -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_LT(error.size(), 300u) << error;
  }
  // An invalid boundary given directly is refused too.
  EXPECT_NE(ParseError("--\r\n", "").find("1 to 70 characters"), std::string::npos);
  EXPECT_NE(ParseError("x", std::string(71, 'b')).find("1 to 70 characters"), std::string::npos);
}

TEST(MultipartTest, PartLimit) {
  std::string body;
  for (int i = 0; i < 5; ++i) {
    body +=
        "--b\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) + "\"\r\n\r\nv\r\n";
  }
  body += "--b--\r\n";
  EXPECT_EQ(ParseMultipartFormData(body, "b", 5).size(), 5u);
  EXPECT_NE(ParseError(body, "b", 4).find("more than 4 parts"), std::string::npos);
  EXPECT_NE(ParseError(body, "b", 0).find("more than 0 parts"), std::string::npos);
  EXPECT_TRUE(ParseMultipartFormData("--b--", "b", 0).empty());
  // The default is 64.
  std::string many;
  for (int i = 0; i < 65; ++i) many += "--b\r\nContent-Disposition: form-data; name=n\r\n\r\n\r\n";
  EXPECT_NE(ParseError(many + "--b--", "b").find("more than 64 parts"), std::string::npos);
}

TEST(MultipartTest, HeaderSectionsUpToTheCapAreAccepted) {
  const std::string header = "X: " + std::string(16000, 'h') + "\r\n";
  const std::string body =
      "--b\r\n" + header + "Content-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b--";
  EXPECT_EQ(ParseMultipartFormData(body, "b").at(0).data, "v");
}

TEST(MultipartTest, LargeHostileBodiesParseInLinearTime) {
  // Many line starts that look like the delimiter but are not: each must cost a bounded amount.
  const std::string boundary(70, '-');
  std::string data;
  const std::string look_alike = "\r\n--" + std::string(69, '-') + "x";
  while (data.size() < (size_t{8} << 20)) data += look_alike;
  const std::string body =
      "--" + boundary +
      "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n" + data +
      "\r\n--" + boundary + "--\r\n";
  const std::vector<FormPart> parts = ParseMultipartFormData(body, boundary);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data.size(), data.size());
  // And a body of nothing but line breaks.
  const std::string line_breaks(size_t{8} << 20, '\n');
  EXPECT_NE(ParseError(line_breaks, "b").find("no \"--b\" delimiter"), std::string::npos);
}

}  // namespace
}  // namespace bora::server::http
