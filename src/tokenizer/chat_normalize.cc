// mistral-common's request normalisation (InstructRequestNormalizer, V7 and V13 variants).
#include <algorithm>
#include <limits>
#include <map>

#include "tokenizer/instruct_encoder.h"

namespace bora::tokenizer {
namespace {

// json.loads + json.dumps(ensure_ascii=False); empty → "{}"; invalid JSON kept verbatim.
std::string NormalizeJsonContent(const std::string& content) {
  if (content.empty()) return "{}";
  auto parsed = PythonJsonLoads(content);
  return parsed ? PythonJsonDumps(*parsed) : content;
}

std::string ChunkSeparator(InstructVersion version) {
  return version >= InstructVersion::kV15 ? "" : "\n\n";
}

// Joins runs of adjacent text chunks; a content without thinking chunks becomes a string.
Content MergeTextChunks(const Content& content, InstructVersion version) {
  if (!content.is_chunks) return content;
  if (!content.has_thinking()) return Content::Text(content.JoinedText(ChunkSeparator(version)));
  Content merged;
  merged.present = true;
  merged.is_chunks = true;
  for (const auto& chunk : content.chunks) {
    if (chunk.type == ContentChunk::Type::kText && !merged.chunks.empty() &&
        merged.chunks.back().type == ContentChunk::Type::kText) {
      merged.chunks.back().text += ChunkSeparator(version) + chunk.text;
    } else {
      merged.chunks.push_back(chunk);
    }
  }
  return merged;
}

// mistral-common's _aggregate_user_messages: runs of text (strings and text chunks) are joined
// with "\n\n"; an image closes the run before it. Without images the content is a string.
Message AggregateUsers(const std::vector<const Message*>& group, InstructVersion version) {
  (void)version;
  std::vector<std::string> texts;
  std::vector<ContentChunk> chunks;
  auto flush = [&] {
    if (texts.empty()) return;
    ContentChunk text;
    for (size_t i = 0; i < texts.size(); ++i) text.text += (i > 0 ? "\n\n" : "") + texts[i];
    chunks.push_back(std::move(text));
    texts.clear();
  };
  bool images = false;
  for (const Message* message : group) {
    if (!message->content.is_chunks) {
      texts.push_back(message->content.text);
      continue;
    }
    for (const auto& chunk : message->content.chunks) {
      if (chunk.type == ContentChunk::Type::kImage) {
        flush();
        chunks.push_back(chunk);
        images = true;
      } else {
        texts.push_back(chunk.text);
      }
    }
  }
  Message user;
  user.role = Role::kUser;
  if (!images) {
    std::string joined;
    for (size_t i = 0; i < texts.size(); ++i) joined += (i > 0 ? "\n\n" : "") + texts[i];
    user.content = Content::Text(std::move(joined));
    return user;
  }
  flush();
  user.content.present = true;
  user.content.is_chunks = true;
  user.content.chunks = std::move(chunks);
  return user;
}

Message AggregateAssistants(const std::vector<const Message*>& group, InstructVersion version) {
  Message assistant;
  assistant.role = Role::kAssistant;
  std::vector<Content> contents;
  for (const Message* message : group) {
    if (message->tool_calls) {
      for (const auto& call : *message->tool_calls) {
        if (!assistant.tool_calls) assistant.tool_calls.emplace();
        ToolCall normalized = call;
        normalized.arguments = NormalizeJsonContent(call.arguments);
        assistant.tool_calls->push_back(std::move(normalized));
      }
    }
    if (message->content.truthy()) contents.push_back(MergeTextChunks(message->content, version));
    assistant.prefix = assistant.prefix || message->prefix;
  }
  if (contents.empty()) return assistant;
  bool any_chunks =
      std::any_of(contents.begin(), contents.end(), [](const Content& c) { return c.is_chunks; });
  if (!any_chunks) {
    std::string joined;
    for (size_t i = 0; i < contents.size(); ++i) {
      if (i > 0) joined += "\n\n";
      joined += contents[i].text;
    }
    assistant.content = Content::Text(std::move(joined));
  } else {
    Content merged;
    merged.present = true;
    merged.is_chunks = true;
    for (const auto& content : contents) {
      if (content.is_chunks) {
        merged.chunks.insert(merged.chunks.end(), content.chunks.begin(), content.chunks.end());
      } else {
        ContentChunk text;
        text.text = content.text;
        merged.chunks.push_back(std::move(text));
      }
    }
    assistant.content = std::move(merged);
  }
  return assistant;
}

std::vector<Message> AggregateTools(const std::vector<const Message*>& group,
                                    InstructVersion version,
                                    const std::vector<std::string>& latest_call_ids) {
  std::vector<Message> tools;
  for (const Message* message : group) {
    Message tool = *message;
    std::string content = message->content.JoinedText();
    tool.content =
        Content::Text(version <= InstructVersion::kV3 ? NormalizeJsonContent(content) : content);
    tools.push_back(std::move(tool));
  }
  if (version >= InstructVersion::kV13) {
    // Sort by the position of the answered call in the latest assistant turn(s); unknown ids
    // last; ties by the (last) position of the same id among the results.
    std::map<std::string, size_t> call_index;
    for (size_t i = 0; i < latest_call_ids.size(); ++i) call_index[latest_call_ids[i]] = i;
    std::map<std::string, size_t> result_index;
    for (size_t i = 0; i < tools.size(); ++i)
      result_index[tools[i].tool_call_id.value_or("None")] = i;
    auto key = [&](const Message& message) {
      auto call = call_index.find(message.tool_call_id.value_or("null"));
      double primary = call == call_index.end() ? std::numeric_limits<double>::infinity()
                                                : static_cast<double>(call->second);
      return std::make_pair(primary, result_index[message.tool_call_id.value_or("None")]);
    };
    std::stable_sort(tools.begin(), tools.end(),
                     [&](const Message& a, const Message& b) { return key(a) < key(b); });
  }
  return tools;
}

}  // namespace

InstructRequest NormalizeChatRequest(const ChatRequest& request, InstructVersion version) {
  const bool system_in_place = version >= InstructVersion::kV7;
  InstructRequest normalized;
  normalized.tools = request.tools;
  normalized.continue_final_message = request.continue_final_message;

  if (!system_in_place) {
    std::vector<std::string> prompts;
    for (const auto& message : request.messages) {
      if (message.role == Role::kSystem && message.content.truthy()) {
        prompts.push_back(message.content.JoinedText());
      }
    }
    if (!prompts.empty()) {
      std::string joined;
      for (size_t i = 0; i < prompts.size(); ++i) {
        if (i > 0) joined += "\n\n";
        joined += prompts[i];
      }
      normalized.system_prompt = std::move(joined);
    }
  }

  std::vector<std::string> latest_call_ids;
  std::vector<const Message*> group;
  auto flush = [&]() {
    if (group.empty()) return;
    Role role = group.front()->role;
    switch (role) {
      case Role::kTool: {
        auto tools = AggregateTools(group, version, latest_call_ids);
        normalized.messages.insert(normalized.messages.end(), tools.begin(), tools.end());
        latest_call_ids.clear();
        break;
      }
      case Role::kAssistant: {
        normalized.messages.push_back(AggregateAssistants(group, version));
        if (normalized.messages.back().tool_calls) {
          for (const auto& call : *normalized.messages.back().tool_calls)
            latest_call_ids.push_back(call.id);
        }
        break;
      }
      case Role::kUser:
        normalized.messages.push_back(AggregateUsers(group, version));
        break;
      case Role::kSystem:
        if (system_in_place) {
          for (const Message* message : group) {
            Message system = *message;
            system.content = MergeTextChunks(message->content, version);
            normalized.messages.push_back(std::move(system));
          }
        }
        break;
    }
    group.clear();
  };
  for (const auto& message : request.messages) {
    if (!group.empty() && group.front()->role != message.role) flush();
    group.push_back(&message);
  }
  flush();

  if (normalized.messages.empty() ||
      (!system_in_place && normalized.messages.front().role != Role::kUser)) {
    Message empty_user;
    empty_user.role = Role::kUser;
    empty_user.content = Content::Text("");
    normalized.messages.insert(normalized.messages.begin(), std::move(empty_user));
  }
  return normalized;
}

}  // namespace bora::tokenizer
