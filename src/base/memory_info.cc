// How much RAM this process may use.
#include "base/memory_info.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace bora {
namespace {

uint64_t ReadMemTotal() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value_kib = 0;
  std::string unit;
  while (in >> key >> value_kib >> unit) {
    if (key == "MemTotal:") return value_kib * 1024;
  }
  return 0;
}

// Returns 0 when the file is absent or says "max" (no limit).
uint64_t ReadLimitFile(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return 0;
  char* end = nullptr;
  unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return 0;
  if (value >= (1ull << 60)) return 0;  // cgroup v1 reports "unlimited" as a huge number
  return value;
}

uint64_t ParseByteCount(const char* text) {
  char* end = nullptr;
  double value = std::strtod(text, &end);
  if (end == text || value <= 0) return 0;
  switch (*end) {
    case 'k': case 'K': value *= 1024.0; break;
    case 'm': case 'M': value *= 1024.0 * 1024.0; break;
    case 'g': case 'G': value *= 1024.0 * 1024.0 * 1024.0; break;
    default: break;
  }
  return static_cast<uint64_t>(value);
}

}  // namespace

MemoryBudget ReadMemoryBudget() {
  MemoryBudget budget;
  budget.physical_bytes = ReadMemTotal();
  uint64_t v2 = ReadLimitFile("/sys/fs/cgroup/memory.max");
  budget.cgroup_limit = v2 != 0 ? v2 : ReadLimitFile("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  uint64_t total = budget.physical_bytes;
  if (budget.cgroup_limit != 0 && (total == 0 || budget.cgroup_limit < total)) {
    total = budget.cgroup_limit;
  }
  if (const char* override_text = std::getenv("BORA_MEMORY_LIMIT")) {
    uint64_t limit = ParseByteCount(override_text);
    if (limit != 0 && (total == 0 || limit < total)) total = limit;
  }
  // Keep 1/16 of memory (at least 256 MiB, at most 2 GiB) for the OS, page tables and buffers.
  uint64_t reserve = std::clamp<uint64_t>(total / 16, 256ull << 20, 2ull << 30);
  budget.usable_bytes = total > reserve ? total - reserve : 0;
  return budget;
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return buffer;
}

}  // namespace bora
