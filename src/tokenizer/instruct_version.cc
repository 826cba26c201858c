// Instruct version names.
#include "tokenizer/instruct_version.h"

#include "base/error.h"

namespace bora::tokenizer {
namespace {

struct NamedVersion {
  std::string_view name;
  InstructVersion version;
};

constexpr NamedVersion kVersions[] = {
    {"v1", InstructVersion::kV1},   {"v2", InstructVersion::kV2},   {"v3", InstructVersion::kV3},
    {"v7", InstructVersion::kV7},   {"v11", InstructVersion::kV11}, {"v13", InstructVersion::kV13},
    {"v15", InstructVersion::kV15},
};

}  // namespace

InstructVersion ParseInstructVersion(std::string_view name) {
  for (const auto& entry : kVersions) {
    if (entry.name == name) return entry.version;
  }
  throw InvalidArgument("unknown instruct version '" + std::string(name) +
                        "': use one of v1, v2, v3, v7, v11, v13, v15");
}

std::string InstructVersionName(InstructVersion version) {
  for (const auto& entry : kVersions) {
    if (entry.version == version) return std::string(entry.name);
  }
  return "v?";
}

}  // namespace bora::tokenizer
