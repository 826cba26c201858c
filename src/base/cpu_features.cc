// CPU feature detection and instruction-set selection.
#include "base/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BORA_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "base/error.h"

namespace bora {
namespace {

#if BORA_X86
struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs Cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool Bit(uint32_t value, int bit) { return (value >> bit) & 1u; }

// Linux: the AMX tile data state must be requested per process before the first tile
// instruction, or that instruction faults.
bool RequestAmxPermission() {
#if defined(__linux__)
  constexpr int kArchGetXcompPerm = 0x1022;
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long permitted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &permitted) != 0) return false;
  return (permitted >> kXfeatureXtiledata) & 1ul;
#else
  return false;
#endif
}
#endif

}  // namespace

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
#if BORA_X86
  const uint32_t max_leaf = Cpuid(0, 0).eax;
  if (Cpuid(0x80000000u, 0).eax >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      CpuidRegs r = Cpuid(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
    while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(f.brand.begin());
  }
  if (max_leaf < 7) return f;
  const CpuidRegs leaf1 = Cpuid(1, 0);
  const bool osxsave = Bit(leaf1.ecx, 27);
  if (!osxsave) return f;
  const uint64_t xcr0 = ReadXcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;             // SSE + AVX state
  const bool zmm_state = ymm_state && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;     // XTILECFG + XTILEDATA
  const CpuidRegs leaf7 = Cpuid(7, 0);
  const CpuidRegs leaf7_1 = Cpuid(7, 1);
  const bool fma = Bit(leaf1.ecx, 12), f16c = Bit(leaf1.ecx, 29), avx = Bit(leaf1.ecx, 28);
  f.avx2 = ymm_state && avx && fma && f16c && Bit(leaf7.ebx, 5);
  f.avx512 = f.avx2 && zmm_state && Bit(leaf7.ebx, 16) /*F*/ && Bit(leaf7.ebx, 17) /*DQ*/ &&
             Bit(leaf7.ebx, 30) /*BW*/ && Bit(leaf7.ebx, 31) /*VL*/;
  f.avx512_vnni = f.avx512 && Bit(leaf7.ecx, 11);
  f.avx512_bf16 = f.avx512 && Bit(leaf7_1.eax, 5);
  const bool amx_tile = Bit(leaf7.edx, 24), amx_int8 = Bit(leaf7.edx, 25), amx_bf16 = Bit(leaf7.edx, 22);
  if (f.avx512_vnni && amx_tile && tile_state && (amx_int8 || amx_bf16) && RequestAmxPermission()) {
    f.amx_int8 = amx_int8;
    f.amx_bf16 = amx_bf16;
  }
#endif
  return f;
}

bool IsaSupported(Isa isa, const CpuFeatures& f) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2;
    case Isa::kAvx512: return f.avx512 && f.avx512_vnni;
    case Isa::kAmx: return f.avx512_vnni && f.amx_int8;
  }
  return false;
}

Isa BestIsa(const CpuFeatures& f) {
  for (Isa isa : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2}) {
    if (IsaSupported(isa, f)) return isa;
  }
  return Isa::kScalar;
}

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

Isa ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (name == IsaName(isa)) return isa;
  }
  throw InvalidArgument("unknown instruction set \"" + std::string(name) +
                        "\" in BORA_ISA; use scalar, avx2, avx512 or amx");
}

Isa SelectIsa(const CpuFeatures& features, std::string_view forced) {
  if (forced.empty()) return BestIsa(features);
  Isa isa = ParseIsa(forced);
  if (!IsaSupported(isa, features)) {
    throw InvalidArgument("BORA_ISA=" + std::string(forced) + " but this CPU (" +
                          (features.brand.empty() ? std::string("unknown") : features.brand) +
                          ") cannot run it; the best it supports is " + std::string(IsaName(BestIsa(features))));
  }
  return isa;
}

Isa SelectIsaFromEnvironment() {
  const char* forced = std::getenv("BORA_ISA");
  return SelectIsa(DetectCpuFeatures(), forced ? forced : "");
}

std::string DescribeCpu(const CpuFeatures& f, Isa selected) {
  std::string flags;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!flags.empty()) flags += ' ';
    flags += name;
  };
  add(f.avx2, "avx2");
  add(f.avx512, "avx512");
  add(f.avx512_vnni, "vnni");
  add(f.avx512_bf16, "bf16");
  add(f.amx_int8, "amx-int8");
  add(f.amx_bf16, "amx-bf16");
  return std::string(IsaName(selected)) + " (" + (f.brand.empty() ? "unknown CPU" : f.brand) + "; " +
         (flags.empty() ? "no SIMD" : flags) + ")";
}

}  // namespace bora
