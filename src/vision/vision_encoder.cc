// Pixtral vision encoder forward: patch convolution as a GEMM, ln_pre, 2-D RoPE transformer with
// bidirectional attention inside the image, optional pre-projector norm and patch merger, adapter.
#include "vision/vision_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace bora::vision {
namespace {

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void AddBias(float* rows, const std::vector<float>& bias, int64_t count) {
  if (bias.empty()) return;
  const auto width = static_cast<int64_t>(bias.size());
  for (int64_t r = 0; r < count; ++r) AddInPlace(rows + r * width, bias.data(), width);
}

// Rotates interleaved pairs of each head of `rows` [patches, heads * hd] by the 2-D table.
void ApplyRope2d(float* rows, int64_t patches, int64_t heads, int64_t hd, int64_t grid_w, int64_t side,
                 const std::vector<float>& table) {
  for (int64_t i = 0; i < patches; ++i) {
    const int64_t r = i / grid_w, c = i % grid_w;
    const float* cs = table.data() + (r * side + c) * hd;  // hd/2 pairs of (cos, sin)
    float* row = rows + i * heads * hd;
    for (int64_t h = 0; h < heads; ++h) {
      float* x = row + h * hd;
      for (int64_t k = 0; k < hd / 2; ++k) {
        const float cos = cs[2 * k], sin = cs[2 * k + 1];
        const float a = x[2 * k], b = x[2 * k + 1];
        x[2 * k] = a * cos - b * sin;
        x[2 * k + 1] = a * sin + b * cos;
      }
    }
  }
}

}  // namespace

std::unique_ptr<VisionEncoder> VisionEncoder::Load(const formats::ModelFolder& folder, int64_t text_dim,
                                                   std::optional<DType> dtype, ops::ComputeContext& ctx) {
  VisionWeights weights = LoadVisionWeights(folder, text_dim);
  if (dtype) ConvertVisionWeights(weights, *dtype, ctx);
  return std::unique_ptr<VisionEncoder>(new VisionEncoder(*folder.params.vision, text_dim, std::move(weights)));
}

VisionEncoder::VisionEncoder(formats::VisionParams params, int64_t text_dim, VisionWeights weights)
    : params_(params), text_dim_(text_dim), weights_(std::move(weights)) {
  // mistral-inference precompute_freqs_cis_2d, in float32 as the reference builds it:
  // f_j = 1 / theta^(2j/hd); rows take the even-indexed frequencies, columns the odd ones.
  const int64_t hd = params_.head_dim();
  rope_side_ = std::max<int64_t>(1, params_.image_size / params_.patch_size);
  std::vector<float> freqs(static_cast<size_t>(hd / 2));
  for (int64_t j = 0; j < hd / 2; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(hd);
    freqs[j] = 1.0f / static_cast<float>(std::pow(static_cast<double>(static_cast<float>(params_.rope_theta)),
                                                  static_cast<double>(exponent)));
  }
  rope_cos_sin_.resize(static_cast<size_t>(rope_side_ * rope_side_ * hd));
  for (int64_t r = 0; r < rope_side_; ++r) {
    for (int64_t c = 0; c < rope_side_; ++c) {
      float* cs = rope_cos_sin_.data() + (r * rope_side_ + c) * hd;
      for (int64_t k = 0; k < hd / 2; ++k) {
        const float angle = k < hd / 4 ? static_cast<float>(r) * freqs[2 * k]
                                       : static_cast<float>(c) * freqs[2 * (k - hd / 4) + 1];
        cs[2 * k] = static_cast<float>(std::cos(static_cast<double>(angle)));
        cs[2 * k + 1] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
    }
  }
}

int64_t VisionEncoder::OutputRows(const image::PreprocessedImage& image) const {
  const int64_t unit = params_.patch_size * (params_.patch_merger ? params_.spatial_merge_size : 1);
  return (image.grid.width / unit) * (image.grid.height / unit);
}

void VisionEncoder::Attention(ops::ComputeContext& ctx, const VisionLayerWeights& layer, int64_t rows,
                              int64_t cols, const float* normed, float* out) const {
  const int64_t d = params_.hidden_size, heads = params_.num_attention_heads, hd = params_.head_dim();
  std::vector<float> q(static_cast<size_t>(rows * d)), k(q.size()), v(q.size()), attended(q.size());
  const MatrixView* projections[] = {&layer.wq, &layer.wk, &layer.wv};
  float* outputs[] = {q.data(), k.data(), v.data()};
  ops::MatMulShared(ctx, normed, rows, projections, outputs);
  ApplyRope2d(q.data(), rows, heads, hd, cols, rope_side_, rope_cos_sin_);
  ApplyRope2d(k.data(), rows, heads, hd, cols, rope_side_, rope_cos_sin_);
  // Per head: scores = q_h k_h^T / sqrt(hd) [rows, rows] and out_h = softmax(scores) v_h, both
  // as GEMMs over contiguous copies (k_h [rows, hd], v_h^T [hd, rows]).
  std::vector<float> q_h(static_cast<size_t>(rows * hd)), k_h(q_h.size()), v_t(q_h.size()), o_h(q_h.size());
  std::vector<float> scores(static_cast<size_t>(rows * rows));
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < hd; ++j) {
        q_h[i * hd + j] = q[i * d + h * hd + j] * scale;
        k_h[i * hd + j] = k[i * d + h * hd + j];
        v_t[j * rows + i] = v[i * d + h * hd + j];
      }
    }
    ops::MatMul(ctx, q_h.data(), rows, MatrixView{DType::kF32, k_h.data(), rows, hd, nullptr}, scores.data());
    ctx.pool().ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) {
        float* s = scores.data() + i * rows;
        const float max = *std::max_element(s, s + rows);
        double sum = 0;
        for (int64_t j = 0; j < rows; ++j) {
          s[j] = std::exp(s[j] - max);
          sum += s[j];
        }
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < rows; ++j) s[j] *= inv;
      }
    });
    ops::MatMul(ctx, scores.data(), rows, MatrixView{DType::kF32, v_t.data(), hd, rows, nullptr}, o_h.data());
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(o_h.data() + i * hd, hd, attended.data() + i * d + h * hd);
    }
  }
  ops::MatMul(ctx, attended.data(), rows, layer.wo, out);
}

