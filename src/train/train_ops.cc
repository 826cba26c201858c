// Training forward/backward ops in f32 (see train_ops.h for shapes).
#include "train/train_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "kernels/rmsnorm.h"
#include "ops/gemm.h"

namespace bora::train {

void RmsNormForward(ops::ComputeContext& ctx, const float* x, const float* weight, float* out,
                    float* inverse_rms, int64_t rows, int64_t dim, float eps) {
  ctx.pool().ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      const float* row = x + t * dim;
      kernels::RmsNorm(row, weight, out + t * dim, dim, eps);
      // The same inverse RMS the kernel computes (sum in f64, mean rounded to f32).
      double sum_squares = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum_squares += static_cast<double>(row[i]) * row[i];
      const float mean = static_cast<float>(sum_squares / static_cast<double>(dim));
      inverse_rms[t] = 1.0f / std::sqrt(mean + eps);
    }
  });
}

void RmsNormBackward(ops::ComputeContext& ctx, const float* x, const float* weight,
                     const float* inverse_rms, const float* dy, float* dx, int64_t rows,
                     int64_t dim) {
  ctx.pool().ParallelFor(rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      const float* xr = x + t * dim;
      const float* dyr = dy + t * dim;
      float* dxr = dx + t * dim;
      const double r = inverse_rms[t];
      double dot = 0.0;  // sum_i (w_i dy_i) x_i
      for (int64_t i = 0; i < dim; ++i) dot += static_cast<double>(weight[i]) * dyr[i] * xr[i];
      const double coefficient = r * r * r * dot / static_cast<double>(dim);
      for (int64_t i = 0; i < dim; ++i) {
        dxr[i] += static_cast<float>(r * weight[i] * dyr[i] - coefficient * xr[i]);
      }
    }
  });
}

void ScaleRows(float* x, int64_t rows, int64_t width, std::span<const int32_t> positions, const float* scales) {
  for (int64_t t = 0; t < rows; ++t) {
    const float scale = scales[positions[t]];
    float* row = x + t * width;
    for (int64_t i = 0; i < width; ++i) row[i] *= scale;
  }
}

void RopeRows(float* x, int64_t rows, int64_t heads, int64_t head_dim,
              std::span<const int32_t> positions, const float* cos_sin, bool inverse) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < rows; ++t) {
    const float* table = cos_sin + static_cast<int64_t>(positions[t]) * half * 2;
    for (int64_t h = 0; h < heads; ++h) {
      float* pairs = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float c = table[2 * i];
        const float s = inverse ? -table[2 * i + 1] : table[2 * i + 1];
        const float re = pairs[2 * i], im = pairs[2 * i + 1];
        pairs[2 * i] = re * c - im * s;
        pairs[2 * i + 1] = re * s + im * c;
      }
    }
  }
}

