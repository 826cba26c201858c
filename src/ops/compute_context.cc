// Compute context: thread pool, kernel table and scratch.
#include "ops/compute_context.h"

namespace bora::ops {

ComputeContext::ComputeContext(int threads, std::optional<Isa> isa)
    : pool_(threads > 0 ? threads : DefaultThreadCount()),
      kernels_(&kernels::KernelsFor(isa ? *isa : SelectIsaFromEnvironment())) {}

void* ComputeContext::Scratch(size_t bytes) {
  if (scratch_.size() < bytes) scratch_ = AlignedBuffer(bytes);
  return scratch_.data();
}

}  // namespace bora::ops
