// KV-cache flags of the engine-running commands.
#include "kv_flags.h"

#include <cctype>

#include "base/error.h"

namespace bora::app {

void AddKvFlags(CLI::App* command, KvFlags* flags) {
  command
      ->add_option("--kv-dtype", flags->dtype,
                   "KV cache precision: f32 (exact), bf16 or q8 (half of bf16)")
      ->capture_default_str();
  command
      ->add_option("--kv-blocks", flags->blocks,
                   "KV pool size in blocks of 16 tokens (default: from --kv-memory)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  command->add_option(
      "--kv-memory", flags->memory,
      "KV pool size, e.g. 2G or 512M (default: every sequence's full context, at most half the "
      "free memory)");
  command->add_flag("--no-prefix-cache", flags->no_prefix_cache,
                    "Do not reuse the KV of earlier prompts' prefixes");
}

ops::KvDType ParseKvDType(const std::string& name) {
  if (name == "f32") return ops::KvDType::kF32;
  if (name == "bf16") return ops::KvDType::kBF16;
  if (name == "q8") return ops::KvDType::kQ8;
  throw InvalidArgument("--kv-dtype " + name + ": expected f32, bf16 or q8");
}

uint64_t ParseByteSize(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string suffix = text.substr(digits);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() > 1 && suffix.back() == 'B') suffix.pop_back();
  if (suffix.size() > 1 && suffix.back() == 'I') suffix.pop_back();
  int shift = -1;
  if (suffix.empty() || suffix == "B") shift = 0;
  if (suffix == "K") shift = 10;
  if (suffix == "M") shift = 20;
  if (suffix == "G") shift = 30;
  if (suffix == "T") shift = 40;
  if (digits == 0 || digits > 12 || shift < 0) {
    throw InvalidArgument("size \"" + text +
                          "\": expected a number with an optional K, M, G or T suffix");
  }
  return std::stoull(text.substr(0, digits)) << shift;
}

void ApplyKvFlags(const KvFlags& flags, runtime::EngineOptions& options) {
  options.kv_dtype = ParseKvDType(flags.dtype);
  options.kv_blocks = flags.blocks;
  if (!flags.memory.empty()) options.kv_memory_bytes = ParseByteSize(flags.memory);
  options.prefix_cache = !flags.no_prefix_cache;
}

}  // namespace bora::app