void VisionEncoder::Encode(ops::ComputeContext& ctx, const image::PreprocessedImage& image, std::span<float> out,
                           VisionTrace* trace) const {
  const int64_t p = params_.patch_size, d = params_.hidden_size, inner = params_.intermediate_size;
  const int64_t merge = params_.patch_merger ? params_.spatial_merge_size : 1;
  const int64_t width = image.grid.width, height = image.grid.height;
  if (width <= 0 || height <= 0 || width % (p * merge) != 0 || height % (p * merge) != 0) {
    throw InvalidArgument("image of " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels is not a multiple of the encoder's patch (" + std::to_string(p * merge) + ")");
  }
  const int64_t cols = width / p, rows_h = height / p, patches = cols * rows_h;
  if (cols > rope_side_ || rows_h > rope_side_) {
    throw InvalidArgument("image of " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels has more patches a side than the encoder's image_size (" +
                          std::to_string(params_.image_size) + ") allows; lower the tokenizer's max_image_size");
  }
  if (static_cast<int64_t>(image.pixels.size()) != 3 * width * height) {
    throw InvalidArgument("image pixel tensor does not match its size");
  }
  const int64_t out_rows = OutputRows(image);
  if (static_cast<int64_t>(out.size()) < out_rows * text_dim_) throw InvalidArgument("image embedding buffer too small");

  // Patch embedding: each patch flattened in (channel, row, column) order times the conv weight.
  const int64_t patch_len = 3 * p * p;
  std::vector<float> patch_rows(static_cast<size_t>(patches * patch_len));
  for (int64_t r = 0; r < rows_h; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float* dst = patch_rows.data() + (r * cols + c) * patch_len;
      for (int64_t ch = 0; ch < 3; ++ch) {
        for (int64_t y = 0; y < p; ++y) {
          const float* src = image.pixels.data() + ch * width * height + (r * p + y) * width + c * p;
          std::copy_n(src, p, dst + (ch * p + y) * p);
        }
      }
    }
  }
  std::vector<float> x(static_cast<size_t>(patches * d));
  ops::MatMul(ctx, patch_rows.data(), patches, weights_.patch_conv, x.data());
  if (trace != nullptr) trace->patch_embeds = x;
  constexpr float kEps = 1e-5f;  // mistral-inference's vision RMSNorm, not read from params
  ops::RmsNormRows(ctx, x.data(), weights_.ln_pre.data(), x.data(), patches, d, kEps);

  std::vector<float> normed(x.size()), block(x.size());
  std::vector<float> gate(static_cast<size_t>(patches * inner)), up(gate.size());
  for (const VisionLayerWeights& layer : weights_.layers) {
    ops::RmsNormRows(ctx, x.data(), layer.attention_norm.data(), normed.data(), patches, d, kEps);
    Attention(ctx, layer, patches, cols, normed.data(), block.data());
    AddInPlace(x.data(), block.data(), patches * d);
    ops::RmsNormRows(ctx, x.data(), layer.ffn_norm.data(), normed.data(), patches, d, kEps);
    const MatrixView* projections[] = {&layer.w1, &layer.w3};
    float* outputs[] = {gate.data(), up.data()};
    ops::MatMulShared(ctx, normed.data(), patches, projections, outputs);
    ops::SwiGlu(ctx, gate.data(), up.data(), gate.data(), patches * inner);
    ops::MatMul(ctx, gate.data(), patches, layer.w2, block.data());
    AddInPlace(x.data(), block.data(), patches * d);
  }
  if (trace != nullptr) trace->vision_out = x;
  if (!weights_.pre_mm_norm.empty()) {
    ops::RmsNormRows(ctx, x.data(), weights_.pre_mm_norm.data(), x.data(), patches, d, kEps);
  }
  const float* features = x.data();
  std::vector<float> merged;
  if (params_.patch_merger) {
    // s x s unfold (torch.nn.functional.unfold order: channel, then kernel row, then column),
    // blocks row-major, then the merging linear layer.
    const int64_t s = merge, mw = cols / s, mh = rows_h / s, wide = d * s * s;
    std::vector<float> unfolded(static_cast<size_t>(mw * mh * wide));
    for (int64_t br = 0; br < mh; ++br) {
      for (int64_t bc = 0; bc < mw; ++bc) {
        float* dst = unfolded.data() + (br * mw + bc) * wide;
        for (int64_t ki = 0; ki < s; ++ki) {
          for (int64_t kj = 0; kj < s; ++kj) {
            const float* src = x.data() + ((br * s + ki) * cols + (bc * s + kj)) * d;
            for (int64_t ch = 0; ch < d; ++ch) dst[ch * s * s + ki * s + kj] = src[ch];
          }
        }
      }
    }
    merged.resize(static_cast<size_t>(mw * mh * d));
    ops::MatMul(ctx, unfolded.data(), mw * mh, weights_.merging_layer, merged.data());
    features = merged.data();
  }
  // Adapter: w_out(gelu(w_in x + b_in)) + b_out, GELU in its exact erf form.
  std::vector<float> hidden(static_cast<size_t>(out_rows * text_dim_));
  ops::MatMul(ctx, features, out_rows, weights_.adapter_in, hidden.data());
  AddBias(hidden.data(), weights_.adapter_in_bias, out_rows);
  for (float& value : hidden) value = 0.5f * value * (1.0f + std::erf(value * 0.70710678118654752f));
  ops::MatMul(ctx, hidden.data(), out_rows, weights_.adapter_out, out.data());
  AddBias(out.data(), weights_.adapter_out_bias, out_rows);
}

