// Tests Transformer::ForwardBatch: sequences run together (prefill and decode mixed, any
// grouping) get bit-identical logits to the same sequences run alone, for the exact f32 path
// and the quantized kernels, dense and MoE; bad batches are typed errors.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "base/error.h"
#include "kernels/activation.h"
#include "model/transformer.h"
#include "testdata.h"

namespace bora::testing {
namespace {

using model::BatchItem;
using model::ContiguousKvCache;
using model::Transformer;

struct Sequence {
  std::vector<int32_t> prompt;
  int steps = 0;  // greedy decode steps after the prompt
};

// Logits of every step (prompt's last row, then each decoded token's) of one sequence alone.
std::vector<std::vector<float>> RunAlone(Transformer& model, const Sequence& s) {
  const int64_t vocab = model.params().vocab_size;
  ContiguousKvCache cache = model.NewCache();
  std::vector<std::vector<float>> steps(1, std::vector<float>(vocab));
  model.Forward(s.prompt, cache, steps[0], false);
  for (int i = 0; i < s.steps; ++i) {
    const int32_t next = static_cast<int32_t>(kernels::ArgMax(steps.back().data(), vocab));
    steps.emplace_back(vocab);
    model.Forward(std::span<const int32_t>(&next, 1), cache, steps.back(), false);
  }
  return steps;
}

// The same sequences through ForwardBatch: sequence i joins at step `join[i]` (so prefills mix
// with other sequences' decode steps), then every step batches every live sequence.
std::vector<std::vector<std::vector<float>>> RunBatched(Transformer& model, const std::vector<Sequence>& seqs,
                                                        const std::vector<int>& join) {
  const int64_t vocab = model.params().vocab_size;
  std::vector<ContiguousKvCache> caches;
  for (size_t i = 0; i < seqs.size(); ++i) caches.push_back(model.NewCache());
  std::vector<std::vector<std::vector<float>>> logits(seqs.size());
  std::vector<int32_t> next(seqs.size());
  for (int step = 0;; ++step) {
    std::vector<BatchItem> items;
    std::vector<size_t> owners;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int done = static_cast<int>(logits[i].size());
      if (step < join[i] || done > seqs[i].steps) continue;
      logits[i].emplace_back(vocab);
      BatchItem item;
      item.cache = &caches[i];
      item.logits = logits[i].back();
      item.tokens = done == 0 ? std::span<const int32_t>(seqs[i].prompt) : std::span<const int32_t>(&next[i], 1);
      items.push_back(item);
      owners.push_back(i);
    }
    if (items.empty()) {
      bool finished = true;
      for (size_t i = 0; i < seqs.size(); ++i) finished = finished && step >= join[i];
      if (finished) break;
      continue;
    }
    model.ForwardBatch(items);
    for (size_t i : owners) next[i] = static_cast<int32_t>(kernels::ArgMax(logits[i].back().data(), vocab));
  }
  return logits;
}

void ExpectBatchInvariant(const std::string& dir, std::optional<DType> dtype) {
  model::LoadOptions options;
  options.context = 64;
  options.threads = 2;
  options.dtype = dtype;
  std::unique_ptr<Transformer> model = model::LoadModel(dir, options);
  const std::vector<Sequence> seqs = {
      {{1, 5, 9, 200, 31, 7, 7, 42}, 6}, {{1, 99}, 9}, {{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 3}, {{1}, 5}};
  for (const std::vector<int>& join : {std::vector<int>{0, 0, 0, 0}, std::vector<int>{0, 2, 3, 5}}) {
    const auto batched = RunBatched(*model, seqs, join);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const auto alone = RunAlone(*model, seqs[i]);
      ASSERT_EQ(batched[i].size(), alone.size());
      for (size_t step = 0; step < alone.size(); ++step) {
        ASSERT_EQ(batched[i][step], alone[step]) << dir << " sequence " << i << " step " << step << " join "
                                                 << join[1];
      }
    }
  }
}

TEST(BatchForwardTest, BatchedSequencesGetTheirAloneLogitsBitForBit) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* name : {"tiny-dense", "tiny-moe", "tiny-ministral3"}) {
    const std::string dir = shared + "/reference-models/" + name + "/mistral";
    ExpectBatchInvariant(dir, std::nullopt);
    ExpectBatchInvariant(dir, DType::kQ8);
    ExpectBatchInvariant(dir, DType::kQ4);
  }
}

TEST(BatchForwardTest, BadBatchesAreTypedErrors) {
  BORA_REQUIRE_SHARED(shared);
  model::LoadOptions options;
  options.context = 8;
  std::unique_ptr<Transformer> model = model::LoadModel(shared + "/reference-models/tiny-dense/mistral", options);
  const int64_t vocab = model->params().vocab_size;
  ContiguousKvCache a = model->NewCache(), b = model->NewCache();
  std::vector<float> la(vocab), lb(vocab);
  const std::vector<int32_t> tokens = {1, 2};
  EXPECT_THROW(model->ForwardBatch({}), InvalidArgument);
  const BatchItem shared_cache[] = {{tokens, &a, la, false, {}, nullptr, {}}, {tokens, &a, lb, false, {}, nullptr, {}}};
  EXPECT_THROW(model->ForwardBatch(shared_cache), InvalidArgument);
  const std::vector<int32_t> too_long(9, 1);
  const BatchItem overflow[] = {{tokens, &a, la, false, {}, nullptr, {}}, {too_long, &b, lb, false, {}, nullptr, {}}};
  EXPECT_THROW(model->ForwardBatch(overflow), ResourceExhausted);
  const std::vector<int32_t> bad_id = {1, static_cast<int32_t>(vocab)};
  const BatchItem out_of_vocab[] = {{tokens, &a, la, false, {}, nullptr, {}}, {bad_id, &b, lb, false, {}, nullptr, {}}};
  EXPECT_THROW(model->ForwardBatch(out_of_vocab), InvalidArgument);
  EXPECT_EQ(a.position(), 0);  // a rejected batch changes no cache
  EXPECT_EQ(b.position(), 0);
}

}  // namespace
}  // namespace bora::testing
