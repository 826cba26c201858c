// UTF-8 helpers: decoding one code point with validation, encoding, and completeness checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bora::tokenizer {

// Decodes the code point starting at text[pos]; returns its byte length, or 0 when the bytes
// there are not a complete, valid, shortest-form UTF-8 sequence (surrogates rejected).
size_t DecodeUtf8(std::string_view text, size_t pos, uint32_t& code_point);

// Appends the UTF-8 encoding of `code_point` (must be a Unicode scalar value).
void AppendUtf8(uint32_t code_point, std::string& out);

// Length of the longest prefix of `bytes` that does not end inside an incomplete (but so far
// valid) UTF-8 sequence: the caller can emit bytes[0, n) and keep the rest for later.
size_t CompleteUtf8Prefix(std::string_view bytes);

// `bytes` with every maximal invalid subsequence replaced by U+FFFD, as Python's
// bytes.decode("utf-8", errors="replace").
std::string ReplaceInvalidUtf8(std::string_view bytes);

}  // namespace bora::tokenizer
