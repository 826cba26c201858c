// bf16 GEMM micro-kernels for training with bf16 (or dequantized) frozen weights: activations and
// weights as bfloat16 pairs, products summed in f32 (vdpbf16ps semantics, as PyTorch's bf16
// matmul on CPUs with AVX512-BF16).
#pragma once

#include <cstdint>

namespace bora::kernels {

// Packed B strips hold 16 columns of k-pairs: bp[q * 32 + 2 * j + t] = B[2q + t][j].
constexpr int64_t kGemmBf16Strip = 16;
constexpr int64_t kGemmBf16MaxRows = 12;
constexpr int64_t kGemmBf16MaxColumns = 32;  // two strips per call

// c[i * ldc + j] += sum_q sum_t A[i][2q + t] * B[2q + t][j] for i < rows (<= 12),
// j < columns (<= 32; columns 16.. come from the strip at bp + strip_stride), q < k_pairs, with
// A packed as row pairs per k-pair: A[i][2q + t] = a[q * a_pair_stride + 2i + t] (a panel of
// 12 rows has a_pair_stride 24, so the kernel reads A as one stream). a and bp are bf16 bits;
// each pair's two products are added to an f32 accumulator in sequence, so the SIMD version
// agrees with the scalar reference to f32 rounding (vdpbf16ps also flushes subnormal inputs and
// outputs to zero).
using GemmBf16StripFn = void (*)(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp,
                                 int64_t strip_stride, int64_t k_pairs, int64_t rows, float* c,
                                 int64_t ldc, int64_t columns);
// y[i] = bf16(x[i]), round to nearest even.
using F32ToBf16RowFn = void (*)(const float* x, uint16_t* y, int64_t n);

void GemmBf16StripScalar(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp,
                         int64_t strip_stride, int64_t k_pairs, int64_t rows, float* c, int64_t ldc,
                         int64_t columns);
void F32ToBf16RowScalar(const float* x, uint16_t* y, int64_t n);

// Need AVX512-BF16 (checked by the caller).
void GemmBf16StripAvx512Bf16(const uint16_t* a, int64_t a_pair_stride, const uint16_t* bp,
                             int64_t strip_stride, int64_t k_pairs, int64_t rows, float* c,
                             int64_t ldc, int64_t columns);
void F32ToBf16RowAvx512Bf16(const float* x, uint16_t* y, int64_t n);

}  // namespace bora::kernels
