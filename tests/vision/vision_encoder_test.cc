// The vision encoder against an independent float64 implementation of mistral-inference's
// semantics on random towers of the shapes tiny-pixtral does not cover: Mistral Small 3.1's
// patch merger (2x2 unfold) with a pre-projector norm and no adapter bias, non-square grids;
// plus the params.json rules (defaults, multimodal form, unknown keys) and the refusals.
#include "vision/vision_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>

#include "base/error.h"
#include "formats/model_folder.h"
#include "formats/model_params.h"
#include "formats/safetensors_writer.h"
#include "testdata.h"

namespace bora::vision {
namespace {

using testing::TempDir;

struct Tower {
  int64_t d = 32, heads = 2, inner = 48, layers = 2, patch = 4, merge = 2, text_dim = 40, image_size = 32;
  bool pre_norm = true, bias = false;
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;
};

void Add(Tower& t, std::mt19937& rng, const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = offset + scale * normal(rng);
  t.tensors[name] = std::move(values);
  t.shapes[name] = std::move(shape);
}

// Writes params.json (a small text decoder + the vision block) and the vision tensors.
std::string WriteTower(const TempDir& dir, Tower& t, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t d = t.d, p = t.patch;
  Add(t, rng, "vision_encoder.patch_conv.weight", {d, 3, p, p}, 1.0f / std::sqrt(3.0f * p * p));
  Add(t, rng, "vision_encoder.ln_pre.weight", {d}, 0.1f, 1.0f);
  for (int64_t l = 0; l < t.layers; ++l) {
    const std::string pre = "vision_encoder.transformer.layers." + std::to_string(l) + ".";
    Add(t, rng, pre + "attention_norm.weight", {d}, 0.1f, 1.0f);
    Add(t, rng, pre + "ffn_norm.weight", {d}, 0.1f, 1.0f);
    for (const char* w : {"wq", "wk", "wv", "wo"}) Add(t, rng, pre + "attention." + w + ".weight", {d, d}, 0.3f / std::sqrt(float(d)));
    Add(t, rng, pre + "feed_forward.w1.weight", {t.inner, d}, 1.0f / std::sqrt(float(d)));
    Add(t, rng, pre + "feed_forward.w3.weight", {t.inner, d}, 1.0f / std::sqrt(float(d)));
    Add(t, rng, pre + "feed_forward.w2.weight", {d, t.inner}, 0.5f / std::sqrt(float(t.inner)));
  }
  if (t.pre_norm) Add(t, rng, "pre_mm_projector_norm.weight", {d}, 0.1f, 1.0f);
  if (t.merge > 1) Add(t, rng, "patch_merger.merging_layer.weight", {d, d * t.merge * t.merge}, 0.5f / std::sqrt(float(d)));
  Add(t, rng, "vision_language_adapter.w_in.weight", {t.text_dim, d}, 1.0f / std::sqrt(float(d)));
  Add(t, rng, "vision_language_adapter.w_out.weight", {t.text_dim, t.text_dim}, 1.0f / std::sqrt(float(t.text_dim)));
  if (t.bias) {
    Add(t, rng, "vision_language_adapter.w_in.bias", {t.text_dim}, 0.1f);
    Add(t, rng, "vision_language_adapter.w_out.bias", {t.text_dim}, 0.02f);
  }
  std::vector<formats::TensorSpec> specs;
  for (const auto& [name, shape] : t.shapes) specs.push_back({name, DType::kF32, shape});
  {
    formats::SafetensorsWriter writer(dir.File("consolidated.safetensors"), specs);
    for (const auto& [name, values] : t.tensors) {
      writer.Append({reinterpret_cast<const uint8_t*>(values.data()), values.size() * 4});
    }
    writer.Finish();
  }
  std::ofstream params(dir.File("params.json"));
  params << R"({"dim": )" << t.text_dim << R"(, "n_layers": 1, "head_dim": 8, "hidden_dim": 64, "n_heads": 5,
    "n_kv_heads": 5, "norm_eps": 1e-5, "vocab_size": 300, "rope_theta": 1e6,
    "multimodal": {"vision_encoder_args": {"hidden_size": )" << d << R"(, "num_channels": 3, "image_size": )"
         << t.image_size << R"(, "patch_size": )" << p << R"(, "intermediate_size": )" << t.inner
         << R"(, "num_hidden_layers": )" << t.layers << R"(, "num_attention_heads": )" << t.heads
         << R"(, "rope_theta": 10000.0, "image_token_id": 10, "image_break_token_id": 12, "image_end_token_id": 13,
      "adapter_bias": )" << (t.bias ? "true" : "false") << R"(, "spatial_merge_size": )" << t.merge
         << R"(, "add_pre_mm_projector_layer_norm": )" << (t.pre_norm ? "true" : "false")
         << R"(, "mm_projector_id": ")" << (t.merge > 1 ? "patch_merge" : "") << R"("}}})";
  return dir.path();
}

// --- the float64 reference (written from the README's description, not from bora's code) ---
using Mat = std::vector<double>;

Mat Linear(const Mat& x, int64_t rows, const std::vector<float>& w, int64_t out, int64_t in) {
  Mat y(static_cast<size_t>(rows * out), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

Mat RmsNorm(const Mat& x, int64_t rows, int64_t d, const std::vector<float>& w) {
  Mat y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[r * d + i] * x[r * d + i];
    const double inv = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int64_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * inv * w[i];
  }
  return y;
}

Mat ReferenceEncode(Tower& t, const std::vector<float>& pixels, int64_t width, int64_t height) {
  const int64_t d = t.d, p = t.patch, hd = d / t.heads, gw = width / p, gh = height / p, n = gw * gh;
  Mat patches(static_cast<size_t>(n * 3 * p * p));
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c)
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t y = 0; y < p; ++y)
          for (int64_t x = 0; x < p; ++x)
            patches[(r * gw + c) * 3 * p * p + (ch * p + y) * p + x] = pixels[ch * width * height + (r * p + y) * width + c * p + x];
  Mat h = Linear(patches, n, t.tensors["vision_encoder.patch_conv.weight"], d, 3 * p * p);
  h = RmsNorm(h, n, d, t.tensors["vision_encoder.ln_pre.weight"]);
  auto rope = [&](Mat& m) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = i / gw, c = i % gw;
      for (int64_t head = 0; head < t.heads; ++head)
        for (int64_t k = 0; k < hd / 2; ++k) {
          // Pair k: rows on the even-indexed frequencies, columns on the odd ones.
          const int64_t j = k < hd / 4 ? 2 * k : 2 * (k - hd / 4) + 1;
          const double angle = (k < hd / 4 ? r : c) * std::pow(1e4, -2.0 * j / hd);
          double& a = m[i * d + head * hd + 2 * k];
          double& b = m[i * d + head * hd + 2 * k + 1];
          const double x0 = a, x1 = b;
          a = x0 * std::cos(angle) - x1 * std::sin(angle);
          b = x0 * std::sin(angle) + x1 * std::cos(angle);
        }
    }
  };
  for (int64_t l = 0; l < t.layers; ++l) {
    const std::string pre = "vision_encoder.transformer.layers." + std::to_string(l) + ".";
    Mat x = RmsNorm(h, n, d, t.tensors[pre + "attention_norm.weight"]);
    Mat q = Linear(x, n, t.tensors[pre + "attention.wq.weight"], d, d);
    Mat k = Linear(x, n, t.tensors[pre + "attention.wk.weight"], d, d);
    Mat v = Linear(x, n, t.tensors[pre + "attention.wv.weight"], d, d);
    rope(q);
    rope(k);
    Mat att(static_cast<size_t>(n * d), 0.0);
    for (int64_t head = 0; head < t.heads; ++head)
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> s(static_cast<size_t>(n));
        double mx = -1e300;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e) dot += q[i * d + head * hd + e] * k[j * d + head * hd + e];
          s[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t e = 0; e < hd; ++e) att[i * d + head * hd + e] += s[j] / z * v[j * d + head * hd + e];
      }
    Mat o = Linear(att, n, t.tensors[pre + "attention.wo.weight"], d, d);
    for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
    x = RmsNorm(h, n, d, t.tensors[pre + "ffn_norm.weight"]);
    Mat g = Linear(x, n, t.tensors[pre + "feed_forward.w1.weight"], t.inner, d);
    Mat u = Linear(x, n, t.tensors[pre + "feed_forward.w3.weight"], t.inner, d);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
    Mat f = Linear(g, n, t.tensors[pre + "feed_forward.w2.weight"], d, t.inner);
    for (size_t i = 0; i < h.size(); ++i) h[i] += f[i];
  }
  if (t.pre_norm) h = RmsNorm(h, n, d, t.tensors["pre_mm_projector_norm.weight"]);
  int64_t rows = n;
  if (t.merge > 1) {
    // torch.nn.functional.unfold of the [d, gh, gw] grid with kernel = stride = s.
    const int64_t s = t.merge, mw = gw / s, mh = gh / s;
    Mat unfolded(static_cast<size_t>(mw * mh * d * s * s));
    for (int64_t br = 0; br < mh; ++br)
      for (int64_t bc = 0; bc < mw; ++bc)
        for (int64_t ch = 0; ch < d; ++ch)
          for (int64_t ki = 0; ki < s; ++ki)
            for (int64_t kj = 0; kj < s; ++kj)
              unfolded[(br * mw + bc) * d * s * s + ch * s * s + ki * s + kj] = h[((br * s + ki) * gw + bc * s + kj) * d + ch];
    rows = mw * mh;
    h = Linear(unfolded, rows, t.tensors["patch_merger.merging_layer.weight"], d, d * s * s);
  }
  Mat a = Linear(h, rows, t.tensors["vision_language_adapter.w_in.weight"], t.text_dim, d);
  if (t.bias) for (int64_t r = 0; r < rows; ++r) for (int64_t i = 0; i < t.text_dim; ++i) a[r * t.text_dim + i] += t.tensors["vision_language_adapter.w_in.bias"][i];
  for (double& x : a) x = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  Mat out = Linear(a, rows, t.tensors["vision_language_adapter.w_out.weight"], t.text_dim, t.text_dim);
  if (t.bias) for (int64_t r = 0; r < rows; ++r) for (int64_t i = 0; i < t.text_dim; ++i) out[r * t.text_dim + i] += t.tensors["vision_language_adapter.w_out.bias"][i];
  return out;
}

