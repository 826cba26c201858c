// POST /v1/embeddings: pooled hidden states of the served model, as float lists or the base64
// little-endian float32 the OpenAI SDKs ask for by default.
#pragma once

#include "server/json_body.h"
#include "server/metrics.h"
#include "server/served_model.h"

namespace bora::server {

// Builds the response for a body whose model is already resolved. Throws ApiError.
Json RunEmbeddings(const Json& body, ServedModel& model, Metrics& metrics);

// Standard base64 (with padding) of raw bytes.
std::string Base64Encode(const void* data, size_t size);

}  // namespace bora::server
