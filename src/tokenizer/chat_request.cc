// Parsing of chat/FIM request JSON into mistral-common's message model, with typed errors.
#include "tokenizer/chat_request.h"

#include "base/base64.h"
#include "base/error.h"

namespace bora::tokenizer {
namespace {

// Images decoded so far in one request.
struct ImageTally {
  int count = 0;
  int64_t pixels = 0;
};

[[noreturn]] void Fail(const std::string& where, const std::string& problem) {
  throw InvalidArgument("invalid request: " + where + ": " + problem);
}

std::string TypeName(const OrderedJson& value) {
  if (value.is_null()) return "null";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_array()) return "an array";
  return "an object";
}

const std::string& RequireString(const OrderedJson& value, const std::string& where) {
  if (!value.is_string()) Fail(where, "expected a string, got " + TypeName(value));
  return value.get_ref<const std::string&>();
}

std::optional<std::string> OptionalString(const OrderedJson& object, const char* key,
                                          const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return RequireString(*it, where + "." + key);
}

bool OptionalBool(const OrderedJson& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return false;
  if (!it->is_boolean()) Fail(where + "." + key, "expected a boolean, got " + TypeName(*it));
  return it->get<bool>();
}

// Text of a thinking chunk: a string, or (Mistral API form) a list of text chunks.
std::string ThinkingText(const OrderedJson& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) Fail(where, "expected a string or a list of text chunks");
  std::string text;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_where = where + "[" + std::to_string(i) + "]";
    if (!value[i].is_object()) Fail(item_where, "expected an object");
    auto type = value[i].find("type");
    if (type != value[i].end() && !(type->is_string() && *type == "text")) {
      Fail(item_where, "only text chunks are allowed inside thinking");
    }
    auto item_text = value[i].find("text");
    if (item_text == value[i].end()) Fail(item_where, "missing 'text'");
    text += RequireString(*item_text, item_where + ".text");
  }
  return text;
}

// Decodes the image a data: URL (or bare base64) carries, naming `where` in every error.
std::shared_ptr<const image::RgbImage> DecodeImageChunk(const std::string& source, const std::string& where,
                                                        const ImageRequestLimits& limits, bool bare_base64) {
  std::string_view payload = source;
  if (source.rfind("data:", 0) == 0) {
    const size_t comma = source.find(',');
    const std::string_view header = std::string_view(source).substr(0, comma == std::string::npos ? 0 : comma);
    if (comma == std::string::npos || header.find(";base64") == std::string_view::npos) {
      Fail(where, "a data: URL must be base64 (data:image/png;base64,...)");
    }
    if (header.rfind("data:image/", 0) != 0) Fail(where, "the data: URL is not an image (expected data:image/...)");
    payload = std::string_view(source).substr(comma + 1);
  } else if (!bare_base64) {
    const bool remote = source.rfind("http://", 0) == 0 || source.rfind("https://", 0) == 0;
    if (remote && limits.fetch) {
      std::string fetched;
      try {
        fetched = limits.fetch(source);
      } catch (const Error& e) {
        Fail(where, std::string("the image URL could not be fetched: ") + e.what());
      }
      try {
        return std::make_shared<const image::RgbImage>(image::DecodeImage(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(fetched.data()), fetched.size()), limits.image));
      } catch (const InvalidArgument& e) {
        Fail(where, e.what());
      }
    }
    Fail(where, remote ? "remote image URLs are not fetched by this server (start it with --allow-image-urls); "
                         "send the image inline as a data:image/...;base64 URL"
                       : "unsupported image URL scheme (send a data:image/...;base64 URL)");
  }
  // Encoded size check before decoding (base64 is 4/3 of the bytes).
  if (static_cast<int64_t>(payload.size()) / 4 * 3 > limits.image.max_bytes + 3) {
    Fail(where, "image of about " + std::to_string(payload.size() / 4 * 3) + " bytes exceeds the limit of " +
                    std::to_string(limits.image.max_bytes) + " bytes");
  }
  const std::optional<std::string> bytes = Base64Decode(payload);
  if (!bytes) Fail(where, "the image is not valid base64");
  try {
    return std::make_shared<const image::RgbImage>(image::DecodeImage(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()), limits.image));
  } catch (const InvalidArgument& e) {
    Fail(where, e.what());
  }
}


