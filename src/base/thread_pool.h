// A fixed pool of worker threads running fork-join loops with static partitions; passed
// explicitly, never global. Workers spin briefly between jobs (a decode step issues hundreds
// of small fork-joins) and then sleep on a condition variable, so an idle pool costs nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace bora {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 means no worker threads at all. With `pin`,
  // thread i is bound to the i-th CPU this process may run on (ignored when that fails).
  explicit ThreadPool(int num_threads, bool pin = false);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Splits [0, count) into one contiguous range per thread and runs
  // `body(begin, end, thread_index)` on each; returns when all are done. Not reentrant.
  // `body` must not throw. Ranges differ only by thread count, never by timing.
  // Never allocates (the body is passed by pointer, not wrapped in std::function).
  template <typename Body>
  void ParallelFor(int64_t count, Body&& body) {
    using Stored = std::remove_reference_t<Body>;
    Run(count, [](void* context, int64_t begin, int64_t end, int thread) {
      (*static_cast<Stored*>(context))(begin, end, thread);
    }, const_cast<void*>(static_cast<const void*>(&body)));
  }

 private:
  using Trampoline = void (*)(void* context, int64_t begin, int64_t end, int thread);
  void Run(int64_t count, Trampoline trampoline, void* context);
  void WorkerLoop(int thread_index, bool pin);

  const int num_threads_;  // fixed before any worker starts (workers read it)
  std::vector<std::thread> workers_;
  // The current job; written by Run before `generation_` is bumped, read by workers after.
  Trampoline trampoline_ = nullptr;
  void* context_ = nullptr;
  int64_t count_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers still running the current job
  std::atomic<int> sleepers_{0};  // workers blocked (or about to block) on `wake_`
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

// Threads to use when the user does not say: the CPUs this process may run on.
int DefaultThreadCount();

}  // namespace bora
