// `bora bench --concurrent 1,4,8`: sequences through the real engine and scheduler, reporting
// the aggregate decode rate while all of them decode together and the time to first token.
#pragma once

#include <cstdint>
#include <vector>

#include "model/transformer.h"
#include "runtime/constraint/grammar.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace bora::app {

struct ConcurrentBenchConfig {
  std::vector<int> concurrency;
  int64_t prompt_tokens = 512;
  int64_t generate_tokens = 128;
  int repetitions = 1;
  bool json = false;
  int64_t shared_prefix = 0;      // leading prompt tokens every request shares (run once before)
  runtime::EngineOptions engine;  // KV options; sequences and queue set per level
  // --json-schema: every level runs twice per repetition, interleaved, without and with this
  // constraint (sampling stops at EOS once the grammar allows it), and reports the ratio of the
  // time per output token. Needs the model's tokenizer.
  std::shared_ptr<const runtime::constraint::Grammar> grammar;
  const tokenizer::Tokenizer* tokenizer = nullptr;
};

int RunConcurrentBench(model::Transformer& model, const ConcurrentBenchConfig& config);

}  // namespace bora::app
