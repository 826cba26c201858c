// f32 GEMM micro-kernels for training: C[rows, 16] += A[rows, k] · Bp[k, 16] over one packed
// 16-column strip of B, with A read through arbitrary strides (so A or A^T cost the same).
#pragma once

#include <cstdint>

namespace bora::kernels {

constexpr int64_t kGemmStrip = 16;    // columns per packed B strip
constexpr int64_t kGemmMaxRows = 12;  // rows per micro-kernel call

// c[i * ldc + j] += sum_p a[i * a_row + p * a_col] * bp[p * 16 + j] for i < rows (<= 12),
// j < columns (<= 16; bp is zero-padded to 16). Accumulation order over p is sequential per
// (i, j); the SIMD versions use fused multiply-adds, so they agree with the scalar reference to
// rounding, not bit for bit (training does not need cross-ISA identity).
using GemmStripFn = void (*)(const float* a, int64_t a_row, int64_t a_col, const float* bp,
                             int64_t k, int64_t rows, float* c, int64_t ldc, int64_t columns);

void GemmStripScalar(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                     int64_t rows, float* c, int64_t ldc, int64_t columns);
void GemmStripAvx2(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                   int64_t rows, float* c, int64_t ldc, int64_t columns);
void GemmStripAvx512(const float* a, int64_t a_row, int64_t a_col, const float* bp, int64_t k,
                     int64_t rows, float* c, int64_t ldc, int64_t columns);

}  // namespace bora::kernels
