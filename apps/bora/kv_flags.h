// The KV-cache flags shared by the commands that run the serving engine (--kv-dtype,
// --kv-blocks, --kv-memory, --no-prefix-cache) and their translation to EngineOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "runtime/engine.h"

namespace bora::app {

struct KvFlags {
  std::string dtype = "bf16";
  int64_t blocks = 0;
  std::string memory;  // "4G", "512M", bytes
  bool no_prefix_cache = false;
};

void AddKvFlags(CLI::App* command, KvFlags* flags);

// Throws InvalidArgument for an unknown dtype or an unreadable size.
void ApplyKvFlags(const KvFlags& flags, runtime::EngineOptions& options);

// "f32", "bf16", "q8"; throws InvalidArgument otherwise.
ops::KvDType ParseKvDType(const std::string& name);

// "123", "64K", "512M", "4G" (powers of 1024, optional trailing B/iB); throws InvalidArgument.
uint64_t ParseByteSize(const std::string& text);

}  // namespace bora::app
