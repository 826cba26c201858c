// Kernel tables per instruction-set level.
#include "kernels/kernel_set.h"

#include "kernels/dot.h"
#include "kernels/dot_simd.h"
#include "kernels/vector_math.h"

namespace bora::kernels {
namespace {

constexpr KernelSet kScalarKernels{Isa::kScalar,       DotF32,      DotBf16F32,
                                   DotF16F32,          Axpy,        ExpInPlace,
                                   QuantizeRowsScalar, QGemmScalar, GemmStripScalar};
constexpr KernelSet kAvx2Kernels{Isa::kAvx2,       DotF32Avx2, DotBf16F32Avx2,
                                 DotF16F32Avx2,    AxpyAvx2,   ExpInPlaceAvx2,
                                 QuantizeRowsAvx2, QGemmAvx2,  GemmStripAvx2};
constexpr KernelSet kAvx512Kernels{Isa::kAvx512,       DotF32Avx512, DotBf16F32Avx512,
                                   DotF16F32Avx512,    AxpyAvx512,   ExpInPlaceAvx512,
                                   QuantizeRowsAvx512, QGemmAvx512,  GemmStripAvx512};
constexpr KernelSet kAmxKernels{Isa::kAmx,          DotF32Avx512, DotBf16F32Avx512,
                                DotF16F32Avx512,    AxpyAvx512,   ExpInPlaceAvx512,
                                QuantizeRowsAvx512, QGemmAvx512,  GemmStripAvx512};

constexpr KernelSet WithBf16(KernelSet set) {
  set.gemm_strip_bf16 = GemmBf16StripAvx512Bf16;
  set.f32_to_bf16_row = F32ToBf16RowAvx512Bf16;
  return set;
}
constexpr KernelSet kAvx512Bf16Kernels = WithBf16(kAvx512Kernels);
constexpr KernelSet kAmxBf16Kernels = WithBf16(kAmxKernels);

}  // namespace

const KernelSet& KernelsFor(Isa isa) {
  // Read once: CPUID does not change while the process runs.
  static const bool bf16 = DetectCpuFeatures().avx512_bf16;
  switch (isa) {
    case Isa::kScalar:
      return kScalarKernels;
    case Isa::kAvx2:
      return kAvx2Kernels;
    case Isa::kAvx512:
      return bf16 ? kAvx512Bf16Kernels : kAvx512Kernels;
    case Isa::kAmx:
      return bf16 ? kAmxBf16Kernels : kAmxKernels;
  }
  return kScalarKernels;
}

}  // namespace bora::kernels
