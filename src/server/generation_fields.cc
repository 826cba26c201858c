// Reading and range-checking the shared generation fields.
#include "server/generation_fields.h"

#include <limits>

#include "server/api_error.h"

namespace bora::server {
namespace {

constexpr int kMaxStops = 16;
constexpr size_t kMaxStopBytes = 1024;
constexpr size_t kMaxLogitBias = 1024;

}  // namespace

GenerationFields ParseGenerationFields(const Json& body, float default_temperature, int max_choices,
                                       int64_t vocab_size) {
  GenerationFields f;
  runtime::SamplingParams& s = f.sampling;
  s.temperature =
      static_cast<float>(NumberField(body, "temperature", 0.0, 2.0).value_or(default_temperature));
  // top_p is in (0, 1] (an empty nucleus samples nothing); temperature 0 is the way to greedy.
  if (auto top_p = NumberField(body, "top_p", 0.0, 1.0)) {
    if (*top_p == 0.0) {
      throw ApiError::BadField(
          "top_p", "top_p must be above 0 and at most 1 (use temperature 0 for greedy)");
    }
    s.top_p = static_cast<float>(*top_p);
  }
  s.top_k = static_cast<int32_t>(IntField(body, "top_k", 0, vocab_size).value_or(0));
  s.min_p = static_cast<float>(NumberField(body, "min_p", 0.0, 1.0).value_or(0.0));
  s.presence_penalty =
      static_cast<float>(NumberField(body, "presence_penalty", -2.0, 2.0).value_or(0.0));
  s.frequency_penalty =
      static_cast<float>(NumberField(body, "frequency_penalty", -2.0, 2.0).value_or(0.0));
  if (auto penalty = NumberField(body, "repetition_penalty", 0.0, 10.0)) {
    if (*penalty == 0.0)
      throw ApiError::BadField("repetition_penalty", "repetition_penalty must be above 0");
    s.repetition_penalty = static_cast<float>(*penalty);
  }
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(),
                    kMax = std::numeric_limits<int64_t>::max();
  std::optional<int64_t> seed = IntField(body, "random_seed", kMin, kMax);
  if (!seed) seed = IntField(body, "seed", kMin, kMax);
  if (seed) s.seed = static_cast<uint64_t>(*seed);

  // logprobs: a boolean in chat (with top_logprobs), an integer count in legacy completions.
  if (const auto it = body.find("logprobs"); it != body.end() && !it->is_null()) {
    if (it->is_boolean()) {
      s.logprobs = it->get<bool>();
    } else {
      const int64_t count = *IntField(body, "logprobs", 0, runtime::kMaxTopLogprobs);
      s.logprobs = true;
      s.top_logprobs = static_cast<int32_t>(count);
    }
  }
  if (auto top = IntField(body, "top_logprobs", 0, runtime::kMaxTopLogprobs)) {
    s.top_logprobs = static_cast<int32_t>(*top);
    if (*top > 0) s.logprobs = true;
  }
  if (const auto it = body.find("logit_bias"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      throw ApiError::Validation("logit_bias", "logit_bias must be an object of token id -> bias");
    if (it->size() > kMaxLogitBias)
      throw ApiError::BadField("logit_bias", "logit_bias has more than 1024 entries");
    for (const auto& [key, value] : it->items()) {
      // Decimal digits only: std::stoll alone would also take " 5", "+5" and "5.0" (as 5).
      int64_t id = -1;
      if (!key.empty() && key.size() <= 10 &&
          key.find_first_not_of("0123456789") == std::string::npos) {
        id = std::stoll(key);
      }
      if (id < 0 || id >= vocab_size) {
        throw ApiError::BadField(
            "logit_bias",
            "logit_bias key \"" + key + "\" is not a token id below " + std::to_string(vocab_size));
      }
      if (!value.is_number() || value.get<double>() < -100.0 || value.get<double>() > 100.0) {
        throw ApiError::BadField("logit_bias", "logit_bias values must be numbers in [-100, 100]");
      }
      s.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
    }
  }

  f.max_tokens = IntField(body, "max_tokens", kMin, kMax);
  if (!f.max_tokens) f.max_tokens = IntField(body, "max_completion_tokens", kMin, kMax);
  if (f.max_tokens && *f.max_tokens < 1) {
    throw ApiError::BadField("max_tokens",
                             "max_tokens must be at least 1, got " + std::to_string(*f.max_tokens));
  }
  f.min_tokens = IntField(body, "min_tokens", 0, kMax).value_or(0);
  if (f.max_tokens && f.min_tokens > *f.max_tokens) {
    throw ApiError::BadField("min_tokens", "min_tokens must not exceed max_tokens");
  }
  if (auto stop = StringListField(body, "stop")) {
    if (stop->size() > kMaxStops) throw ApiError::BadField("stop", "stop takes at most 16 strings");
    for (const std::string& text : *stop) {
      if (text.empty() || text.size() > kMaxStopBytes) {
        throw ApiError::BadField("stop", "stop strings must be 1 to 1024 bytes");
      }
    }
    f.stop = std::move(*stop);
  }
  f.n = static_cast<int>(IntField(body, "n", 1, max_choices).value_or(1));
  f.stream = BoolField(body, "stream").value_or(false);
  if (const auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      throw ApiError::Validation("stream_options", "stream_options must be an object");
    f.include_usage =
        BoolField(*it, "include_usage", "stream_options.include_usage").value_or(false);
  }
  return f;
}

int64_t ResolveMaxTokens(const GenerationFields& fields, int64_t prompt_tokens, int64_t context) {
  const int64_t room = context - prompt_tokens;
  if (room < 1) {
    throw ApiError(400, "invalid_request_error",
                   "context length exceeded: the prompt has " + std::to_string(prompt_tokens) +
                       " tokens and the model's context is " + std::to_string(context) +
                       " (nothing is truncated; shorten the prompt)",
                   "context_length_exceeded", "messages");
  }
  const int64_t max_tokens = fields.max_tokens.value_or(room);
  if (fields.min_tokens > max_tokens) {  // also when max_tokens was left out (or null)
    throw ApiError::BadField("min_tokens", "min_tokens " + std::to_string(fields.min_tokens) +
                                               " exceeds the " + std::to_string(max_tokens) +
                                               " tokens this request may generate");
  }
  if (!fields.max_tokens) return room;
  if (*fields.max_tokens > room) {
    throw ApiError(400, "invalid_request_error",
                   "context length exceeded: " + std::to_string(prompt_tokens) +
                       " prompt tokens + max_tokens " + std::to_string(*fields.max_tokens) +
                       " exceed the model's context of " + std::to_string(context) +
                       "; lower max_tokens to at most " + std::to_string(room),
                   "context_length_exceeded", "max_tokens");
  }
  return *fields.max_tokens;
}

}  // namespace bora::server
