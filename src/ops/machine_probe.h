// Machine measurements that give benchmark numbers their scale: STREAM-style read bandwidth and
// the arithmetic peaks of every usable instruction set, with the context's thread count.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ops/compute_context.h"

namespace bora::ops {

// Best of `passes` read-only reductions over a `bytes` buffer split across the threads, in GB/s
// (1e9 bytes per second).
double MeasureReadBandwidth(ComputeContext& ctx, size_t bytes = size_t{2} << 30, int passes = 10);

struct PeakMeasurement {
  std::string name;  // "avx512 fp32 fma", "avx512 int8 vnni", ...
  double ops_per_second = 0;
};

// Peaks of every probe the CPU supports, all threads busy, best of 3 runs.
std::vector<PeakMeasurement> MeasureComputePeaks(ComputeContext& ctx);

}  // namespace bora::ops
