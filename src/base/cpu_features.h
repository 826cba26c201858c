// What the CPU and the OS let bora use (CPUID + XCR0 + the Linux AMX permission request), and the
// instruction-set level chosen once at start-up (BORA_ISA overrides the best usable one).
#pragma once

#include <string>
#include <string_view>

namespace bora {

// Kernel families, from the portable reference to the fastest.
enum class Isa { kScalar, kAvx2, kAvx512, kAmx };

struct CpuFeatures {
  std::string brand;           // CPUID brand string, e.g. "AMD EPYC 9R45"
  bool avx2 = false;           // AVX2 + FMA + F16C with the YMM state enabled by the OS
  bool avx512 = false;         // AVX-512 F/BW/VL/DQ with ZMM and opmask state enabled
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_int8 = false;       // AMX tile + int8, XTILEDATA enabled and permitted by the kernel
  bool amx_bf16 = false;
};

// Reads CPUID and XCR0; on Linux asks for the AMX tile-data permission (arch_prctl) when the
// CPU has AMX, and reports AMX only when the kernel grants it. Safe to call more than once.
CpuFeatures DetectCpuFeatures();

// Best level the features support: amx > avx512 (needs VNNI) > avx2 > scalar.
Isa BestIsa(const CpuFeatures& features);
bool IsaSupported(Isa isa, const CpuFeatures& features);

std::string_view IsaName(Isa isa);
// "scalar", "avx2", "avx512", "amx"; throws InvalidArgument listing the valid names otherwise.
Isa ParseIsa(std::string_view name);

// The level to run with: `forced` (the BORA_ISA value, may be empty) when the CPU supports it,
// else BestIsa. Throws InvalidArgument for an unknown name or a level this CPU cannot run
// (never a SIGILL later).
Isa SelectIsa(const CpuFeatures& features, std::string_view forced);

// SelectIsa(DetectCpuFeatures(), getenv("BORA_ISA")).
Isa SelectIsaFromEnvironment();

// One line for logs and `bora bench`: "avx512 (AMD EPYC ...; avx2 avx512 vnni bf16)".
std::string DescribeCpu(const CpuFeatures& features, Isa selected);

}  // namespace bora
