// Elementwise exponential over a span: the scalar reference (libm expf) and AVX2/AVX-512
// versions (Cephes-style range reduction and degree-6 polynomial, within 2 ulp of expf;
// exp(-inf) = 0, exp(x) = 0 below -87.3, +inf above 88.7).
#pragma once

#include <cstdint>

namespace bora::kernels {

// x[i] = exp(x[i]) for i < n.
void ExpInPlace(float* x, int64_t n);
void ExpInPlaceAvx2(float* x, int64_t n);
void ExpInPlaceAvx512(float* x, int64_t n);

}  // namespace bora::kernels
