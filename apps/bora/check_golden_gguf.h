// `bora check-golden` on a GGUF test folder: every .gguf against llama.cpp's logits.
#pragma once

#include <optional>
#include <string>

namespace bora::app {

// True for a folder laid out like ../shared/gguf/<model>/ (golden.json with a "files" map).
bool IsGgufGoldenFolder(const std::string& dir);

// Checks every file of golden.json "files": with dtype "f32" bora's exact path against
// dequant_f32_prefill_logits (max abs <= 1e-4) and greedy_tokens_dequant_f32; with no dtype (or
// bf16/q8/q4) bora's compute against prefill_logits (dense: max abs <= 0.5, RMS rel <= 5%).
// Returns the exit code (0 all passed).
int RunCheckGgufGolden(const std::string& dir, std::optional<std::string> dtype, int threads, bool json);

}  // namespace bora::app
