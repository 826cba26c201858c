// Unit tests of the incremental HTTP/1.1 request parser: request line, headers, limits, bodies,
// chunked framing, request smuggling, pipelining, and byte-at-a-time feeding.
#include "server/http/http_request_parser.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace bora::server::http {
namespace {

struct Parsed {
  HttpRequestParser::State state;
  int status = 0;
  size_t used = 0;
  HttpRequest request;
};

ParserLimits SmallLimits() {
  ParserLimits limits;
  limits.max_body_bytes = 1000;
  return limits;
}

Parsed ParseAll(const std::string& bytes, ParserLimits limits = SmallLimits()) {
  HttpRequestParser parser(limits);
  Parsed out;
  out.used = parser.Feed(bytes);
  out.state = parser.state();
  out.status = parser.error_status();
  out.request = parser.request();
  return out;
}

Parsed ParseByteByByte(const std::string& bytes, ParserLimits limits = SmallLimits()) {
  HttpRequestParser parser(limits);
  Parsed out;
  for (char c : bytes) {
    if (parser.state() != HttpRequestParser::State::kNeedMore) break;
    out.used += parser.Feed(std::string_view(&c, 1));
  }
  out.state = parser.state();
  out.status = parser.error_status();
  out.request = parser.request();
  return out;
}

int StatusOf(const std::string& bytes, ParserLimits limits = SmallLimits()) {
  const Parsed parsed = ParseAll(bytes, limits);
  if (parsed.state == HttpRequestParser::State::kComplete) return 200;
  if (parsed.state == HttpRequestParser::State::kNeedMore) return 0;
  return parsed.status;
}

TEST(HttpRequestParserTest, ParsesAGetRequest) {
  const std::string bytes =
      "GET /v1/models/a%2Fb?x=1&y=2 HTTP/1.1\r\nHost: localhost\r\nX-Thing:  spaced value \r\n\r\n";
  const Parsed parsed = ParseAll(bytes);
  ASSERT_EQ(parsed.state, HttpRequestParser::State::kComplete);
  EXPECT_EQ(parsed.used, bytes.size());
  EXPECT_EQ(parsed.request.method, "GET");
  EXPECT_EQ(parsed.request.target, "/v1/models/a%2Fb?x=1&y=2");
  EXPECT_EQ(parsed.request.path, "/v1/models/a/b");
  EXPECT_EQ(parsed.request.query, "x=1&y=2");
  EXPECT_EQ(parsed.request.version_minor, 1);
  EXPECT_TRUE(parsed.request.keep_alive);
  EXPECT_EQ(parsed.request.Header("host"), "localhost");
  EXPECT_EQ(parsed.request.Header("X-THING"), "spaced value");
  EXPECT_EQ(parsed.request.FindHeader("missing"), nullptr);
  EXPECT_TRUE(parsed.request.body.empty());
}

TEST(HttpRequestParserTest, AcceptsBareLineFeedsLeadingBlankLinesAndAbsoluteTargets) {
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\nHost: x\n\n"), 200);
  EXPECT_EQ(StatusOf("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 200);
  const Parsed absolute = ParseAll("GET http://example.com:80/health?q HTTP/1.1\r\n\r\n");
  ASSERT_EQ(absolute.state, HttpRequestParser::State::kComplete);
  EXPECT_EQ(absolute.request.path, "/health");
  EXPECT_EQ(absolute.request.query, "q");
  EXPECT_EQ(ParseAll("GET http://example.com HTTP/1.1\r\n\r\n").request.path, "/");
  EXPECT_EQ(StatusOf("OPTIONS * HTTP/1.1\r\n\r\n"), 200);
}

TEST(HttpRequestParserTest, ConnectionPersistenceFollowsVersionAndHeader) {
  EXPECT_FALSE(ParseAll("GET / HTTP/1.0\r\n\r\n").request.keep_alive);
  EXPECT_TRUE(ParseAll("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(ParseAll("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(ParseAll("GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(ParseAll("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n")
                   .request.keep_alive);
}

TEST(HttpRequestParserTest, RejectsMalformedRequestLines) {
  EXPECT_EQ(StatusOf("GET /\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET  / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("G(T / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / FTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.10\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(StatusOf("GET relative HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET * HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a\rb HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /%zz HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /%2 HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /a%00b HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf(std::string(20, '\n') + "GET / HTTP/1.1\r\n\r\n"), 400);
}

TEST(HttpRequestParserTest, RequestLineLimitIs414EvenBeforeTheLineEnds) {
  ParserLimits limits = SmallLimits();
  const std::string target = "/" + std::string(8192 - 14, 'a');  // line of exactly 8192 bytes
  const std::string line = "GET " + target + " HTTP/1.1";
  ASSERT_EQ(line.size(), 8192u);
  EXPECT_EQ(StatusOf(line + "\r\n\r\n", limits), 200);
  EXPECT_EQ(StatusOf("GET /a" + target + " HTTP/1.1\r\n\r\n", limits), 414);
  EXPECT_EQ(StatusOf("GET /" + std::string(100000, 'a'), limits), 414);  // no newline yet
}

TEST(HttpRequestParserTest, HeaderLimitsAre431) {
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(StatusOf(many + "\r\n"), 200);
  EXPECT_EQ(StatusOf(many + "X-One-More: v\r\n\r\n"), 431);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nX-Big: " + std::string(40000, 'v') + "\r\n\r\n"), 431);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nX-Big: " + std::string(40000, 'v')), 431);  // no end
  std::string section = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 9; ++i)
    section += "X-H" + std::to_string(i) + ": " + std::string(4000, 'v') + "\r\n";
  EXPECT_EQ(StatusOf(section + "\r\n"), 431);  // 36 KB in nine fields
}

TEST(HttpRequestParserTest, RejectsMalformedHeaderFields) {
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nName : v\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\n: v\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nA: b\x01"
                     "c\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n"), 200);  // obs-text is fine
}

TEST(HttpRequestParserTest, ReadsAContentLengthBody) {
  const Parsed parsed = ParseAll("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
  ASSERT_EQ(parsed.state, HttpRequestParser::State::kComplete);
  EXPECT_EQ(parsed.request.body, "hello");
  EXPECT_EQ(parsed.used, std::string("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").size());
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 200);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel"), 0);  // needs more
}

TEST(HttpRequestParserTest, BodyOverTheLimitIs413BeforeTheBody) {
  HttpRequestParser parser(SmallLimits());
  parser.Feed("POST /x HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.error_status(), 413);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'a')),
            200);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n"), 413);
}

ParserLimits UploadLimits() {
  ParserLimits limits = SmallLimits();  // 1000 bytes elsewhere
  limits.max_upload_body_bytes = 3000;
  limits.upload_path_prefix = "/v1/files";
  return limits;
}

std::string PostWithLength(const std::string& path, size_t length,
                           const std::string& method = "POST") {
  return method + " " + path + " HTTP/1.1\r\nContent-Length: " + std::to_string(length) +
         "\r\n\r\n" + std::string(length, 'u');
}

std::string ChunkedPost(const std::string& path, size_t chunks, size_t chunk_size) {
  std::string bytes = "POST " + path + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk_size);
  for (size_t i = 0; i < chunks; ++i) bytes += size_line + std::string(chunk_size, 'c') + "\r\n";
  return bytes + "0\r\n\r\n";
}

TEST(HttpRequestParserTest, UploadRouteGetsTheLargerBodyLimit) {
  const ParserLimits limits = UploadLimits();
  const Parsed upload = ParseAll(PostWithLength("/v1/files", 2500), limits);
  ASSERT_EQ(upload.state, HttpRequestParser::State::kComplete) << upload.status;
  EXPECT_EQ(upload.request.body, std::string(2500, 'u'));
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 3000), limits), 200);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files/abc/content", 2000), limits), 200);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files?purpose=fine-tune", 2000), limits), 200);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/%66iles", 2000), limits), 200);  // decoded path
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 3001), limits), 413);
  // Other routes, other methods and look-alike paths keep max_body_bytes.
  EXPECT_EQ(StatusOf(PostWithLength("/v1/chat/completions", 1001), limits), 413);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/filesystem", 2000), limits), 413);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/file", 2000), limits), 413);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 2000, "PUT"), limits), 413);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/chat/completions", 1000), limits), 200);
  // The 413 names the limit that applied.
  HttpRequestParser parser(limits);
  parser.Feed("POST /v1/files HTTP/1.1\r\nContent-Length: 3001\r\n\r\n");
  ASSERT_TRUE(parser.failed());
  EXPECT_NE(parser.error_message().find("3000"), std::string::npos) << parser.error_message();
}

