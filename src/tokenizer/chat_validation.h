// Request validation exactly as mistral-common's MistralRequestValidator family per version.
#pragma once

#include "tokenizer/chat_request.h"
#include "tokenizer/instruct_version.h"

namespace bora::tokenizer {

// Throws InvalidArgument with mistral-common's reason when `request` is not acceptable for
// `version` in `mode` (message order, last message, tool-call ids and counts, names, tool
// schemas, content/tool-call combinations). Runs on the request as given, before normalisation.
void ValidateChatRequest(const ChatRequest& request, InstructVersion version, ValidationMode mode);

// Whether `schema` passes a JSON-Schema Draft 7 meta-schema check of the keywords tools use
// (types, properties, items, required, enum, combinators, numeric and string limits).
bool IsValidToolSchema(const OrderedJson& schema, std::string* problem);

}  // namespace bora::tokenizer
