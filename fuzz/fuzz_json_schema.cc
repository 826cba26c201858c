// libFuzzer target: arbitrary bytes parsed as JSON and compiled as a JSON Schema (bad schemas
// are typed errors, never crashes); a schema that compiles drives a byte matcher over the
// input's own bytes and a few JSON-ish probes.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "runtime/constraint/byte_matcher.h"
#include "runtime/constraint/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bora::runtime::constraint;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const SchemaJson schema = SchemaJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  std::shared_ptr<const Grammar> grammar;
  try {
    grammar = CompileJsonSchema(schema);
  } catch (const bora::Error&) {
    return 0;
  }
  ByteMatcher matcher(grammar);
  std::vector<Thread> current, next;
  constexpr std::string_view kProbes[] = {"{\"a\":1}", "[]", "\"x\"", "0", "null", "{}"};
  for (std::string_view probe : kProbes) {
    (void)MatchesText(grammar, probe);
  }
  // Greedy walk: at each step take the first byte (from the input, then a fixed alphabet)
  // that the grammar allows; exercises expansion, strings and compaction.
  matcher.Start(current);
  constexpr std::string_view kAlphabet = "\"{}[],:0123456789-.eatrufnl \\";
  for (size_t step = 0; step < 64; ++step) {
    bool advanced = false;
    const uint8_t preferred = size > 0 ? data[step % size] : '{';
    if (matcher.Step(current, preferred, next)) {
      advanced = true;
    } else {
      for (char c : kAlphabet) {
        if (matcher.Step(current, static_cast<uint8_t>(c), next)) {
          advanced = true;
          break;
        }
      }
    }
    if (!advanced) break;
    current.swap(next);
    matcher.Compact(current);
  }
  return 0;
}