TEST(HttpRequestParserTest, UploadLimitNeedsBothFieldsAndNeverLowersTheLimit) {
  ParserLimits no_prefix = UploadLimits();
  no_prefix.upload_path_prefix.clear();
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 2000), no_prefix), 413);
  EXPECT_EQ(StatusOf(PostWithLength("/", 2000), no_prefix), 413);
  ParserLimits no_size = UploadLimits();
  no_size.max_upload_body_bytes = 0;
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 1001), no_size), 413);
  ParserLimits smaller = UploadLimits();
  smaller.max_upload_body_bytes = 500;
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 1000), smaller), 200);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 1001), smaller), 413);
  ParserLimits slash = UploadLimits();
  slash.upload_path_prefix = "/v1/files/";
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files/x", 2000), slash), 200);
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 2000), slash), 413);
}

TEST(HttpRequestParserTest, ChunkedUploadsGetTheLargerBodyLimit) {
  const ParserLimits limits = UploadLimits();
  const Parsed upload = ParseAll(ChunkedPost("/v1/files", 5, 600), limits);  // 3000 bytes
  ASSERT_EQ(upload.state, HttpRequestParser::State::kComplete) << upload.status;
  EXPECT_EQ(upload.request.body, std::string(3000, 'c'));
  EXPECT_EQ(StatusOf(ChunkedPost("/v1/files", 1, 2999), limits), 200);
  EXPECT_EQ(StatusOf(ChunkedPost("/v1/files", 6, 600), limits), 413);   // 3600
  EXPECT_EQ(StatusOf(ChunkedPost("/v1/files", 1, 3001), limits), 413);  // one chunk
  EXPECT_EQ(StatusOf(ChunkedPost("/v1/models", 2, 600), limits), 413);  // 1200 elsewhere
  EXPECT_EQ(StatusOf(ChunkedPost("/v1/models", 2, 500), limits), 200);
  for (const std::string& bytes :
       {PostWithLength("/v1/files", 2500), PostWithLength("/v1/models", 2500),
        ChunkedPost("/v1/files", 4, 700), ChunkedPost("/v1/files", 6, 700)}) {
    const Parsed whole = ParseAll(bytes, limits);
    const Parsed bytewise = ParseByteByByte(bytes, limits);
    EXPECT_EQ(whole.state, bytewise.state);
    EXPECT_EQ(whole.status, bytewise.status);
    EXPECT_EQ(whole.request.body, bytewise.request.body);
  }
}

