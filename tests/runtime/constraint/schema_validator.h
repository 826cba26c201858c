// A small JSON Schema validator for the subset the constraint compiler supports, so tests can
// check generated documents independently of the grammar.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bora::testing {

// "" when `value` validates against `schema` (a whole document: $ref resolves against it),
// else a message naming the first violation and where it is. oneOf needs exactly one match.
std::string ValidateAgainstSchema(const nlohmann::ordered_json& schema,
                                  const nlohmann::ordered_json& value);

}  // namespace bora::testing
