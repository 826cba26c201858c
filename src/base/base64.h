// Standard base64 decoding (RFC 4648 alphabet, '=' padding) for data: URLs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bora {

// The bytes `text` encodes; ASCII whitespace is skipped, missing final padding tolerated.
// nullopt for any other character outside the alphabet or a malformed tail.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace bora