namespace {

struct AttentionWork {
  int64_t start;  // first row of the block
  int64_t length;
  int64_t group;  // kv head
};

std::vector<AttentionWork> AttentionItems(const AttentionGeometry& g, int64_t* longest) {
  if (g.block_starts.empty() || g.block_starts[0] != 0) {
    throw InvalidArgument("attention blocks must start at row 0");
  }
  std::vector<AttentionWork> items;
  *longest = 0;
  for (size_t b = 0; b < g.block_starts.size(); ++b) {
    const int64_t start = g.block_starts[b];
    const int64_t end = b + 1 < g.block_starts.size() ? g.block_starts[b + 1] : g.rows;
    if (end <= start || end > g.rows) throw InvalidArgument("attention blocks must be ascending");
    *longest = std::max(*longest, end - start);
    for (int64_t group = 0; group < g.n_kv_heads; ++group)
      items.push_back({start, end - start, group});
  }
  return items;
}

// Causal products skip the upper triangle in tiles of this many rows (keys past a tile's last
// row are never formed): about half the work of the full length x length products.
constexpr int64_t kCausalTile = 64;

// scores[i, j] of one head over one block (rows i of q, keys j of k), unscaled, for j < the end
// of i's row tile (what lies beyond is never read).
void Scores(const kernels::KernelSet& kernels, const float* q, int64_t q_stride, const float* k,
            int64_t k_stride, int64_t length, int64_t head_dim, float* scores, float* pack) {
  for (int64_t r0 = 0; r0 < length; r0 += kCausalTile) {
    const int64_t r1 = std::min(length, r0 + kCausalTile);
    ops::GemmSerial(kernels, r1 - r0, r1, head_dim,
                    ops::StridedMatrix{q + r0 * q_stride, q_stride, 1},
                    ops::StridedMatrix{k, 1, k_stride}, scores + r0 * length, length, false, pack);
  }
}

// out[i, :] (+)= sum_{j <= i} m[i, j] x[j, :] for a lower-triangular m [length, length]
// (row stride length) and x [length, width] (row stride x_stride).
void CausalTimes(const kernels::KernelSet& kernels, const float* m, int64_t length, const float* x,
                 int64_t x_stride, int64_t width, float* out, int64_t out_stride, bool accumulate,
                 float* pack) {
  for (int64_t r0 = 0; r0 < length; r0 += kCausalTile) {
    const int64_t r1 = std::min(length, r0 + kCausalTile);
    ops::GemmSerial(kernels, r1 - r0, width, r1, ops::StridedMatrix{m + r0 * length, length, 1},
                    ops::StridedMatrix{x, x_stride, 1}, out + r0 * out_stride, out_stride,
                    accumulate, pack);
  }
}

// out[j, :] (+)= sum_{i >= j} m[i, j] x[i, :]: the transpose of a lower-triangular m times x.
void CausalTransposeTimes(const kernels::KernelSet& kernels, const float* m, int64_t length,
                          const float* x, int64_t x_stride, int64_t width, float* out,
                          int64_t out_stride, bool accumulate, float* pack) {
  for (int64_t c0 = 0; c0 < length; c0 += kCausalTile) {
    const int64_t c1 = std::min(length, c0 + kCausalTile);
    // A[jj][ii] = m[c0 + ii][c0 + jj]; rows i < c0 hold zeros for these keys.
    ops::GemmSerial(kernels, c1 - c0, width, length - c0,
                    ops::StridedMatrix{m + c0 * length + c0, 1, length},
                    ops::StridedMatrix{x + c0 * x_stride, x_stride, 1}, out + c0 * out_stride,
                    out_stride, accumulate, pack);
  }
}

}  // namespace

void AttentionForward(ops::ComputeContext& ctx, const AttentionGeometry& g, const float* q,
                      const float* k, const float* v, float* o, float* lse) {
  int64_t longest = 0;
  const std::vector<AttentionWork> items = AttentionItems(g, &longest);
  const int64_t q_stride = g.n_heads * g.head_dim, kv_stride = g.n_kv_heads * g.head_dim;
  const int64_t heads_per_group = g.n_heads / g.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
  const int64_t per_thread = longest * longest + ops::GemmPackFloats();
  std::vector<float> scratch(static_cast<size_t>(per_thread * ctx.num_threads()));
  const kernels::KernelSet& kernels = ctx.kernels();
  ctx.pool().ParallelFor(
      static_cast<int64_t>(items.size()), [&](int64_t begin, int64_t end, int thread) {
        float* p = scratch.data() + thread * per_thread;
        float* pack = p + longest * longest;
        for (int64_t item = begin; item < end; ++item) {
          const AttentionWork& w = items[item];
          const int64_t n = w.length;
          const float* kg = k + w.start * kv_stride + w.group * g.head_dim;
          const float* vg = v + w.start * kv_stride + w.group * g.head_dim;
          for (int64_t hh = 0; hh < heads_per_group; ++hh) {
            const int64_t h = w.group * heads_per_group + hh;
            const float* qh = q + w.start * q_stride + h * g.head_dim;
            Scores(kernels, qh, q_stride, kg, kv_stride, n, g.head_dim, p, pack);
            for (int64_t i = 0; i < n; ++i) {
              float* row = p + i * n;
              float max_score = -INFINITY;
              for (int64_t j = 0; j <= i; ++j) {
                row[j] *= scale;
                max_score = std::max(max_score, row[j]);
              }
              for (int64_t j = 0; j <= i; ++j) row[j] -= max_score;
              kernels.exp_inplace(row, i + 1);
              double sum = 0.0;
              for (int64_t j = 0; j <= i; ++j) sum += row[j];
              const float inverse = static_cast<float>(1.0 / sum);
              for (int64_t j = 0; j <= i; ++j) row[j] *= inverse;
              std::fill(row + i + 1, row + n, 0.0f);
              lse[(w.start + i) * g.n_heads + h] = max_score + static_cast<float>(std::log(sum));
            }
            CausalTimes(kernels, p, n, vg, kv_stride, g.head_dim,
                        o + w.start * q_stride + h * g.head_dim, q_stride, false, pack);
          }
        }
      });
}

