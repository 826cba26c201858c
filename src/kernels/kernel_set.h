// The kernels of one instruction-set level, as a table of function pointers chosen once at
// start-up (see base/cpu_features.h); immutable and shared by everything that computes.
#pragma once

#include <cstdint>

#include "base/cpu_features.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_f32.h"
#include "kernels/quant/qgemm.h"

namespace bora::kernels {

struct KernelSet {
  Isa isa = Isa::kScalar;
  // f32-compute dot products (weights upcast exactly) and y += alpha * x.
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  float (*dot_bf16)(const uint16_t* w, const float* x, int64_t n) = nullptr;
  float (*dot_f16)(const uint16_t* w, const float* x, int64_t n) = nullptr;
  void (*axpy)(float alpha, const float* x, float* y, int64_t n) = nullptr;
  // x[i] = exp(x[i]) (softmax weights); SIMD versions within 2 ulp of the libm reference.
  void (*exp_inplace)(float* x, int64_t n) = nullptr;
  // Packed q8/q4 weights: activation quantizer and GEMM (bit-identical across ISAs).
  QuantizeRowsFn quantize_rows = nullptr;
  QGemmFn qgemm = nullptr;
  // f32 GEMM strip (training): C[rows <= 12, 16] += A · packed B strip.
  GemmStripFn gemm_strip = nullptr;
  // bf16 GEMM strip and conversion (training with bf16 activations): only where the CPU has
  // AVX512-BF16; null elsewhere (callers then use the f32 strip).
  GemmBf16StripFn gemm_strip_bf16 = nullptr;
  F32ToBf16RowFn f32_to_bf16_row = nullptr;
};

// The table for `isa` (AMX uses the AVX-512 VNNI table: no AMX tile kernels yet), with the bf16
// GEMM kernels when the level is AVX-512 or above and the CPU has AVX512-BF16. The caller must
// have checked that the CPU supports `isa` (SelectIsa does).
const KernelSet& KernelsFor(Isa isa);

}  // namespace bora::kernels
