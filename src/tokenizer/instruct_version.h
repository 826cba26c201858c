// Instruct (prompt-format) versions of mistral-common and how a tokenizer file selects one.
#pragma once

#include <string>
#include <string_view>

namespace bora::tokenizer {

// mistral-common's TokenizerVersion names; the order is the release order.
enum class InstructVersion { kV1, kV2, kV3, kV7, kV11, kV13, kV15 };

// "v1".."v15"; throws InvalidArgument naming the accepted values otherwise.
InstructVersion ParseInstructVersion(std::string_view name);
std::string InstructVersionName(InstructVersion version);

// How the version of a loaded tokenizer was decided, for `bora render --explain`.
struct VersionChoice {
  InstructVersion version;
  std::string reason;  // one sentence
};

}  // namespace bora::tokenizer