void AttentionBackward(ops::ComputeContext& ctx, const AttentionGeometry& g, const float* q,
                       const float* k, const float* v, const float* o, const float* lse,
                       const float* d_out, float* dq, float* dk, float* dv) {
  int64_t longest = 0;
  const std::vector<AttentionWork> items = AttentionItems(g, &longest);
  const int64_t q_stride = g.n_heads * g.head_dim, kv_stride = g.n_kv_heads * g.head_dim;
  const int64_t heads_per_group = g.n_heads / g.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
  const int64_t per_thread = 2 * longest * longest + longest + ops::GemmPackFloats();
  std::vector<float> scratch(static_cast<size_t>(per_thread * ctx.num_threads()));
  const kernels::KernelSet& kernels = ctx.kernels();
  ctx.pool().ParallelFor(static_cast<int64_t>(items.size()), [&](int64_t begin, int64_t end,
                                                                 int thread) {
    float* p = scratch.data() + thread * per_thread;
    float* ds = p + longest * longest;
    float* delta = ds + longest * longest;
    float* pack = delta + longest;
    for (int64_t item = begin; item < end; ++item) {
      const AttentionWork& w = items[item];
      const int64_t n = w.length;
      const float* kg = k + w.start * kv_stride + w.group * g.head_dim;
      const float* vg = v + w.start * kv_stride + w.group * g.head_dim;
      float* dkg = dk + w.start * kv_stride + w.group * g.head_dim;
      float* dvg = dv + w.start * kv_stride + w.group * g.head_dim;
      for (int64_t hh = 0; hh < heads_per_group; ++hh) {
        const int64_t h = w.group * heads_per_group + hh;
        const int64_t offset = w.start * q_stride + h * g.head_dim;
        // P again from the scores and the saved log-sum-exp.
        Scores(kernels, q + offset, q_stride, kg, kv_stride, n, g.head_dim, p, pack);
        for (int64_t i = 0; i < n; ++i) {
          float* row = p + i * n;
          const float row_lse = lse[(w.start + i) * g.n_heads + h];
          for (int64_t j = 0; j <= i; ++j) row[j] = row[j] * scale - row_lse;
          kernels.exp_inplace(row, i + 1);
          std::fill(row + i + 1, row + n, 0.0f);
          double sum = 0.0;  // delta_i = do_i · o_i
          for (int64_t d = 0; d < g.head_dim; ++d) {
            sum += static_cast<double>(d_out[offset + i * q_stride + d]) *
                   o[offset + i * q_stride + d];
          }
          delta[i] = static_cast<float>(sum);
        }
        // dP = dO · V^T (the same causal tiles as the scores), then dS = P (dP - delta) * scale,
        // zero above the diagonal as P is.
        Scores(kernels, d_out + offset, q_stride, vg, kv_stride, n, g.head_dim, ds, pack);
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t j = 0; j <= i; ++j)
            ds[i * n + j] = p[i * n + j] * (ds[i * n + j] - delta[i]) * scale;
          std::fill(ds + i * n + i + 1, ds + (i + 1) * n, 0.0f);
        }
        const bool accumulate = hh > 0;  // heads of one group share dk, dv
        CausalTimes(kernels, ds, n, kg, kv_stride, g.head_dim, dq + offset, q_stride, false, pack);
        CausalTransposeTimes(kernels, ds, n, q + offset, q_stride, g.head_dim, dkg, kv_stride,
                             accumulate, pack);
        CausalTransposeTimes(kernels, p, n, d_out + offset, q_stride, g.head_dim, dvg, kv_stride,
                             accumulate, pack);
      }
    }
  });
}

void SwiGluForward(ops::ComputeContext& ctx, const float* gate, const float* up, float* h,
                   int64_t n) {
  ctx.pool().ParallelFor(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  });
}

