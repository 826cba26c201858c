// Chat and FIM requests as mistral-common models them, parsed from the JSON both APIs send.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/image.h"
#include "tokenizer/python_json.h"

namespace bora::tokenizer {

enum class Role { kSystem, kUser, kAssistant, kTool };
std::string RoleName(Role role);

// How strictly a request is checked, as mistral-common's ValidationMode.
enum class ValidationMode {
  kTest,     // `bora render`: what mistral-common accepts by default
  kServing,  // the HTTP API: every call answered, real tool-call ids
  kFinetuning,
};

// One piece of message content: text, thinking, or an image (decoded when parsed, so a bad
// image is an error naming its chunk). Audio chunks are refused when parsed.
struct ContentChunk {
  enum class Type { kText, kThinking, kImage };
  Type type = Type::kText;
  std::string text;
  bool closed = true;  // thinking chunks only: false omits the closing [/THINK]
  std::shared_ptr<const image::RgbImage> image;  // kImage
  std::string where;                             // kImage: the chunk's place in the request
};

// Message content: absent (assistant without text), a plain string, or a chunk list.
struct Content {
  bool present = false;
  bool is_chunks = false;
  std::string text;                  // when !is_chunks
  std::vector<ContentChunk> chunks;  // when is_chunks

  static Content None() { return {}; }
  static Content Text(std::string value) { return {true, false, std::move(value), {}}; }
  // Python truthiness: a non-empty string or a non-empty chunk list.
  bool truthy() const { return present && (is_chunks ? !chunks.empty() : !text.empty()); }
  bool has_thinking() const;
  bool has_images() const;
  // Text chunks joined with `separator` (thinking chunks must not be present).
  std::string JoinedText(const std::string& separator = "\n\n") const;
};

struct ToolCall {
  std::string id = "null";  // mistral-common's default for a missing id
  std::string name;
  std::string arguments;  // JSON text (objects given as objects are serialised)
};

struct Message {
  Role role = Role::kUser;
  Content content;
  std::optional<std::vector<ToolCall>> tool_calls;  // assistant
  bool prefix = false;                              // assistant
  std::optional<std::string> tool_call_id;          // tool
  std::optional<std::string> name;                  // tool (deprecated in v3+)
};

struct ToolDefinition {
  std::string name;
  std::string description;
  OrderedJson parameters = OrderedJson::object();
};

struct ChatRequest {
  std::vector<Message> messages;
  std::optional<std::vector<ToolDefinition>> tools;
  bool continue_final_message = false;
};

struct FimRequest {
  std::string prompt;
  std::optional<std::string> suffix;
};

// Limits on the images of one request.
struct ImageRequestLimits {
  image::ImageLimits image;  // per image: encoded bytes, pixels
  int max_images = 8;        // image chunks per request
  int64_t max_total_pixels = 100'000'000;  // decoded pixels of all images together (3 bytes each)
  // Fetches an http(s) image URL (the server's --allow-image-urls); returns the bytes or throws
  // InvalidArgument saying why not. Unset: remote URLs are refused.
  std::function<std::string(const std::string& url)> fetch;
};

// Parses the chat part of a request body (`messages`, `tools`, `continue_final_message`;
// other fields are ignored). In serving mode the OpenAI role `developer` means `system`.
// Image chunks: {"type": "image_url", "image_url": "data:image/...;base64,..." | {"url": ...,
// "detail": ...}} (Mistral and OpenAI forms) and {"type": "image", "image": base64 or data URL};
// data: URLs are read; http(s) URLs only through `limits.fetch` (else refused).
// Throws InvalidArgument with a message naming the offending field (and, for images, the
// chunk and what is wrong with the image).
ChatRequest ParseChatRequest(const OrderedJson& body, ValidationMode mode, const ImageRequestLimits& limits = {});

// Parses `prompt` and optional `suffix`. Throws InvalidArgument.
FimRequest ParseFimRequest(const OrderedJson& body);

// True when the body looks like a FIM request (has `prompt` and no `messages`).
bool IsFimRequestBody(const OrderedJson& body);

}  // namespace bora::tokenizer
