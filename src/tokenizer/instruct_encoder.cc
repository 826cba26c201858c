// Instruct encodings v1..v15 (text content, tools, tool calls/results, FIM) as mistral-common.
#include "tokenizer/instruct_encoder.h"

#include "base/error.h"
#include "tokenizer/chat_validation.h"

namespace bora::tokenizer {
namespace {

std::string RightStripSpaces(std::string text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// json.loads when possible, else the string itself (mistral-common's _parse_json_content).
OrderedJson ParseJsonOrString(const std::string& text) {
  auto parsed = PythonJsonLoads(text);
  return parsed ? *parsed : OrderedJson(text);
}

bool ToolsBeforeFirstUser(InstructVersion version) { return version >= InstructVersion::kV13; }

}  // namespace

std::string RenderTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  if (tokenizer.backend() == Backend::kTekken)
    return tokenizer.Decode(ids, SpecialTokenPolicy::kKeep);
  std::string text;
  for (int32_t id : ids) text += tokenizer.IdToPiece(id);
  return text;
}

InstructEncoder::InstructEncoder(const Tokenizer& tokenizer, InstructVersion version)
    : tokenizer_(tokenizer), version_(version) {
  if (version_ == InstructVersion::kV1) return;  // v1 writes [INST] as plain text
  ids_.begin_inst = Control("[INST]");
  ids_.end_inst = Control("[/INST]");
  ids_.begin_tools = Control("[AVAILABLE_TOOLS]");
  ids_.end_tools = Control("[/AVAILABLE_TOOLS]");
  ids_.begin_results = Control("[TOOL_RESULTS]");
  ids_.end_results = Control("[/TOOL_RESULTS]");
  ids_.tool_calls = Control("[TOOL_CALLS]");
  ids_.prefix = Control("[PREFIX]");
  ids_.suffix = Control("[SUFFIX]");
  if (version_ >= InstructVersion::kV7) {
    ids_.begin_system = Control("[SYSTEM_PROMPT]");
    ids_.end_system = Control("[/SYSTEM_PROMPT]");
    ids_.tool_content = Control("[TOOL_CONTENT]");
  }
  if (version_ >= InstructVersion::kV11) {
    ids_.args = Control("[ARGS]");
    ids_.call_id = Control("[CALL_ID]");
  }
}

int32_t InstructEncoder::Control(const std::string& name) const {
  if (auto id = tokenizer_.FindSpecial(name)) return *id;
  if (tokenizer_.backend() == Backend::kSentencePiece) return 0;  // piece_to_id of a missing piece
  throw InvalidArgument("tokenizer has no control token " + name + ", which instruct version " +
                        InstructVersionName(version_) + " needs (choose another --version)");
}

std::vector<int32_t> InstructEncoder::Encode(const std::string& text) const {
  return tokenizer_.Encode(text);
}

void InstructEncoder::Append(std::vector<int32_t>& out, const std::string& text) const {
  auto ids = tokenizer_.Encode(text);
  out.insert(out.end(), ids.begin(), ids.end());
}

void InstructEncoder::AppendChunks(std::vector<int32_t>& out, const Content& content,
                                   bool rstrip_text) const {
  if (!content.is_chunks) {
    Append(out, rstrip_text ? RightStripSpaces(content.text) : content.text);
    return;
  }
  for (const auto& chunk : content.chunks) {
    if (chunk.type == ContentChunk::Type::kText) {
      Append(out, rstrip_text ? RightStripSpaces(chunk.text) : chunk.text);
    } else {
      out.push_back(Control("[THINK]"));
      Append(out, chunk.text);
      if (chunk.closed) out.push_back(Control("[/THINK]"));
    }
  }
}

std::vector<int32_t> InstructEncoder::EncodeToolsBlock(const InstructRequest& request,
                                                       bool is_first, bool is_last) const {
  std::vector<int32_t> out;
  if (version_ == InstructVersion::kV1) return out;  // v1 has no tools
  bool tools_here = ToolsBeforeFirstUser(version_) ? is_first : is_last;
  if (!tools_here || !request.tools || request.tools->empty()) return out;
  OrderedJson tools = OrderedJson::array();
  for (const auto& tool : *request.tools) {
    OrderedJson function = OrderedJson::object();
    function["name"] = tool.name;
    function["description"] = tool.description;
    function["parameters"] = tool.parameters;
    OrderedJson entry = OrderedJson::object();
    entry["type"] = "function";
    entry["function"] = std::move(function);
    tools.push_back(std::move(entry));
  }
  out.push_back(ids_.begin_tools);
  Append(out, PythonJsonDumps(tools));
  out.push_back(ids_.end_tools);
  return out;
}

std::vector<int32_t> InstructEncoder::EncodeUser(
    const Message& message, const InstructRequest& request, bool is_first, bool is_last,
    std::vector<std::shared_ptr<const image::PreprocessedImage>>& images) const {
  const std::string& content = message.content.text;
  if (version_ == InstructVersion::kV1) {
    std::string text = is_first && request.system_prompt && !request.system_prompt->empty()
                           ? *request.system_prompt + "\n\n" + content
                           : content;
    return Encode("[INST] " + text + " [/INST]");
  }
  std::vector<int32_t> out;
  out.push_back(ids_.begin_inst);
  bool with_system = is_last && version_ <= InstructVersion::kV3 && request.system_prompt &&
                     !request.system_prompt->empty();
  if (message.content.is_chunks && message.content.has_images()) {
    // InstructTokenizerV3.encode_user_content: exactly [text, image] is encoded image first; the
    // v3 system prompt and "\n\n" go before the first chunk, encoded on their own before an image.
    std::vector<const ContentChunk*> chunks;
    for (const ContentChunk& chunk : message.content.chunks) chunks.push_back(&chunk);
    if (chunks.size() == 2 && chunks[0]->type == ContentChunk::Type::kText &&
        chunks[1]->type == ContentChunk::Type::kImage) {
      std::swap(chunks[0], chunks[1]);
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
      const std::string prefix = i == 0 && with_system ? *request.system_prompt + "\n\n" : "";
      if (chunks[i]->type == ContentChunk::Type::kImage) {
        if (!prefix.empty()) Append(out, prefix);
        AppendImage(out, *chunks[i], images);
      } else {
        Append(out, prefix + chunks[i]->text);
      }
    }
    out.push_back(ids_.end_inst);
    return out;
  }
  Append(out, with_system ? *request.system_prompt + "\n\n" + content : content);
  out.push_back(ids_.end_inst);
  return out;
}

void InstructEncoder::AppendImage(std::vector<int32_t>& out, const ContentChunk& chunk,
                                  std::vector<std::shared_ptr<const image::PreprocessedImage>>& images) const {
  const std::optional<image::ImageConfig>& config = tokenizer_.image_config();
  if (!config) {
    throw InvalidArgument("invalid request: " + chunk.where +
                          ": this model's tokenizer has no image settings, so it does not read images");
  }
  auto preprocessed = std::make_shared<image::PreprocessedImage>(image::PreprocessImage(*chunk.image, *config));
  const std::vector<int32_t> ids = image::ImageTokenIds(preprocessed->grid, *config);
  out.insert(out.end(), ids.begin(), ids.end());
  images.push_back(std::move(preprocessed));
}

std::vector<int32_t> InstructEncoder::EncodeToolCalls(const std::vector<ToolCall>& calls) const {
  std::vector<int32_t> out;
  if (version_ <= InstructVersion::kV7) {
    OrderedJson list = OrderedJson::array();
    for (const auto& call : calls) {
      OrderedJson entry = OrderedJson::object();
      entry["name"] = call.name;
      entry["arguments"] = ParseJsonOrString(call.arguments);
      if (version_ >= InstructVersion::kV3 && !call.id.empty() && call.id != "null")
        entry["id"] = call.id;
      list.push_back(std::move(entry));
    }
    out.push_back(ids_.tool_calls);
    Append(out, PythonJsonDumps(list));
    return out;
  }
  for (const auto& call : calls) {
    out.push_back(ids_.tool_calls);
    Append(out, call.name);
    if (version_ == InstructVersion::kV11) {
      if (!call.id.empty() && call.id != "null") {
        out.push_back(ids_.call_id);
        Append(out, call.id);
      }
    } else if (call.id.empty() || call.id == "null") {
      throw InvalidArgument("invalid request: tool call '" + call.name +
                            "' needs an id for instruct version " + InstructVersionName(version_));
    }
    out.push_back(ids_.args);
    Append(out, PythonJsonDumps(ParseJsonOrString(call.arguments)));
  }
  return out;
}

std::vector<int32_t> InstructEncoder::EncodeAssistant(const Message& message, bool before_last_user,
                                                      bool continue_message) const {
  const bool has_calls = message.tool_calls && !message.tool_calls->empty();
  const bool has_content = message.content.truthy();
  if (continue_message && message.prefix) {
    throw InvalidArgument(
        "invalid request: `continue_message` is only supported for assistant messages that have "
        "`prefix=False`.");
  }
  std::vector<int32_t> out;
  if (version_ == InstructVersion::kV1) {
    if (has_calls)
      throw InvalidArgument("invalid request: tools are not available with instruct version v1");
    if (!has_content) throw InvalidArgument("invalid request: assistant message without content");
    Append(out, message.content.JoinedText());
  } else if (version_ <= InstructVersion::kV3) {
    if (has_calls && has_content) {
      throw InvalidArgument(
          "invalid request: an assistant message cannot have both content and tool "
          "calls with instruct version " +
          InstructVersionName(version_));
    }
    if (has_calls) {
      // v2 drops tool traffic before the last user message (no EOS either).
      if (version_ == InstructVersion::kV2 && before_last_user) return {};
      out = EncodeToolCalls(*message.tool_calls);
    } else if (has_content) {
      Append(out, RightStripSpaces(message.content.JoinedText()));
    } else {
      throw InvalidArgument(
          "invalid request: assistant message has neither content nor tool calls");
    }
  } else {
    if (!has_content && !has_calls) {
      throw InvalidArgument(
          "invalid request: assistant message has neither content nor tool calls");
    }
    if (has_content) AppendChunks(out, message.content, /*rstrip_text=*/true);
    if (has_calls) {
      auto calls = EncodeToolCalls(*message.tool_calls);
      out.insert(out.end(), calls.begin(), calls.end());
    }
  }
  if (!message.prefix && !continue_message) out.push_back(tokenizer_.eos_id());
  return out;
}

std::vector<int32_t> InstructEncoder::EncodeTool(const Message& message,
                                                 bool before_last_user) const {
  const std::string& content = message.content.text;
  std::vector<int32_t> out;
  if (version_ == InstructVersion::kV1) {
    throw InvalidArgument("invalid request: tools are not available with instruct version v1");
  }
  if (version_ == InstructVersion::kV2) {
    if (before_last_user) return {};
    OrderedJson result = OrderedJson::object();
    result["name"] = message.name ? OrderedJson(*message.name) : OrderedJson(nullptr);
    result["content"] = ParseJsonOrString(content);
    out.push_back(ids_.begin_results);
    Append(out, PythonJsonDumps(OrderedJson::array({result})));
    out.push_back(ids_.end_results);
    return out;
  }
  if (!message.tool_call_id) {
    throw InvalidArgument(
        "invalid request: a tool message needs tool_call_id with instruct version " +
        InstructVersionName(version_));
  }
  out.push_back(ids_.begin_results);
  if (version_ == InstructVersion::kV3) {
    OrderedJson result = OrderedJson::object();
    result["content"] = ParseJsonOrString(content);
    result["call_id"] = *message.tool_call_id;
    Append(out, PythonJsonDumps(result));
  } else if (version_ <= InstructVersion::kV11) {
    Append(out, *message.tool_call_id);
    out.push_back(ids_.tool_content);
    Append(out, content);
  } else {
    Append(out, content);
  }
  out.push_back(ids_.end_results);
  return out;
}

std::vector<int32_t> InstructEncoder::EncodeSystem(const Message& message) const {
  std::vector<int32_t> out{ids_.begin_system};
  AppendChunks(out, message.content, /*rstrip_text=*/false);
  out.push_back(ids_.end_system);
  return out;
}

std::vector<InstructSegment> InstructEncoder::EncodeInstructSegments(
    const InstructRequest& request) const {
  using Kind = InstructSegment::Kind;
  int first_user = -1;
  int last_user = -1;
  const int count = static_cast<int>(request.messages.size());
  for (int i = 0; i < count; ++i) {
    if (request.messages[i].role == Role::kUser) {
      if (first_user < 0) first_user = i;
      last_user = i;
    }
  }
  std::vector<InstructSegment> segments;
  segments.push_back({Kind::kBos, -1, {tokenizer_.bos_id()}, {}});
  for (int i = 0; i < count; ++i) {
    const Message& message = request.messages[i];
    const bool is_final = i == count - 1;
    if (request.continue_final_message && is_final && message.role != Role::kAssistant) {
      throw InvalidArgument(
          "invalid request: Cannot continue final message if it is not an assistant message");
    }
    switch (message.role) {
      case Role::kUser: {
        auto tools = EncodeToolsBlock(request, i == first_user, i == last_user);
        if (!tools.empty()) segments.push_back({Kind::kAvailableTools, -1, std::move(tools), {}});
        InstructSegment user{Kind::kUser, i, {}, {}};
        user.ids = EncodeUser(message, request, i == first_user, i == last_user, user.images);
        segments.push_back(std::move(user));
        break;
      }
      case Role::kTool:
        segments.push_back({Kind::kToolResult, i, EncodeTool(message, i < last_user), {}});
        break;
      case Role::kAssistant:
        segments.push_back(
            {Kind::kAssistant, i,
             EncodeAssistant(message, i < last_user, request.continue_final_message && is_final), {}});
        break;
      case Role::kSystem:
        if (version_ < InstructVersion::kV7) {
          throw InvalidArgument(
              "invalid request: system messages must be normalised away before v7");
        }
        segments.push_back({Kind::kSystem, i, EncodeSystem(message), {}});
        break;
    }
  }
  return segments;
}

Tokenized InstructEncoder::EncodeInstruct(const InstructRequest& request) const {
  Tokenized result;
  const int count = static_cast<int>(request.messages.size());
  for (auto& segment : EncodeInstructSegments(request)) {
    result.ids.insert(result.ids.end(), segment.ids.begin(), segment.ids.end());
    result.images.insert(result.images.end(), segment.images.begin(), segment.images.end());
    if (segment.kind == InstructSegment::Kind::kAssistant && segment.message_index == count - 1) {
      result.prefix_ids = std::move(segment.ids);
    }
  }
  result.text = RenderTokens(tokenizer_, result.ids);
  return result;
}

Tokenized InstructEncoder::EncodeChat(const ChatRequest& request, ValidationMode mode) const {
  ValidateChatRequest(request, version_, mode);
  return EncodeInstruct(NormalizeChatRequest(request, version_));
}

Tokenized InstructEncoder::EncodeFim(const FimRequest& request) const {
  if (version_ == InstructVersion::kV1) {
    throw InvalidArgument("invalid request: FIM is not available for instruct version v1");
  }
  Tokenized result;
  result.ids = {tokenizer_.bos_id(), ids_.suffix};
  if (request.suffix && !request.suffix->empty()) {
    // Encoding "☺" + suffix and dropping two tokens removes SentencePiece's dummy-prefix space
    // (and the smiley, two byte tokens with Tekken).
    auto suffix = Encode("\xE2\x98\xBA" + *request.suffix);
    if (suffix.size() > 2) result.ids.insert(result.ids.end(), suffix.begin() + 2, suffix.end());
  }
  result.ids.push_back(ids_.prefix);
  Append(result.ids, request.prompt);
  result.text = RenderTokens(tokenizer_, result.ids);
  return result;
}

}  // namespace bora::tokenizer