Content ParseContent(const OrderedJson& value, const std::string& where, const ImageRequestLimits& limits,
                     ImageTally& images) {
  if (value.is_null()) return Content::None();
  if (value.is_string()) return Content::Text(value.get<std::string>());
  if (!value.is_array())
    Fail(where, "expected a string, a list of chunks or null, got " + TypeName(value));
  Content content;
  content.present = true;
  content.is_chunks = true;
  for (size_t i = 0; i < value.size(); ++i) {
    const OrderedJson& item = value[i];
    const std::string item_where = where + "[" + std::to_string(i) + "]";
    if (!item.is_object()) Fail(item_where, "expected a content chunk object");
    auto type_it = item.find("type");
    if (type_it == item.end()) Fail(item_where, "content chunk must have a type field");
    const std::string& type = RequireString(*type_it, item_where + ".type");
    ContentChunk chunk;
    if (type == "text") {
      auto text = item.find("text");
      if (text == item.end()) Fail(item_where, "missing 'text'");
      chunk.text = RequireString(*text, item_where + ".text");
    } else if (type == "thinking") {
      auto thinking = item.find("thinking");
      if (thinking == item.end()) Fail(item_where, "missing 'thinking'");
      chunk.type = ContentChunk::Type::kThinking;
      chunk.text = ThinkingText(*thinking, item_where + ".thinking");
      chunk.closed = true;
      if (auto closed = item.find("closed"); closed != item.end() && !closed->is_null()) {
        if (!closed->is_boolean()) Fail(item_where + ".closed", "expected a boolean");
        chunk.closed = closed->get<bool>();
      }
    } else if (type == "image_url" || type == "image") {
      if (++images.count > limits.max_images) {
        Fail(item_where, "more than " + std::to_string(limits.max_images) + " images in one request");
      }
      auto payload = item.find(type);
      if (payload == item.end() || payload->is_null()) Fail(item_where, "missing '" + type + "'");
      std::string source;
      if (payload->is_object()) {
        auto url = payload->find("url");
        if (url == payload->end()) Fail(item_where + "." + type, "missing 'url'");
        source = RequireString(*url, item_where + "." + type + ".url");
        if (auto detail = payload->find("detail"); detail != payload->end() && !detail->is_null()) {
          RequireString(*detail, item_where + "." + type + ".detail");  // OpenAI's hint; Pixtral reads every pixel
        }
      } else {
        source = RequireString(*payload, item_where + "." + type);
      }
      chunk.type = ContentChunk::Type::kImage;
      chunk.where = item_where;
      chunk.image = DecodeImageChunk(source, item_where, limits, type == "image");
      images.pixels += chunk.image->width * chunk.image->height;
      if (images.pixels > limits.max_total_pixels) {
        Fail(item_where, "the request's images hold more than " + std::to_string(limits.max_total_pixels) +
                             " pixels together");
      }
    } else if (type == "input_audio" || type == "audio_url") {
      throw Unsupported("invalid request: " + item_where + ": '" + type +
                        "' chunks are not supported (bora reads text and images)");
    } else {
      Fail(item_where, "unknown content chunk type '" + type + "'");
    }
    content.chunks.push_back(std::move(chunk));
  }
  return content;
}

ToolCall ParseToolCall(const OrderedJson& value, const std::string& where) {
  if (!value.is_object()) Fail(where, "expected a tool call object");
  ToolCall call;
  if (auto id = OptionalString(value, "id", where)) call.id = *id;
  if (auto type = OptionalString(value, "type", where); type && *type != "function") {
    Fail(where + ".type", "only 'function' tool calls exist");
  }
  auto function = value.find("function");
  if (function == value.end() || !function->is_object()) Fail(where, "missing 'function' object");
  auto name = function->find("name");
  if (name == function->end()) Fail(where + ".function", "missing 'name'");
  call.name = RequireString(*name, where + ".function.name");
  auto arguments = function->find("arguments");
  if (arguments == function->end()) Fail(where + ".function", "missing 'arguments'");
  if (arguments->is_string()) {
    call.arguments = arguments->get<std::string>();
  } else if (arguments->is_object()) {
    // mistral-common serialises dict arguments with json.dumps before normalising them.
    call.arguments = PythonJsonDumps(*arguments, /*ensure_ascii=*/true);
  } else {
    Fail(where + ".function.arguments", "expected a JSON string or an object");
  }
  return call;
}