image::PreprocessedImage RandomImage(int64_t width, int64_t height, int64_t unit, uint32_t seed) {
  image::PreprocessedImage image;
  image.grid = {width / unit, height / unit, width, height};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  image.pixels.resize(static_cast<size_t>(3 * width * height));
  for (float& v : image.pixels) v = normal(rng);
  return image;
}

void ExpectMatchesReference(Tower& t, uint32_t seed, int64_t width, int64_t height) {
  TempDir dir;
  const std::string path = WriteTower(dir, t, seed);
  const formats::ModelFolder folder = formats::InspectModelFolder(path);
  ASSERT_TRUE(folder.params.vision.has_value());
  ops::ComputeContext ctx(2);
  auto encoder = VisionEncoder::Load(folder, t.text_dim, std::nullopt, ctx);
  const image::PreprocessedImage image = RandomImage(width, height, t.patch * t.merge, seed + 1);
  ASSERT_EQ(encoder->OutputRows(image), image.image_tokens());
  std::vector<float> out(static_cast<size_t>(image.image_tokens() * t.text_dim));
  encoder->Encode(ctx, image, out);
  const Mat expected = ReferenceEncode(t, image.pixels, width, height);
  ASSERT_EQ(expected.size(), out.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    worst = std::max(worst, std::fabs(out[i] - expected[i]));
    scale = std::max(scale, std::fabs(expected[i]));
  }
  EXPECT_LE(worst, 1e-4 * std::max(1.0, scale)) << "largest value " << scale;
  // The image alone: encoding it again (after another image) gives the same bits.
  std::vector<float> other(static_cast<size_t>(4 * t.text_dim));
  const image::PreprocessedImage small = RandomImage(t.patch * t.merge * 2, t.patch * t.merge * 2, t.patch * t.merge, 99);
  other.resize(static_cast<size_t>(small.image_tokens() * t.text_dim));
  encoder->Encode(ctx, small, other);
  std::vector<float> again(out.size());
  encoder->Encode(ctx, image, again);
  EXPECT_EQ(again, out);
}

