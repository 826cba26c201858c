// The generation fields chat, FIM and legacy completions share, read from either dialect
// (aliases seed -> random_seed, max_completion_tokens -> max_tokens) with their ranges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/request.h"
#include "server/json_body.h"

namespace bora::server {

struct GenerationFields {
  runtime::SamplingParams sampling;
  std::optional<int64_t> max_tokens;  // none: up to the context end
  int64_t min_tokens = 0;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Reads the shared fields; `default_temperature` applies when the body has none, `max_choices`
// bounds n, `vocab_size` bounds logit_bias ids and top_k. Throws ApiError.
GenerationFields ParseGenerationFields(const Json& body, float default_temperature, int max_choices,
                                       int64_t vocab_size);

// The request's max_tokens checked against the room the prompt leaves in the context (400
// "context length exceeded" with both numbers; never a silent truncation).
int64_t ResolveMaxTokens(const GenerationFields& fields, int64_t prompt_tokens, int64_t context);

}  // namespace bora::server