// Files in `dir` (the spool must leave none behind, not even while a body arrives).
size_t FilesIn(const std::string& dir) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++count;
  return count;
}

TEST(HttpRequestParserTest, SpooledUploadsGoToAnUnnamedFile) {
  char pattern[] = "/tmp/bora-spool-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  ParserLimits limits = UploadLimits();
  limits.upload_spool_dir = dir;
  for (const std::string& bytes :
       {PostWithLength("/v1/files", 2500), ChunkedPost("/v1/files", 5, 600)}) {
    HttpRequestParser parser(limits);
    for (size_t at = 0; at < bytes.size(); at += 97) {
      parser.Feed(std::string_view(bytes).substr(at, 97));
      EXPECT_EQ(FilesIn(dir), 0u);
    }
    ASSERT_TRUE(parser.complete()) << parser.error_message();
    const HttpRequest& request = parser.request();
    EXPECT_TRUE(request.body.empty());  // nothing held in memory
    ASSERT_TRUE(request.spooled_body);
    const std::string expected = bytes.find("chunked") != std::string::npos
                                     ? std::string(3000, 'c')
                                     : std::string(2500, 'u');
    EXPECT_EQ(request.BodyView(), expected);
    EXPECT_EQ(request.spooled_body->size(), expected.size());
  }
  // Other routes keep their bodies in memory.
  HttpRequestParser other(limits);
  other.Feed(PostWithLength("/v1/chat/completions", 900));
  ASSERT_TRUE(other.complete());
  EXPECT_FALSE(other.request().spooled_body);
  EXPECT_EQ(other.request().BodyView(), std::string(900, 'u'));
  // Nothing left on disk once the requests are gone.
  EXPECT_EQ(FilesIn(dir), 0u);
  std::filesystem::remove_all(dir);
  // A spool folder that cannot be written: 507, not a crash.
  limits.upload_spool_dir = dir + "/missing";
  EXPECT_EQ(StatusOf(PostWithLength("/v1/files", 2500), limits), 507);
}

TEST(HttpRequestParserTest, AnnouncedBodyIsNotAllocatedBeforeItArrives) {
  ParserLimits limits;
  limits.max_body_bytes = size_t{1} << 40;  // 1 TiB allowed, so only the reserve cap protects
  HttpRequestParser parser(limits);
  parser.Feed("POST /x HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\nabc");
  EXPECT_EQ(parser.state(), HttpRequestParser::State::kNeedMore);
  EXPECT_TRUE(parser.in_body());
  EXPECT_EQ(parser.request().body, "abc");
  EXPECT_LE(parser.request().body.capacity(), size_t{8} << 20);
  // Small bodies are still reserved whole.
  HttpRequestParser small(SmallLimits());
  small.Feed("POST /x HTTP/1.1\r\nContent-Length: 900\r\n\r\n");
  EXPECT_GE(small.request().body.capacity(), 900u);
}

