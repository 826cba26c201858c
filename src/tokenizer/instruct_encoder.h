// Builds the exact token sequence mistral-common builds for a chat or FIM request.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "tokenizer/chat_request.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/tokenizer.h"

namespace bora::tokenizer {

struct Tokenized {
  std::vector<int32_t> ids;
  std::string text;  // the rendering: pieces joined (SentencePiece) or KEEP-decode (Tekken)
  // Tokens of the final assistant message when the request ends with one (prefix or
  // continue_final_message): the model continues them.
  std::optional<std::vector<int32_t>> prefix_ids;
  // The request's images in the order of their [IMG] blocks in `ids`, preprocessed for the
  // vision encoder (mistral-common's Tokenized.images).
  std::vector<std::shared_ptr<const image::PreprocessedImage>> images;
};

// The request after mistral-common's normalisation (merged roles, system prompt extracted for
// v1..v3, JSON-normalised tool calls, v13 result ordering).
struct InstructRequest {
  std::vector<Message> messages;
  std::optional<std::string> system_prompt;
  std::optional<std::vector<ToolDefinition>> tools;
  bool continue_final_message = false;
};

InstructRequest NormalizeChatRequest(const ChatRequest& request, InstructVersion version);

// The tokens one part of an encoded request contributes, in sequence order. Every message has
// exactly one segment (possibly empty: v2 drops tool traffic before the last user message);
// the BOS and the tools block are segments of their own. Training uses the kinds and message
// indices for loss masks.
struct InstructSegment {
  enum class Kind { kBos, kAvailableTools, kSystem, kUser, kAssistant, kToolResult };
  Kind kind = Kind::kBos;
  int message_index = -1;  // into InstructRequest::messages; -1 for the BOS and the tools block
  std::vector<int32_t> ids;
  std::vector<std::shared_ptr<const image::PreprocessedImage>> images;  // user segments with images
};

// The debug rendering of `ids` as mistral-common's Tokenized.text.
std::string RenderTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids);

// Encoder for one tokenizer and instruct version. Cheap to construct; looks up the control
// tokens the version needs (a Tekken file missing one is an InvalidArgument, as in
// mistral-common; SentencePiece files give id 0 like piece_to_id).
class InstructEncoder {
 public:
  InstructEncoder(const Tokenizer& tokenizer, InstructVersion version);

  InstructVersion version() const { return version_; }

  // validate → normalise → encode. Throws InvalidArgument for a request mistral-common rejects.
  Tokenized EncodeChat(const ChatRequest& request, ValidationMode mode) const;
  // Encodes an already normalised request (no validation).
  Tokenized EncodeInstruct(const InstructRequest& request) const;
  // The same encoding split into segments: concatenating their ids gives EncodeInstruct's ids.
  std::vector<InstructSegment> EncodeInstructSegments(const InstructRequest& request) const;
  // `<s>[SUFFIX]suffix[PREFIX]prompt`. Throws InvalidArgument for v1.
  Tokenized EncodeFim(const FimRequest& request) const;

 private:
  struct ControlIds {
    int32_t begin_inst = 0, end_inst = 0, begin_tools = 0, end_tools = 0, begin_results = 0,
            end_results = 0, tool_calls = 0, prefix = 0, suffix = 0, begin_system = 0,
            end_system = 0, tool_content = 0, args = 0, call_id = 0;
  };

  int32_t Control(const std::string& name) const;
  std::vector<int32_t> Encode(const std::string& text) const;
  void Append(std::vector<int32_t>& out, const std::string& text) const;

  // The tools block of `request`, placed before the user message that is_first/is_last
  // select for this version; empty elsewhere or without tools.
  std::vector<int32_t> EncodeToolsBlock(const InstructRequest& request, bool is_first,
                                        bool is_last) const;
  std::vector<int32_t> EncodeUser(const Message& message, const InstructRequest& request,
                                  bool is_first, bool is_last,
                                  std::vector<std::shared_ptr<const image::PreprocessedImage>>& images) const;
  // The [IMG]/[IMG_BREAK]/[IMG_END] ids of one image chunk, its preprocessed pixels to `images`.
  void AppendImage(std::vector<int32_t>& out, const ContentChunk& chunk,
                   std::vector<std::shared_ptr<const image::PreprocessedImage>>& images) const;
  std::vector<int32_t> EncodeAssistant(const Message& message, bool before_last_user,
                                       bool continue_message) const;
  std::vector<int32_t> EncodeTool(const Message& message, bool before_last_user) const;
  std::vector<int32_t> EncodeSystem(const Message& message) const;
  std::vector<int32_t> EncodeToolCalls(const std::vector<ToolCall>& calls) const;
  void AppendChunks(std::vector<int32_t>& out, const Content& content, bool rstrip_text) const;

  const Tokenizer& tokenizer_;
  InstructVersion version_;
  ControlIds ids_;
};

}  // namespace bora::tokenizer
