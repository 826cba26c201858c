// Threaded f32 matrix products for training: C (+)= A · B with B an f32 matrix read through
// strides (so B or B^T), or a frozen weight matrix in any stored format as W^T (the nn.Linear
// forward) or W (the gradient with respect to the linear's input).
#pragma once

#include <cstdint>

#include "kernels/kernel_set.h"
#include "ops/compute_context.h"
#include "tensor/matrix_view.h"

namespace bora::ops {

// Element (i, j) at data[i * row_stride + j * col_stride].
struct StridedMatrix {
  const float* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
};

// Floats of packing scratch GemmSerial needs for any k.
int64_t GemmPackFloats();

// C[m, n] = (accumulate ? C : 0) + A[m, k] · B[k, n]; C row stride ldc, contiguous columns.
// C must not alias A or B. Results do not depend on the thread count.
void Gemm(ComputeContext& ctx, int64_t m, int64_t n, int64_t k, StridedMatrix a, StridedMatrix b,
          float* c, int64_t ldc, bool accumulate);

// The same on the calling thread only (inside an already parallel loop); `pack` holds
// GemmPackFloats() floats.
void GemmSerial(const kernels::KernelSet& kernels, int64_t m, int64_t n, int64_t k, StridedMatrix a,
                StridedMatrix b, float* c, int64_t ldc, bool accumulate, float* pack);

// How a weight product may compute.
enum class GemmPrecision {
  kF32,   // f32 activations, weights upcast exactly
  kBf16,  // mixed precision: activations rounded to bf16, products summed in f32 (as PyTorch's
          // bf16 matmul) when W is bf16 or q8/q4 (dequantized values rounded to bf16) and the
          // CPU has AVX512-BF16; otherwise as kF32
};

// W is [out, in] in any format (F32/BF16/F16 dense, q8/q4 packed; values as dequantized).
//   input_gradient = false: C[m, out] (+)= A[m, in] · W^T
//   input_gradient = true:  C[m, in]  (+)= A[m, out] · W
// A row stride lda (contiguous columns), C row stride ldc.
void WeightGemm(ComputeContext& ctx, const float* a, int64_t m, int64_t lda, const MatrixView& w,
                bool input_gradient, float* c, int64_t ldc, bool accumulate,
                GemmPrecision precision = GemmPrecision::kF32);

// Whether WeightGemm with kBf16 takes the bf16 path for `w` on this context's kernels.
bool UsesBf16Gemm(const ComputeContext& ctx, const MatrixView& w);

}  // namespace bora::ops
