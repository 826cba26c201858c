// Embeddings: tokenising the inputs, pooling on the engine, encoding the vectors.
#include "server/embeddings.h"

#include <cmath>
#include <cstring>
#include <random>

#include "base/error.h"
#include "server/api_error.h"

namespace bora::server {
namespace {

constexpr size_t kMaxInputs = 256;

}  // namespace

std::string Base64Encode(const void* data, size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t chunk = (uint32_t{bytes[i]} << 16) |
                           (i + 1 < size ? uint32_t{bytes[i + 1]} << 8 : 0) |
                           (i + 2 < size ? uint32_t{bytes[i + 2]} : 0);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

Json RunEmbeddings(const Json& body, ServedModel& model, Metrics& metrics) {
  const ReleaseMemoryAroundLargeRequest release(body);
  if (!body.contains("input")) throw ApiError::Validation("input", "Field required", "missing");
  const Json& input = body["input"];
  const tokenizer::Tokenizer& tokenizer = model.tokenizer();
  std::vector<std::vector<int32_t>> inputs;
  auto add_text = [&](const std::string& text) {
    if (text.empty()) throw ApiError::BadField("input", "an input string is empty");
    std::vector<int32_t> ids = tokenizer.Encode(text);
    ids.insert(ids.begin(), tokenizer.bos_id());
    inputs.push_back(std::move(ids));
  };
  auto add_ids = [&](const Json& list) {
    std::vector<int32_t> ids;
    for (const Json& id : list) {
      if (!id.is_number_integer())
        throw ApiError::Validation("input", "token id lists must hold integers", "int_type");
      // Unsigned ids above int64 would read as negative: compare them unsigned.
      const bool too_big =
          id.is_number_unsigned() && id.get<uint64_t>() >= static_cast<uint64_t>(INT64_MAX);
      const int64_t value = too_big ? INT64_MAX : id.get<int64_t>();
      if (value < 0 || value >= model.model().params().vocab_size) {
        throw ApiError::BadField("input", "token id " + id.dump() + " is outside the vocabulary");
      }
      ids.push_back(static_cast<int32_t>(value));
    }
    inputs.push_back(std::move(ids));
  };
  if (input.is_string()) {
    add_text(input.get<std::string>());
  } else if (input.is_array() && !input.empty() && input[0].is_number_integer()) {
    add_ids(input);
  } else if (input.is_array()) {
    for (const Json& item : input) {
      if (item.is_string()) {
        add_text(item.get<std::string>());
      } else if (item.is_array()) {
        add_ids(item);
      } else {
        throw ApiError::Validation(
            "input", "input must be a string, a list of strings or token id lists", "string_type");
      }
    }
  } else {
    throw ApiError::Validation(
        "input", "input must be a string, a list of strings or token id lists", "string_type");
  }
  if (inputs.empty()) throw ApiError::BadField("input", "input must not be empty");
  if (inputs.size() > kMaxInputs)
    throw ApiError::BadField("input", "at most 256 inputs per request");
  for (const auto& ids : inputs) {
    if (ids.empty()) throw ApiError::BadField("input", "an input is empty");
  }

  const int64_t dim = model.model().params().dim;
  std::optional<int64_t> dimensions = IntField(body, "output_dimension", 1, dim);
  if (!dimensions) dimensions = IntField(body, "dimensions", 1, dim);
  const std::string encoding = StringField(body, "encoding_format").value_or("float");
  if (encoding != "float" && encoding != "base64") {
    throw ApiError::BadField("encoding_format", "encoding_format must be float or base64");
  }
  const std::string dtype = StringField(body, "output_dtype").value_or("float");
  if (dtype != "float")
    throw ApiError::BadField("output_dtype", "only output_dtype float is supported");

  int64_t prompt_tokens = 0;
  for (const auto& ids : inputs) prompt_tokens += static_cast<int64_t>(ids.size());
  std::vector<std::vector<float>> vectors = model.engine().Embed(inputs, model.adapter());

  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    std::vector<float>& v = vectors[i];
    if (dimensions && *dimensions < dim) {  // leading dimensions, renormalised
      v.resize(static_cast<size_t>(*dimensions));
      double norm = 0;
      for (float x : v) norm += static_cast<double>(x) * x;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (float& x : v) x = static_cast<float>(x / norm);
      }
    }
    Json item = {{"object", "embedding"}, {"index", i}};
    if (encoding == "base64") {
      item["embedding"] = Base64Encode(v.data(), v.size() * sizeof(float));  // x86: little-endian
    } else {
      item["embedding"] = v;
    }
    data.push_back(item);
  }
  metrics.AddTokens(prompt_tokens, 0);
  std::random_device device;
  char id[32];
  std::snprintf(id, sizeof(id), "embd-%08x%08x", device(), device());
  return {{"id", id},
          {"object", "list"},
          {"model", model.id()},
          {"data", data},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", 0},
            {"total_tokens", prompt_tokens}}}};
}

}  // namespace bora::server
