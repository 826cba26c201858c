// The web chat page served at `/`, compiled into the binary from src/server/web/index.html.
#pragma once

#include <string_view>

namespace bora::server {

std::string_view WebPageHtml();

}  // namespace bora::server
