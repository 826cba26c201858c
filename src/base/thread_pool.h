// A fixed pool of worker threads running fork-join loops; passed explicitly, never global.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace bora {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: 1 means no worker threads at all.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

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
  void WorkerLoop(int thread_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  Trampoline trampoline_ = nullptr;
  void* context_ = nullptr;
  int64_t count_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

// Threads to use when the user does not say: the CPUs this process may run on.
int DefaultThreadCount();

}  // namespace bora