TEST(VisionEncoder, PatchMergerAndPreProjectorNormMatchAFloat64Reference) {
  Tower t;  // Mistral Small 3.1 style: merge 2, pre-projector norm, no adapter bias
  ExpectMatchesReference(t, 5, 24, 16);  // 6x4 patches -> 3x2 merged tokens
}

TEST(VisionEncoder, PixtralStyleTowerMatchesAFloat64Reference) {
  Tower t;
  t.merge = 1;
  t.pre_norm = false;
  t.bias = true;
  ExpectMatchesReference(t, 7, 20, 12);  // 5x3 patches, non-square
}

TEST(VisionEncoder, RefusesImagesBeyondTheRopeTableOrOffTheGrid) {
  Tower t;
  TempDir dir;
  const formats::ModelFolder folder = formats::InspectModelFolder(WriteTower(dir, t, 3));
  ops::ComputeContext ctx(1);
  auto encoder = VisionEncoder::Load(folder, t.text_dim, std::nullopt, ctx);
  const image::PreprocessedImage big = RandomImage(64, 8, 8, 1);  // 16 patches a side > 32 / 4
  std::vector<float> out(static_cast<size_t>(big.image_tokens() * t.text_dim));
  EXPECT_THROW(encoder->Encode(ctx, big, out), InvalidArgument);
  image::PreprocessedImage odd = RandomImage(12, 8, 4, 2);  // 12 px is not a multiple of 4 x 2
  EXPECT_THROW(encoder->Encode(ctx, odd, out), InvalidArgument);
}

