// `bora check-golden` on a vision-language reference folder (tiny-pixtral): images and prompts.
#pragma once

#include <string>

namespace bora::app {

// True when REF_DIR/golden/golden.json describes images.
bool IsVisionGoldenFolder(const std::string& ref_dir);

// Checks REF_DIR/mistral against REF_DIR/golden: per image the decoded RGB (exact), pixels
// (<= 1e-5), token ids, patch embeddings and encoder output (<= 1e-4) and embeddings (<= 1e-5);
// per prompt the four prefill/decode paths (<= 1e-4, greedy tokens equal). dtype other than
// "f32": teacher-forced quality of the prompts, reported against Mistral's bf16 drift.
// Returns the exit code (0 all passed).
int RunCheckVisionGolden(const std::string& ref_dir, const std::string& dtype, int threads, bool json, int64_t chunk);

}  // namespace bora::app