void SwiGluBackward(ops::ComputeContext& ctx, const float* gate, const float* up, const float* dh,
                    float* d_gate, float* d_up, int64_t n) {
  ctx.pool().ParallelFor(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const float sigmoid = 1.0f / (1.0f + std::exp(-gate[i]));
      const float silu = gate[i] * sigmoid;
      d_up[i] = dh[i] * silu;
      d_gate[i] = dh[i] * up[i] * sigmoid * (1.0f + gate[i] * (1.0f - sigmoid));
    }
  });
}

void RouterSoftmaxBackward(const int32_t* chosen, const float* weights, const float* d_weights,
                           int64_t top_k, float* d_logits, int64_t experts) {
  std::fill(d_logits, d_logits + experts, 0.0f);
  double weighted = 0.0;
  for (int64_t s = 0; s < top_k; ++s) weighted += static_cast<double>(weights[s]) * d_weights[s];
  for (int64_t s = 0; s < top_k; ++s) {
    d_logits[chosen[s]] += static_cast<float>(weights[s] * (d_weights[s] - weighted));
  }
}

CrossEntropyResult CrossEntropy(ops::ComputeContext& ctx, const float* hidden, int64_t rows,
                                int64_t dim, const MatrixView& output, const int32_t* targets,
                                const uint8_t* mask, double loss_scale, float* d_hidden,
                                ops::GemmPrecision precision) {
  const int64_t vocab = output.rows;
  std::vector<int64_t> selected;  // rows that count (masked targets only)
  for (int64_t t = 0; t < rows; ++t) {
    if (!mask[t]) continue;
    if (targets[t] < 0 || targets[t] >= vocab) {
      throw InvalidArgument("training target id " + std::to_string(targets[t]) +
                            " is outside the vocabulary");
    }
    selected.push_back(t);
  }
  CrossEntropyResult result;
  result.count = static_cast<int64_t>(selected.size());
  constexpr int64_t kChunk = 64;  // rows of logits formed at once: 64 x vocab floats
  std::vector<float> gathered(static_cast<size_t>(kChunk * dim)),
      logits(static_cast<size_t>(kChunk * vocab));
  std::vector<float> d_gathered(static_cast<size_t>(kChunk * dim));
  std::vector<double> row_loss(static_cast<size_t>(kChunk));
  std::vector<uint8_t> row_correct(static_cast<size_t>(kChunk));
  const kernels::KernelSet& kernels = ctx.kernels();
  for (int64_t first = 0; first < result.count; first += kChunk) {
    const int64_t count = std::min(kChunk, result.count - first);
    for (int64_t r = 0; r < count; ++r) {
      std::copy_n(hidden + selected[first + r] * dim, dim, gathered.data() + r * dim);
    }
    ops::WeightGemm(ctx, gathered.data(), count, dim, output, false, logits.data(), vocab, false,
                    precision);
    ctx.pool().ParallelFor(count, [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        float* row = logits.data() + r * vocab;
        const int32_t target = targets[selected[first + r]];
        const float target_logit = row[target];
        float max_logit = -INFINITY;
        for (int64_t i = 0; i < vocab; ++i) max_logit = std::max(max_logit, row[i]);
        row_correct[r] = target_logit >= max_logit ? 1 : 0;
        for (int64_t i = 0; i < vocab; ++i) row[i] -= max_logit;
        kernels.exp_inplace(row, vocab);
        double sum = 0.0;
        for (int64_t i = 0; i < vocab; ++i) sum += row[i];
        row_loss[r] = static_cast<double>(max_logit) + std::log(sum) - target_logit;
        if (d_hidden == nullptr) continue;
        // d loss / d logits = softmax - one_hot, times the loss scale.
        const float factor = static_cast<float>(loss_scale / sum);
        for (int64_t i = 0; i < vocab; ++i) row[i] *= factor;
        row[target] -= static_cast<float>(loss_scale);
      }
    });
    for (int64_t r = 0; r < count; ++r) {
      result.loss_sum += row_loss[r];
      result.correct += row_correct[r];
    }
    if (d_hidden == nullptr) continue;
    ops::WeightGemm(ctx, logits.data(), count, vocab, output, true, d_gathered.data(), dim, false,
                    precision);
    for (int64_t r = 0; r < count; ++r) {
      float* target_row = d_hidden + selected[first + r] * dim;
      const float* source = d_gathered.data() + r * dim;
      for (int64_t i = 0; i < dim; ++i) target_row[i] += source[i];
    }
  }
  return result;
}

}  // namespace bora::train