TEST(VisionParams, DefaultsUnknownKeysAndForms) {
  const std::string base = R"({"dim": 64, "n_layers": 1, "head_dim": 16, "hidden_dim": 128, "n_heads": 4, "n_kv_heads": 4,
    "norm_eps": 1e-5, "vocab_size": 300, )";
  // Pixtral 12B's nine keys: the later fields take mistral-inference's defaults.
  const formats::ModelParams pixtral = formats::ParseMistralParams(
      base + R"("vision_encoder": {"hidden_size": 1024, "num_channels": 3, "image_size": 1024, "patch_size": 16,
      "rope_theta": 10000.0, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
      "image_token_id": 10}})", "params.json");
  ASSERT_TRUE(pixtral.vision.has_value());
  EXPECT_TRUE(pixtral.vision->adapter_bias);
  EXPECT_EQ(pixtral.vision->spatial_merge_size, 1);
  EXPECT_FALSE(pixtral.vision->patch_merger);
  EXPECT_FALSE(pixtral.vision->add_pre_mm_projector_layer_norm);
  EXPECT_EQ(pixtral.vision->head_dim(), 64);
  try {
    formats::ParseMistralParams(base + R"("vision_encoder": {"hidden_size": 64, "image_size": 64, "patch_size": 16,
        "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "use_cls_token": true}})",
                                "params.json");
    FAIL() << "an unknown vision key was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use_cls_token"), std::string::npos) << e.what();
  }
  EXPECT_THROW(formats::ParseMistralParams(base + R"("vision_encoder": {"hidden_size": 64, "image_size": 64,
      "patch_size": 16, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
      "mm_projector_id": "mlp"}})", "params.json"), Unsupported);
  EXPECT_THROW(formats::ParseMistralParams(base + R"("multimodal": {"whisper_model_args": {}}})", "params.json"),
               Unsupported);
}

}  // namespace
}  // namespace bora::vision