TEST(HttpRequestParserTest, SmugglingShapesAre400) {
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"),
            400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("POST /x HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"), 400);
}

TEST(HttpRequestParserTest, ReadsChunkedBodies) {
  const Parsed parsed = ParseAll(
      "POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "4\r\nWiki\r\n5;name=value\r\npedia\r\nD \r\n in\r\n\r\nchunks\r\n0\r\nX-Trailer: t\r\n\r\n");
  ASSERT_EQ(parsed.state, HttpRequestParser::State::kComplete) << parsed.status;
  EXPECT_EQ(parsed.request.body, "Wikipedia in\r\n\r\nchunks");
  EXPECT_TRUE(parsed.request.chunked);
}

TEST(HttpRequestParserTest, RejectsBadChunks) {
  const std::string head = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(StatusOf(head + "zz\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "-1\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "4 x\r\nWiki\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "4\r\nWikiXX\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "fffffffffffffffff\r\n"), 400);
  EXPECT_EQ(StatusOf(head + "3e9\r\n"), 413);  // 1001 bytes in one chunk
  EXPECT_EQ(StatusOf(head + "3e8\r\n" + std::string(1000, 'a') + "\r\n1\r\nb\r\n"), 413);
  EXPECT_EQ(StatusOf(head + std::string(5000, '0') + "1\r\n"), 400);  // overlong size line
  EXPECT_EQ(StatusOf(head + "0\r\nBad trailer\r\n\r\n"), 400);
}

TEST(HttpRequestParserTest, ExpectContinueIsReportedOnlyWhenABodyFollows) {
  HttpRequestParser parser(SmallLimits());
  parser.Feed("POST /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(parser.state(), HttpRequestParser::State::kNeedMore);
  EXPECT_TRUE(parser.in_body());
  EXPECT_TRUE(parser.request().expect_continue);
  parser.Feed("abc");
  EXPECT_TRUE(parser.complete());
  EXPECT_FALSE(ParseAll("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").request.expect_continue);
  EXPECT_FALSE(ParseAll("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                   .request.expect_continue);
}

TEST(HttpRequestParserTest, PipelinedRequestsAreParsedOneAtATime) {
  const std::string bytes =
      "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\n\r\n"
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
  HttpRequestParser parser(SmallLimits());
  std::string_view rest(bytes);
  std::vector<std::string> seen;
  while (!rest.empty()) {
    rest.remove_prefix(parser.Feed(rest));
    ASSERT_TRUE(parser.complete());
    seen.push_back(parser.request().path + ":" + parser.request().body);
    parser.Reset();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"/a:hi", "/b:", "/c:z"}));
}

TEST(HttpRequestParserTest, AFailedParserConsumesNothingMore) {
  HttpRequestParser parser(SmallLimits());
  parser.Feed("BAD\r\n");
  ASSERT_TRUE(parser.failed());
  EXPECT_EQ(parser.Feed("GET / HTTP/1.1\r\n\r\n"), 0u);
  EXPECT_FALSE(parser.error_message().empty());
}

TEST(HttpRequestParserTest, ByteAtATimeEqualsOneShot) {
  std::string many_headers = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many_headers += "X: v\r\n";
  const std::vector<std::string> cases = {
      "GET /v1/models/x%20y?z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      "\r\nPOST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\nTransfer-Encoding: chunked\n\n4;a=b\nWiki\n0\nT: 1\n\n",
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 2000\r\n\r\n",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nX: " + std::string(33000, 'v') + "\r\n\r\n",
      many_headers + "\r\n",
      "GET / HTTP/3.0\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
  };
  for (const std::string& bytes : cases) {
    const Parsed whole = ParseAll(bytes);
    const Parsed bytewise = ParseByteByByte(bytes);
    EXPECT_EQ(whole.state, bytewise.state) << bytes.substr(0, 80);
    EXPECT_EQ(whole.status, bytewise.status) << bytes.substr(0, 80);
    if (whole.state == HttpRequestParser::State::kComplete) {
      EXPECT_EQ(whole.used, bytewise.used) << bytes.substr(0, 80);
      EXPECT_EQ(whole.request.method, bytewise.request.method);
      EXPECT_EQ(whole.request.path, bytewise.request.path);
      EXPECT_EQ(whole.request.headers, bytewise.request.headers);
      EXPECT_EQ(whole.request.body, bytewise.request.body);
      EXPECT_EQ(whole.request.keep_alive, bytewise.request.keep_alive);
      EXPECT_EQ(whole.request.expect_continue, bytewise.request.expect_continue);
    }
  }
}

}  // namespace
}  // namespace bora::server::http
