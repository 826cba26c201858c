// A fixed pool of worker threads running fork-join loops (spin, then sleep).
#include "base/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BORA_CPU_RELAX() _mm_pause()
#else
#define BORA_CPU_RELAX() std::this_thread::yield()
#endif

namespace bora {
namespace {

// How long an idle worker spins before sleeping: longer than the gap between two fork-joins
// of a decode step, far shorter than a human-visible pause.
constexpr auto kSpinTime = std::chrono::microseconds(300);

// Range of thread `index` out of `parts` over [0, count): the first `count % parts` get one more.
std::pair<int64_t, int64_t> SplitRange(int64_t count, int parts, int index) {
  int64_t base = count / parts;
  int64_t extra = count % parts;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  int64_t end = begin + base + (index < extra ? 1 : 0);
  return {begin, end};
}

void PinCurrentThread(int index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == index) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      return;
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads, bool pin) : num_threads_(std::max(1, num_threads)) {
  const int workers = num_threads_ - 1;
  if (pin) PinCurrentThread(0);
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i, pin] { WorkerLoop(i + 1, pin); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::Run(int64_t count, Trampoline trampoline, void* context) {
  if (count <= 0) return;
  int parts = num_threads();
  if (parts == 1 || count == 1) {
    trampoline(context, 0, count, 0);
    return;
  }
  trampoline_ = trampoline;
  context_ = context;
  count_ = count;
  pending_.store(parts - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes the job fields
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    // Taking the mutex orders this notify after any sleeper's predicate check.
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
  }
  auto [begin, end] = SplitRange(count, parts, 0);
  if (begin < end) trampoline(context, begin, end, 0);
  // Spin for the workers; yield once they are late (a worker may have lost its CPU).
  for (uint32_t spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      BORA_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop(int thread_index, bool pin) {
  if (pin) PinCurrentThread(thread_index);
  // More threads than CPUs: spinning would only steal time from the threads doing the work.
  const auto spin_time = num_threads() <= DefaultThreadCount() ? kSpinTime : std::chrono::microseconds(0);
  uint64_t seen_generation = 0;
  while (true) {
    // Spin for a new job, then sleep.
    auto spin_start = std::chrono::steady_clock::now();
    uint32_t spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen_generation && !stopping_.load()) {
      BORA_CPU_RELAX();
      if (++spins % 1024 == 0 && std::chrono::steady_clock::now() - spin_start >= spin_time) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] {
          return stopping_.load() || generation_.load(std::memory_order_seq_cst) != seen_generation;
        });
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        spin_start = std::chrono::steady_clock::now();
      }
    }
    if (stopping_.load()) return;
    seen_generation = generation_.load(std::memory_order_acquire);
    auto [begin, end] = SplitRange(count_, num_threads(), thread_index);
    if (begin < end) trampoline_(context_, begin, end, thread_index);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

int DefaultThreadCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace bora
