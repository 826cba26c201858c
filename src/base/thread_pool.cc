// A fixed pool of worker threads running fork-join loops.
#include "base/thread_pool.h"

#include <sched.h>

#include <algorithm>

namespace bora {
namespace {

// Range of thread `index` out of `parts` over [0, count): the first `count % parts` get one more.
std::pair<int64_t, int64_t> SplitRange(int64_t count, int parts, int index) {
  int64_t base = count / parts;
  int64_t extra = count % parts;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  int64_t end = begin + base + (index < extra ? 1 : 0);
  return {begin, end};
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  int workers = std::max(1, num_threads) - 1;
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { WorkerLoop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::Run(int64_t count, Trampoline trampoline, void* context) {
  if (count <= 0) return;
  int parts = num_threads();
  if (parts == 1 || count == 1) {
    trampoline(context, 0, count, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    trampoline_ = trampoline;
    context_ = context;
    count_ = count;
    pending_ = parts - 1;
    ++generation_;
  }
  work_ready_.notify_all();
  auto [begin, end] = SplitRange(count, parts, 0);
  if (begin < end) trampoline(context, begin, end, 0);
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, [this] { return pending_ == 0; });
  trampoline_ = nullptr;
  context_ = nullptr;
}

void ThreadPool::WorkerLoop(int thread_index) {
  uint64_t seen_generation = 0;
  while (true) {
    Trampoline trampoline;
    void* context;
    int64_t count;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_;
      trampoline = trampoline_;
      context = context_;
      count = count_;
    }
    auto [begin, end] = SplitRange(count, num_threads(), thread_index);
    if (begin < end) trampoline(context, begin, end, thread_index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --pending_;
    }
    work_done_.notify_one();
  }
}

int DefaultThreadCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace bora
