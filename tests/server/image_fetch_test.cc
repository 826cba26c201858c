// Image URLs (--allow-image-urls): the address rules that keep the fetcher off private networks,
// the fetcher against an in-process HTTP server (pinned address, redirects, size limit), and
// `bora serve` answering a chat whose image is a URL exactly like the same image inline.
#include "server/image_fetch.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <iterator>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "server/server_process.h"
#include "testdata.h"

namespace bora::server {
namespace {

TEST(ImageFetch, OnlyPublicAddressesArePublic) {
  for (const char* address : {"8.8.8.8", "1.1.1.1", "151.101.1.69", "2606:4700:4700::1111", "2a00:1450:4007::8e"}) {
    EXPECT_TRUE(IsPublicAddress(address)) << address;
  }
  for (const char* address : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                              "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
                              "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
                              "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2001:db8::1", "not an ip"}) {
    EXPECT_FALSE(IsPublicAddress(address)) << address;
  }
  EXPECT_TRUE(IsPublicAddress("::ffff:8.8.8.8"));
}

TEST(ImageFetch, RefusesLoopbackSchemesAndCredentials) {
  ImageFetchOptions options;
  for (const char* url : {"http://127.0.0.1/x.png", "http://localhost:8080/x.png", "http://[::1]/x.png",
                          "http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "ftp://example.com/x.png",
                          "http://user:pass@example.com/x.png", "gopher://127.0.0.1/"}) {
    EXPECT_THROW(FetchImageUrl(url, options), InvalidArgument) << url;
  }
  try {
    FetchImageUrl("http://localhost/x.png", options);
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("not a public address"), std::string::npos) << e.what();
  }
}

class LocalImageServer {
 public:
  explicit LocalImageServer(std::string image) : image_(std::move(image)) {
    server_.Get("/photo.jpg", [this](const httplib::Request&, httplib::Response& r) { r.set_content(image_, "image/jpeg"); });
    server_.Get("/hop", [](const httplib::Request&, httplib::Response& r) { r.set_redirect("/photo.jpg"); });
    server_.Get("/loop", [](const httplib::Request&, httplib::Response& r) { r.set_redirect("/loop"); });
    server_.Get("/missing", [](const httplib::Request&, httplib::Response& r) { r.status = 404; });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalImageServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

 private:
  std::string image_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ImageFetch, FetchesFollowsRedirectsAndEnforcesLimitsOnATrustedNetwork) {
  const std::string image(5000, 'x');
  LocalImageServer local(image);
  ImageFetchOptions options;
  EXPECT_THROW(FetchImageUrl(local.Url("/photo.jpg"), options), InvalidArgument);  // loopback: refused
  options.allow_private = true;
  EXPECT_EQ(FetchImageUrl(local.Url("/photo.jpg"), options), image);
  EXPECT_EQ(FetchImageUrl(local.Url("/hop"), options), image);
  EXPECT_THROW(FetchImageUrl(local.Url("/loop"), options), InvalidArgument);
  EXPECT_THROW(FetchImageUrl(local.Url("/missing"), options), InvalidArgument);
  options.max_bytes = 4000;
  EXPECT_THROW(FetchImageUrl(local.Url("/photo.jpg"), options), InvalidArgument);
}

TEST(ImageFetch, ServeAnswersAnImageUrlLikeTheSameImageInline) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-pixtral";
  const std::string jpeg = ReadAll(ref + "/images/photo_64x48.jpg");
  LocalImageServer local(jpeg);
  testing::TempDir dir;
  testing::ServerProcess server({"--model", "pixtral=" + ref + "/mistral", "--state-dir", "none", "-t", "2",
                                 "--allow-image-urls", "--image-urls-private"},
                                dir.File("serve.log"));
  ASSERT_NE(server.port(), 0) << ReadAll(dir.File("serve.log"));
  httplib::Client client("127.0.0.1", server.port());
  auto ask = [&](const nlohmann::json& image_url) {
    const nlohmann::json body = {
        {"model", "pixtral"}, {"temperature", 0}, {"max_tokens", 8},
        {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "What is in this image?"}},
                                                       {{"type", "image_url"}, {"image_url", image_url}}}}}}}};
    return client.Post("/v1/chat/completions", body.dump(), "application/json");
  };
  const auto by_url = ask({{"url", local.Url("/hop")}});
  ASSERT_TRUE(by_url);
  ASSERT_EQ(by_url->status, 200) << by_url->body;
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (size_t i = 0; i < jpeg.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(jpeg[i]) << 16;
    if (i + 1 < jpeg.size()) v |= static_cast<uint8_t>(jpeg[i + 1]) << 8;
    if (i + 2 < jpeg.size()) v |= static_cast<uint8_t>(jpeg[i + 2]);
    b64 += kAlphabet[(v >> 18) & 63];
    b64 += kAlphabet[(v >> 12) & 63];
    b64 += i + 1 < jpeg.size() ? kAlphabet[(v >> 6) & 63] : '=';
    b64 += i + 2 < jpeg.size() ? kAlphabet[v & 63] : '=';
  }
  const auto inline_image = ask("data:image/jpeg;base64," + b64);
  ASSERT_TRUE(inline_image);
  ASSERT_EQ(inline_image->status, 200) << inline_image->body;
  const auto a = nlohmann::json::parse(by_url->body), b = nlohmann::json::parse(inline_image->body);
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
  EXPECT_EQ(a["usage"]["prompt_tokens"], 27);
  const auto missing = ask({{"url", local.Url("/missing")}});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400) << missing->body;
  EXPECT_NE(missing->body.find("404"), std::string::npos) << missing->body;
}

}  // namespace
}  // namespace bora::server
