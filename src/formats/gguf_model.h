// A GGUF model file read as a model "folder": hyper-parameters from its `llama` / `mistral3`
// metadata (every architecture key understood or refused by name) and its tensor names mapped
// to Mistral-native ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "formats/gguf.h"
#include "formats/model_params.h"

namespace bora::formats {

// Hyper-parameters of a GGUF model. Throws Unsupported naming the architecture or key bora does
// not understand, FormatError for missing or inconsistent values.
ModelParams GgufModelParams(const GgufHeader& header);

// A GGUF tensor name under Mistral-native naming. `expert_slabs`: a 3-D `ffn_*_exps` tensor whose
// slab e is `native` with "{e}" replaced by e. Throws FormatError for names bora does not know.
struct GgufNativeName {
  std::string native;  // e.g. "layers.3.attention.wq.weight", "layers.0.feed_forward.experts.{e}.w1.weight"
  bool expert_slabs = false;
};
GgufNativeName GgufToNativeName(std::string_view gguf_name, const std::string& file_name);

// Bytes the weights take once opened: `exact` = every quantized tensor dequantized to f32 (what
// --dtype f32 and explicit conversions start from); otherwise bora's own decoding (F32/F16/BF16
// mapped, Q8_0/Q4_0 repacked losslessly, other types converted to q8).
uint64_t GgufDecodedBytes(const GgufHeader& header, bool exact);

}  // namespace bora::formats