std::unique_ptr<VisionEncoder> LoadVisionFor(model::Transformer& model, std::optional<DType> dtype, bool sharded) {
  const formats::ModelFolder& folder = model.folder();
  if (!folder.params.vision) return nullptr;
  if (folder.layout == formats::CheckpointLayout::kGguf) return nullptr;
  if (sharded) {
    std::fprintf(stderr, "note: %s: the vision encoder is not loaded under mpirun yet; this run reads text only\n",
                 folder.path.c_str());
    return nullptr;
  }
  // A conditional-generation config around a text-only checkpoint (a vision_config, no vision
  // weights at all): a text model.
  if (formats::CheckpointTensors::Open(folder, DType::kF32, formats::GgufDecode::kNative, true).Names().empty()) {
    std::fprintf(stderr, "note: %s: the config describes a vision tower but the weights hold none; this model reads "
                 "text only\n", folder.path.c_str());
    return nullptr;
  }
  return VisionEncoder::Load(folder, model.params().dim, dtype, model.compute());
}

void CheckImageConfig(const VisionEncoder& encoder, const image::ImageConfig& config, const std::string& where) {
  const formats::VisionParams& v = encoder.params();
  const int64_t merge = v.patch_merger ? v.spatial_merge_size : 1;
  if (config.image_token_id != v.image_token_id || config.patch_size != v.patch_size ||
      config.spatial_merge_size != merge) {
    throw FormatError(where + ": the tokenizer's image settings ([IMG] " + std::to_string(config.image_token_id) +
                      ", patch " + std::to_string(config.patch_size) + ", merge " +
                      std::to_string(config.spatial_merge_size) + ") do not match the vision encoder's ([IMG] " +
                      std::to_string(v.image_token_id) + ", patch " + std::to_string(v.patch_size) + ", merge " +
                      std::to_string(merge) + ")");
  }
}

}  // namespace bora::vision
