// Compute-peak probes for `bora bench --peak`: tight loops of independent FMA or VNNI
// instructions that stay in registers, so their rate is the core's arithmetic peak.
#pragma once

#include <cstdint>

namespace bora::kernels {

// Each runs `iterations` rounds and returns the arithmetic operations performed (an FMA or a
// multiply-accumulate counts as 2), plus a value that keeps the compiler from removing the loop.
struct PeakResult {
  double operations = 0;
  float sink = 0;
};

PeakResult PeakFmaAvx2(int64_t iterations);    // f32 FMA, 256-bit
PeakResult PeakFmaAvx512(int64_t iterations);  // f32 FMA, 512-bit
PeakResult PeakVnniAvx512(int64_t iterations); // int8 vpdpbusd, 512-bit
PeakResult PeakInt8Avx2(int64_t iterations);   // int8 vpmaddubsw + vpmaddwd, 256-bit

}  // namespace bora::kernels
