// How much RAM this process may use: physical memory and the cgroup limit, minus a reserve.
#pragma once

#include <cstdint>
#include <string>

namespace bora {

struct MemoryBudget {
  uint64_t physical_bytes = 0;   // MemTotal from /proc/meminfo
  uint64_t cgroup_limit = 0;     // memory.max (v2) or limit_in_bytes (v1); 0 = unlimited
  uint64_t usable_bytes = 0;     // min(physical, cgroup) minus a reserve for the OS and buffers
};

// Reads /proc and /sys; `BORA_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) caps it further.
MemoryBudget ReadMemoryBudget();

// "1.5 GiB", "12.0 MiB": for messages and progress output.
std::string FormatBytes(uint64_t bytes);

}  // namespace bora
