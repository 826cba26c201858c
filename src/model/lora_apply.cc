// LoRA low-rank terms in the forward pass.
#include "model/lora_apply.h"

namespace bora::model {
namespace {

// Below this many multiply-adds a term runs on the calling thread (a decode step's terms are
// a few thousand: a fork-join would cost more than the arithmetic).
constexpr int64_t kParallelWork = int64_t{1} << 16;

void AddLowRank(ops::ComputeContext& ctx, const LoraMatrix& m, float scaling, const float* x,
                int64_t rows, float* mid, float* y) {
  const kernels::KernelSet& k = ctx.kernels();
  const int64_t rank = m.rank, in = m.in, out = m.out;
  const float* a = m.a.data();
  const float* b = m.b.data();
  // mid[t, j] = A[j] . x[t]
  auto down = [&](int64_t begin, int64_t end, int) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t t = 0; t < rows; ++t) mid[t * rank + j] = k.dot_f32(a + j * in, x + t * in, in);
    }
  };
  // y[t, o] += scaling * (B[o] . mid[t])
  auto up = [&](int64_t begin, int64_t end, int) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t t = 0; t < rows; ++t) {
        y[t * out + o] += scaling * k.dot_f32(b + o * rank, mid + t * rank, rank);
      }
    }
  };
  if (rows * rank * in < kParallelWork) {
    down(0, rank, 0);
  } else {
    ctx.pool().ParallelFor(rank, down);
  }
  if (rows * rank * out < kParallelWork) {
    up(0, out, 0);
  } else {
    ctx.pool().ParallelFor(out, up);
  }
}

}  // namespace

void AddLoraTerms(ops::ComputeContext& ctx, const LoraRows& rows, int64_t count, LoraTarget target,
                  const float* x, float* y) {
  int64_t first = 0;
  while (first < count) {
    const LoraAdapter* adapter = rows.adapter[first];
    int64_t end = first + 1;
    while (end < count && rows.adapter[end] == adapter) ++end;
    if (adapter != nullptr) {
      const LoraMatrix* m =
          FindLoraMatrix(adapter->layers[static_cast<size_t>(rows.layer)], rows.expert, target);
      if (m != nullptr && !m->empty()) {
        AddLowRank(ctx, *m, adapter->scaling, x + first * m->in, end - first, rows.mid,
                   y + first * m->out);
      }
    }
    first = end;
  }
}

}  // namespace bora::model
