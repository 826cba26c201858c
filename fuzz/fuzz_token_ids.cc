// libFuzzer target: arbitrary int32 id sequences (mostly in range, some not) through Decode under
// every policy, the streaming detokenizer and every instruct version's assistant-output parser:
// out-of-range ids are InvalidArgument before any table lookup, in-range ids never fail.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/instruct_version.h"
#include "tokenizer/output_parser.h"
#include "tokenizer/streaming_detokenizer.h"
#include "tokenizer_fuzz_common.h"

namespace {

// Ids from `data`, three bytes each: the top two bits of the first byte choose an in-range id
// (0-2: the 22 low bits modulo the vocabulary; 3 with bit 5 clear: a special or near-boundary
// id) or an out-of-range one (3 with bit 5 set: negative, at or beyond vocab_size, or extreme).
std::vector<int32_t> IdsFromBytes(std::span<const uint8_t> data, int32_t vocab_size) {
  std::vector<int32_t> ids;
  for (size_t pos = 0; pos + 3 <= data.size(); pos += 3) {
    const uint32_t low22 =
        (uint32_t{data[pos]} & 0x3F) << 16 | uint32_t{data[pos + 1]} << 8 | data[pos + 2];
    const uint32_t mode = data[pos] >> 6;
    if (mode < 3) {
      ids.push_back(static_cast<int32_t>(low22 % static_cast<uint32_t>(vocab_size)));
    } else if ((data[pos] & 0x20) == 0) {
      const int32_t near = static_cast<int32_t>(data[pos + 2] % 64);
      ids.push_back((data[pos + 1] & 1) != 0 ? std::max(0, vocab_size - 1 - near)
                                             : std::min(vocab_size - 1, near));
    } else {
      switch (data[pos + 1] % 4) {
        case 0:
          ids.push_back(-1 - static_cast<int32_t>(data[pos + 2]));
          break;
        case 1:
          ids.push_back(vocab_size + static_cast<int32_t>(data[pos + 2] % 64));
          break;
        case 2:
          ids.push_back(INT32_MIN + data[pos + 2]);
          break;
        default:
          ids.push_back(INT32_MAX - data[pos + 2]);
      }
    }
  }
  return ids;
}

template <typename Call>
bool ThrowsInvalidArgument(Call call) {
  try {
    call();
  } catch (const bora::InvalidArgument&) {
    return true;
  }
  return false;
}

}  // namespace

// Loads the tokenizers before fuzzing starts, outside the per-input -timeout.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  (void)bora::fuzz::LoadFuzzTokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bora::fuzz::Require;
  using bora::tokenizer::InstructVersion;
  using bora::tokenizer::SpecialTokenPolicy;
  if (size < 1) return 0;
  const auto& all = bora::fuzz::LoadFuzzTokenizers().loaded;
  const auto& loaded = all[data[0] % all.size()];
  const bora::tokenizer::Tokenizer& tokenizer = *loaded.tokenizer;
  const std::vector<int32_t> ids = IdsFromBytes({data + 1, size - 1}, tokenizer.vocab_size());
  size_t first_bad = ids.size();
  for (size_t i = 0; i < ids.size() && first_bad == ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tokenizer.vocab_size()) first_bad = i;
  }
  const std::string_view plan(reinterpret_cast<const char*>(data), size);

  for (const auto policy :
       {SpecialTokenPolicy::kIgnore, SpecialTokenPolicy::kKeep, SpecialTokenPolicy::kRaise}) {
    if (first_bad == ids.size()) {
      bora::fuzz::CheckStreaming(tokenizer, ids, policy, plan);
      continue;
    }
    // T5: an out-of-range id is rejected before any lookup, by Decode and by the stream (at
    // that id, unless kRaise stopped it earlier at a special id).
    Require(ThrowsInvalidArgument([&] { (void)tokenizer.Decode(ids, policy); }),
            "Decode accepted an out-of-range id");
    bora::tokenizer::StreamingDetokenizer stream(tokenizer, policy);
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool threw = ThrowsInvalidArgument([&] { (void)stream.Push(ids[i]); });
      if (i == first_bad) {
        Require(threw, "StreamingDetokenizer accepted an out-of-range id");
        break;
      }
      if (threw) {
        Require(policy == SpecialTokenPolicy::kRaise, "Push of an in-range id threw");
        break;
      }
    }
  }
  for (const int32_t id : std::span(ids).first(std::min<size_t>(ids.size(), 8))) {
    if (id >= 0 && id < tokenizer.vocab_size()) {
      Require(bora::fuzz::IsValidUtf8(tokenizer.IdToPiece(id)), "IdToPiece is not UTF-8");
      (void)tokenizer.TokenBytes(id);
    } else {
      Require(ThrowsInvalidArgument([&] { (void)tokenizer.IdToPiece(id); }),
              "IdToPiece accepted an out-of-range id");
      Require(ThrowsInvalidArgument([&] { (void)tokenizer.TokenBytes(id); }),
              "TokenBytes accepted an out-of-range id");
    }
  }

  for (const InstructVersion version :
       {InstructVersion::kV1, InstructVersion::kV2, InstructVersion::kV3, InstructVersion::kV7,
        InstructVersion::kV11, InstructVersion::kV13, InstructVersion::kV15}) {
    try {
      const bora::tokenizer::ParsedAssistant parsed = bora::tokenizer::ParseAssistantOutput(
          tokenizer, version, ids, [] { return std::string("abcdefghi"); });
      Require(bora::fuzz::IsValidUtf8(parsed.content), "parsed content is not UTF-8");
      for (const auto& call : parsed.tool_calls) {
        Require(bora::fuzz::IsValidUtf8(call.name) && bora::fuzz::IsValidUtf8(call.arguments),
                "parsed tool call is not UTF-8");
      }
    } catch (const bora::InvalidArgument&) {
      Require(first_bad < ids.size(), "ParseAssistantOutput threw on in-range ids");
    }
  }
  return 0;
}
