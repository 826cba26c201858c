// The tokenizer's image settings: patch and size limits plus the ids of the image control tokens.
#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

void Tokenizer::SetImageConfig(int64_t patch_size, int64_t max_image_size, int64_t spatial_merge_size,
                               const std::string& source) {
  image::ImageConfig config;
  config.patch_size = patch_size;
  config.max_image_size = max_image_size;
  config.spatial_merge_size = spatial_merge_size;
  auto id = [&](const char* name) {
    const std::optional<int32_t> found = FindSpecial(name);
    if (!found) throw FormatError(source + ": has image settings but no " + std::string(name) + " control token");
    return *found;
  };
  config.image_token_id = id("[IMG]");
  config.image_break_token_id = id("[IMG_BREAK]");
  config.image_end_token_id = id("[IMG_END]");
  image_config_ = config;
}

}  // namespace bora::tokenizer
