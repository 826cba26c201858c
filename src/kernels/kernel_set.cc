// Kernel tables per instruction-set level.
#include "kernels/kernel_set.h"

#include "kernels/dot.h"
#include "kernels/dot_simd.h"
#include "kernels/vector_math.h"

namespace bora::kernels {
namespace {

constexpr KernelSet kScalarKernels{Isa::kScalar, DotF32,     DotBf16F32,         DotF16F32,  Axpy,
                                   ExpInPlace,   QuantizeRowsScalar, QGemmScalar, GemmStripScalar};
constexpr KernelSet kAvx2Kernels{Isa::kAvx2,     DotF32Avx2,       DotBf16F32Avx2, DotF16F32Avx2, AxpyAvx2,
                                 ExpInPlaceAvx2, QuantizeRowsAvx2, QGemmAvx2, GemmStripAvx2};
constexpr KernelSet kAvx512Kernels{Isa::kAvx512,     DotF32Avx512,       DotBf16F32Avx512, DotF16F32Avx512, AxpyAvx512,
                                   ExpInPlaceAvx512, QuantizeRowsAvx512, QGemmAvx512, GemmStripAvx512};
constexpr KernelSet kAmxKernels{Isa::kAmx,         DotF32Avx512,       DotBf16F32Avx512, DotF16F32Avx512, AxpyAvx512,
                                ExpInPlaceAvx512, QuantizeRowsAvx512, QGemmAvx512, GemmStripAvx512};

}  // namespace

const KernelSet& KernelsFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return kScalarKernels;
    case Isa::kAvx2: return kAvx2Kernels;
    case Isa::kAvx512: return kAvx512Kernels;
    case Isa::kAmx: return kAmxKernels;
  }
  return kScalarKernels;
}

}  // namespace bora::kernels
