// Everything a compute op needs besides its operands: the thread pool, the kernel table of the
// instruction-set level chosen at start-up, and reusable scratch. One per model, passed
// explicitly; not thread-safe (the engine thread owns it).
#pragma once

#include <cstddef>
#include <optional>

#include "base/aligned_buffer.h"
#include "base/cpu_features.h"
#include "base/thread_pool.h"
#include "kernels/kernel_set.h"

namespace bora::ops {

class ComputeContext {
 public:
  // `threads` <= 0: every CPU this process may use. No `isa`: BORA_ISA or the best the CPU has.
  explicit ComputeContext(int threads, std::optional<Isa> isa = std::nullopt);

  ThreadPool& pool() { return pool_; }
  int num_threads() const { return pool_.num_threads(); }
  const kernels::KernelSet& kernels() const { return *kernels_; }
  Isa isa() const { return kernels_->isa; }

  // 64-byte aligned scratch of at least `bytes`; grows only, so once a step's size has been
  // seen (or reserved) later steps of that size never allocate. Invalidated by the next call.
  void* Scratch(size_t bytes);

 private:
  ThreadPool pool_;
  const kernels::KernelSet* kernels_;
  AlignedBuffer scratch_;
};

}  // namespace bora::ops
