// Read-bandwidth and compute-peak probes.
#include "ops/machine_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/cpu_features.h"
#include "kernels/peak.h"

namespace bora::ops {

double MeasureReadBandwidth(ComputeContext& ctx, size_t bytes, int passes) {
  const int64_t floats = static_cast<int64_t>(bytes / sizeof(float));
  AlignedBuffer buffer(static_cast<size_t>(floats) * sizeof(float));
  auto* data = reinterpret_cast<float*>(buffer.data());
  const int threads = ctx.num_threads();
  // First touch by the thread that later reads each part (page placement) and real values.
  ctx.pool().ParallelFor(threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t part = begin; part < end; ++part) {
      const int64_t first = floats * part / threads, last = floats * (part + 1) / threads;
      for (int64_t i = first; i < last; ++i) data[i] = 1.0f / static_cast<float>((i & 1023) + 1);
    }
  });
  std::vector<float> sums(static_cast<size_t>(threads));
  const kernels::KernelSet& k = ctx.kernels();
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    ctx.pool().ParallelFor(threads, [&](int64_t begin, int64_t end, int) {
      for (int64_t part = begin; part < end; ++part) {
        const int64_t first = floats * part / threads, last = floats * (part + 1) / threads;
        // a.a reads each element once from memory (the second operand hits the same register).
        sums[part] = k.dot_f32(data + first, data + first, last - first);
      }
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(floats) * sizeof(float) / seconds / 1e9);
  }
  return best;
}

std::vector<PeakMeasurement> MeasureComputePeaks(ComputeContext& ctx) {
  const CpuFeatures cpu = DetectCpuFeatures();
  struct Probe {
    const char* name;
    bool usable;
    kernels::PeakResult (*run)(int64_t);
  };
  const Probe probes[] = {
      {"avx2 fp32 fma", cpu.avx2, kernels::PeakFmaAvx2},
      {"avx2 int8 maddubs", cpu.avx2, kernels::PeakInt8Avx2},
      {"avx512 fp32 fma", cpu.avx512, kernels::PeakFmaAvx512},
      {"avx512 int8 vnni", cpu.avx512_vnni, kernels::PeakVnniAvx512},
  };
  std::vector<PeakMeasurement> results;
  const int threads = ctx.num_threads();
  std::vector<double> operations(static_cast<size_t>(threads));
  std::vector<float> sinks(static_cast<size_t>(threads));
  volatile float sink = 0;
  for (const Probe& probe : probes) {
    if (!probe.usable) continue;
    double best = 0;
    for (int run = 0; run < 3; ++run) {
      const auto start = std::chrono::steady_clock::now();
      ctx.pool().ParallelFor(threads, [&](int64_t begin, int64_t end, int) {
        for (int64_t t = begin; t < end; ++t) {
          kernels::PeakResult r = probe.run(20'000'000);
          operations[t] = r.operations;
          sinks[t] = r.sink;
        }
      });
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double total = 0;
      for (double ops : operations) total += ops;
      best = std::max(best, total / seconds);
      for (float value : sinks) sink = sink + value;
    }
    results.push_back({probe.name, best});
  }
  (void)sink;
  return results;
}

}  // namespace bora::ops
