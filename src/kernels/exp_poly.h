// Constants of the vectorised expf shared by the AVX2 and AVX-512 versions (Cephes expf):
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 split in two parts so r is exact
// to f32, exp(r) = 1 + r + r^2 P(r) on |r| <= ln(2)/2.
#pragma once

namespace bora::kernels::exp_poly {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;     // few mantissa bits: n * kLn2Hi is exact
constexpr float kLn2Lo = -2.12194440e-4f;  // ln 2 - kLn2Hi
constexpr float kP0 = 1.9875691500e-4f;
constexpr float kP1 = 1.3981999507e-3f;
constexpr float kP2 = 8.3334519073e-3f;
constexpr float kP3 = 4.1665795894e-2f;
constexpr float kP4 = 1.6666665459e-1f;
constexpr float kP5 = 5.0000001201e-1f;
// Below kMinInput the result is < FLT_MIN: flushed to 0 (attention weights); above kMaxInput: +inf.
constexpr float kMinInput = -87.3f;
constexpr float kMaxInput = 88.7f;

}  // namespace bora::kernels::exp_poly
