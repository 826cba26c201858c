// Image files for the terminal commands.
#include "image_flag.h"

#include <fstream>
#include <iterator>

#include "base/error.h"
#include "image/image.h"

namespace bora::app {

std::vector<tokenizer::ContentChunk> ReadImageFiles(const std::vector<std::string>& files) {
  std::vector<tokenizer::ContentChunk> chunks;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw IoError(file + ": cannot open the image");
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    tokenizer::ContentChunk chunk;
    chunk.type = tokenizer::ContentChunk::Type::kImage;
    chunk.where = file;
    try {
      chunk.image = std::make_shared<const image::RgbImage>(
          image::DecodeImage(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(file + ": " + e.what());
    }
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

tokenizer::Message UserMessageWithImages(const std::string& text, const std::vector<tokenizer::ContentChunk>& images) {
  tokenizer::Message message;
  message.role = tokenizer::Role::kUser;
  if (images.empty()) {
    message.content = tokenizer::Content::Text(text);
    return message;
  }
  message.content.present = true;
  message.content.is_chunks = true;
  message.content.chunks = images;
  if (!text.empty()) {
    tokenizer::ContentChunk chunk;
    chunk.text = text;
    message.content.chunks.push_back(std::move(chunk));
  }
  return message;
}

std::unique_ptr<vision::VisionEncoder> LoadVisionTower(model::Transformer& model, std::optional<DType> dtype,
                                                       bool sharded, const tokenizer::Tokenizer& tokenizer,
                                                       bool required) {
  const std::string& dir = model.folder().path;
  if (!required) {
    // Loaded anyway where it can be, so /image works in a chat started without --image.
    if (!tokenizer.image_config()) return nullptr;
  }
  std::unique_ptr<vision::VisionEncoder> vision = vision::LoadVisionFor(model, dtype, sharded);
  if (vision == nullptr) {
    if (!required) return nullptr;
    throw InvalidArgument(dir + " does not read images here: " +
                          (model.params().vision ? std::string(sharded ? "not under mpirun yet"
                                                                       : "its vision tower is in a layout bora does not load")
                                                 : std::string("it has no vision encoder")));
  }
  if (!tokenizer.image_config()) {
    if (!required) return nullptr;
    throw InvalidArgument(dir + ": the tokenizer has no image settings, so images cannot be tokenized");
  }
  vision::CheckImageConfig(*vision, *tokenizer.image_config(), dir);
  return vision;
}

}  // namespace bora::app
