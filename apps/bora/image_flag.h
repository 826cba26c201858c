// --image FILE for generate and chat: image files read into chat chunks, and the model's
// vision tower loaded (or a one-line error when the model does not read images).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/tokenizer.h"
#include "vision/vision_encoder.h"

namespace bora::app {

// Decodes each file (PNG, JPEG, WebP, GIF) into an image chunk; errors name the file.
std::vector<tokenizer::ContentChunk> ReadImageFiles(const std::vector<std::string>& files);

// A user message: the images first (as llama.cpp and mistral-common place a lone image), then
// the text.
tokenizer::Message UserMessageWithImages(const std::string& text, const std::vector<tokenizer::ContentChunk>& images);

// The model's vision tower when it has one bora reads (null otherwise). With `required`
// (images were given) a model without one, or a tokenizer without image settings, is an
// InvalidArgument naming the folder.
std::unique_ptr<vision::VisionEncoder> LoadVisionTower(model::Transformer& model, std::optional<DType> dtype,
                                                       bool sharded, const tokenizer::Tokenizer& tokenizer,
                                                       bool required);

}  // namespace bora::app
