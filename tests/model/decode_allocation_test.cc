// A decode step (one token through the KV cache) performs no heap allocation, for dense and
// MoE models, once the model is loaded.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <optional>

#include "model/model_test_util.h"
#include "model/transformer.h"
#include "testdata.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions (this test binary only).
void* operator new(size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace bora::testing {
namespace {

void ExpectDecodeDoesNotAllocate(const formats::ModelParams& params,
                                 std::optional<DType> dtype = std::nullopt,
                                 const model::LoraAdapter* lora = nullptr) {
  TempDir dir;
  MakeModel(params, 21, dir.path());
  model::LoadOptions options;
  options.context = 64;
  options.threads = 2;
  options.dtype = dtype;
  auto engine = model::LoadModel(dir.path(), options);
  model::ContiguousKvCache cache = engine->NewCache();
  std::vector<float> logits(static_cast<size_t>(params.vocab_size));
  std::vector<int32_t> prompt = RandomTokens(8, params.vocab_size, 7);
  engine->Forward(prompt, cache, logits, false, lora);

  g_allocations = 0;
  g_counting = true;
  for (int step = 0; step < 16; ++step) {
    int32_t token = static_cast<int32_t>(step * 7 % params.vocab_size);
    engine->Forward(std::span<const int32_t>(&token, 1), cache, logits, false, lora);
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
}

TEST(DecodeAllocationTest, DenseDecodeStepDoesNotAllocate) {
  formats::ModelParams params = SmallParams();
  params.layer_windows.assign(params.n_layers, 5);
  ExpectDecodeDoesNotAllocate(params);
}

TEST(DecodeAllocationTest, MoeDecodeStepDoesNotAllocate) {
  formats::ModelParams params = SmallParams();
  params.moe = formats::MoeParams{4, 2};
  ExpectDecodeDoesNotAllocate(params);
}

TEST(DecodeAllocationTest, QuantizedDecodeStepDoesNotAllocate) {
  for (DType dtype : {DType::kQ8, DType::kQ4, DType::kBF16}) {
    ExpectDecodeDoesNotAllocate(SmallParams(), dtype);
    formats::ModelParams moe = SmallParams();
    moe.moe = formats::MoeParams{4, 2};
    ExpectDecodeDoesNotAllocate(moe, dtype);
  }
}

TEST(DecodeAllocationTest, LoraDecodeStepDoesNotAllocate) {
  // The low-rank intermediates [rows, rank] live in scratch sized by the prefill.
  formats::ModelParams params = SmallParams();
  const model::LoraAdapter dense = model::NewLoraAdapter(params, 8, 2.0f);
  ExpectDecodeDoesNotAllocate(params, std::nullopt, &dense);
  ExpectDecodeDoesNotAllocate(params, DType::kQ8, &dense);
  params.moe = formats::MoeParams{4, 2};
  const model::LoraAdapter moe = model::NewLoraAdapter(params, 8, 2.0f);
  ExpectDecodeDoesNotAllocate(params, std::nullopt, &moe);
}

TEST(DecodeAllocationTest, CounterSeesAllocations) {
  g_allocations = 0;
  g_counting = true;
  auto* probe = new std::vector<int>(100);
  g_counting = false;
  delete probe;
  EXPECT_GE(g_allocations.load(), 1);  // the instrument works
}

}  // namespace
}  // namespace bora::testing