Message ParseMessage(const OrderedJson& value, const std::string& where, ValidationMode mode,
                     const ImageRequestLimits& limits, ImageTally& images) {
  if (!value.is_object()) Fail(where, "expected a message object");
  auto role_it = value.find("role");
  if (role_it == value.end()) Fail(where, "missing 'role'");
  const std::string& role = RequireString(*role_it, where + ".role");
  Message message;
  if (role == "system" || (role == "developer" && mode == ValidationMode::kServing)) {
    message.role = Role::kSystem;
  } else if (role == "user") {
    message.role = Role::kUser;
  } else if (role == "assistant") {
    message.role = Role::kAssistant;
  } else if (role == "tool") {
    message.role = Role::kTool;
  } else {
    Fail(where + ".role", "unknown role '" + role + "' (expected system, user, assistant or tool)");
  }
  auto content_it = value.find("content");
  if (content_it != value.end()) message.content = ParseContent(*content_it, where + ".content", limits, images);
  if (message.role != Role::kAssistant && !message.content.present) {
    Fail(where + ".content", "a " + role + " message must have content");
  }
  if (message.role == Role::kAssistant) {
    auto calls = value.find("tool_calls");
    if (calls != value.end() && !calls->is_null()) {
      if (!calls->is_array()) Fail(where + ".tool_calls", "expected a list");
      message.tool_calls.emplace();
      for (size_t i = 0; i < calls->size(); ++i) {
        message.tool_calls->push_back(
            ParseToolCall((*calls)[i], where + ".tool_calls[" + std::to_string(i) + "]"));
      }
    }
    message.prefix = OptionalBool(value, "prefix", where);
    // Whitespace-only text beside tool calls counts as no content: clients send back the
    // assistant messages they received (a " " before [TOOL_CALLS] included) unchanged.
    if (message.tool_calls && !message.tool_calls->empty() && message.content.present &&
        !message.content.is_chunks &&
        message.content.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      message.content = Content{};
    }
  }
  if (message.role == Role::kTool) {
    message.tool_call_id = OptionalString(value, "tool_call_id", where);
    message.name = OptionalString(value, "name", where);
  }
  return message;
}

ToolDefinition ParseTool(const OrderedJson& value, const std::string& where, ValidationMode mode) {
  if (!value.is_object()) Fail(where, "expected a tool object");
  if (auto type = OptionalString(value, "type", where); type && *type != "function") {
    Fail(where + ".type", "only 'function' tools exist");
  }
  auto function = value.find("function");
  if (function == value.end() || !function->is_object()) Fail(where, "missing 'function' object");
  ToolDefinition tool;
  auto name = function->find("name");
  if (name == function->end()) Fail(where + ".function", "missing 'name'");
  tool.name = RequireString(*name, where + ".function.name");
  if (auto description = OptionalString(*function, "description", where + ".function")) {
    tool.description = *description;
  }
  auto parameters = function->find("parameters");
  if (parameters == function->end() || parameters->is_null()) {
    // OpenAI makes parameters optional (a function without arguments); mistral-common does not.
    if (mode != ValidationMode::kServing) Fail(where + ".function", "missing 'parameters'");
  } else {
    if (!parameters->is_object())
      Fail(where + ".function.parameters", "expected a JSON Schema object");
    tool.parameters = *parameters;
  }
  return tool;
}

}  // namespace

std::string RoleName(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
    case Role::kTool:
      return "tool";
  }
  return "?";
}

bool Content::has_images() const {
  if (!is_chunks) return false;
  for (const auto& chunk : chunks) {
    if (chunk.type == ContentChunk::Type::kImage) return true;
  }
  return false;
}

bool Content::has_thinking() const {
  if (!is_chunks) return false;
  for (const auto& chunk : chunks) {
    if (chunk.type == ContentChunk::Type::kThinking) return true;
  }
  return false;
}

std::string Content::JoinedText(const std::string& separator) const {
  if (!is_chunks) return text;
  std::string joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0) joined += separator;
    joined += chunks[i].text;
  }
  return joined;
}

ChatRequest ParseChatRequest(const OrderedJson& body, ValidationMode mode, const ImageRequestLimits& limits) {
  ImageTally images;
  if (!body.is_object()) Fail("request", "expected a JSON object");
  ChatRequest request;
  auto messages = body.find("messages");
  if (messages == body.end()) Fail("request", "missing 'messages'");
  if (!messages->is_array()) Fail("messages", "expected a list of messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    request.messages.push_back(
        ParseMessage((*messages)[i], "messages[" + std::to_string(i) + "]", mode, limits, images));
  }
  auto tools = body.find("tools");
  if (tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) Fail("tools", "expected a list of tools");
    request.tools.emplace();
    for (size_t i = 0; i < tools->size(); ++i) {
      request.tools->push_back(ParseTool((*tools)[i], "tools[" + std::to_string(i) + "]", mode));
    }
  }
  request.continue_final_message = OptionalBool(body, "continue_final_message", "request");
  return request;
}

bool IsFimRequestBody(const OrderedJson& body) {
  return body.is_object() && body.contains("prompt") && !body.contains("messages");
}

FimRequest ParseFimRequest(const OrderedJson& body) {
  if (!body.is_object()) Fail("request", "expected a JSON object");
  auto prompt = body.find("prompt");
  if (prompt == body.end()) Fail("request", "missing 'prompt'");
  FimRequest request;
  request.prompt = RequireString(*prompt, "prompt");
  request.suffix = OptionalString(body, "suffix", "request");
  return request;
}

}  // namespace bora::tokenizer
