// Tests ThreadPool::ParallelFor coverage, range determinism and repeated use, and
// DefaultThreadCount.
#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

namespace bora {
namespace {

struct Range {
  int64_t begin;
  int64_t end;
  int thread_index;
  bool operator<(const Range& other) const {
    return std::tie(begin, end, thread_index) <
           std::tie(other.begin, other.end, other.thread_index);
  }
  bool operator==(const Range& other) const {
    return begin == other.begin && end == other.end && thread_index == other.thread_index;
  }
};

// Runs one ParallelFor and returns the ranges it handed out, sorted by begin.
std::vector<Range> RecordRanges(ThreadPool& pool, int64_t count) {
  std::mutex mutex;
  std::vector<Range> ranges;
  pool.ParallelFor(count, [&](int64_t begin, int64_t end, int thread_index) {
    std::lock_guard<std::mutex> lock(mutex);
    ranges.push_back({begin, end, thread_index});
  });
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

// Aborts the process (instead of hanging the suite) if not disarmed within `seconds`.
class Watchdog {
 public:
  explicit Watchdog(int seconds)
      : thread_([this, seconds] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "Watchdog: ThreadPool deadlocked (no progress in %d s)\n",
                         seconds);
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

// Every test of the suite fails loudly (abort) rather than hanging if the pool deadlocks.
class ThreadPoolTest : public ::testing::Test {
 private:
  Watchdog watchdog_{120};
};

TEST_F(ThreadPoolTest, NumThreadsCountsTheCaller) {
  EXPECT_EQ(ThreadPool(1).num_threads(), 1);
  EXPECT_EQ(ThreadPool(3).num_threads(), 3);
  EXPECT_EQ(ThreadPool(0).num_threads(), 1);  // clamped to at least the caller
  EXPECT_EQ(ThreadPool(-5).num_threads(), 1);
}

TEST_F(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t count : {0, 1, 2, 3, 7, 1000}) {
      SCOPED_TRACE(::testing::Message() << "threads=" << threads << " count=" << count);
      // Plain ints: each index must be written by exactly one thread, and the writes must be
      // visible to the caller once ParallelFor returns.
      std::vector<int> hits(static_cast<size_t>(count), 0);
      std::atomic<int> calls{0};
      pool.ParallelFor(count, [&](int64_t begin, int64_t end, int thread_index) {
        calls.fetch_add(1);
        for (int64_t i = begin; i < end; ++i) {
          if (i >= 0 && i < count) ++hits[static_cast<size_t>(i)];
        }
      });
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << i;
      EXPECT_LE(calls.load(), threads);
      if (count == 0) {
        EXPECT_EQ(calls.load(), 0);
      }
    }
  }
}

TEST_F(ThreadPoolTest, RangesAreContiguousWithDistinctThreadIndices) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t count : {1, 2, 3, 7, 1000}) {
      SCOPED_TRACE(::testing::Message() << "threads=" << threads << " count=" << count);
      std::vector<Range> ranges = RecordRanges(pool, count);
      ASSERT_FALSE(ranges.empty());
      ASSERT_LE(static_cast<int>(ranges.size()), threads);
      // Sorted by begin, the ranges tile [0, count) without gaps or overlaps.
      int64_t expected_begin = 0;
      std::set<int> indices;
      for (const Range& range : ranges) {
        EXPECT_EQ(range.begin, expected_begin);
        EXPECT_LE(range.begin, range.end);
        EXPECT_GE(range.thread_index, 0);
        EXPECT_LT(range.thread_index, threads);
        EXPECT_TRUE(indices.insert(range.thread_index).second)
            << "thread index " << range.thread_index << " used twice in one call";
        expected_begin = range.end;
      }
      EXPECT_EQ(expected_begin, count);
      // With at least one index per thread, every thread gets a piece ("one range per thread").
      if (count >= threads) {
        EXPECT_EQ(static_cast<int>(ranges.size()), threads);
      }
    }
  }
}

TEST_F(ThreadPoolTest, RangesDependOnlyOnThreadCount) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool first(threads);
    ThreadPool second(threads);
    for (int64_t count : {1, 2, 3, 7, 1000}) {
      SCOPED_TRACE(::testing::Message() << "threads=" << threads << " count=" << count);
      const std::vector<Range> reference = RecordRanges(first, count);
      for (int repeat = 0; repeat < 20; ++repeat) {
        ASSERT_EQ(RecordRanges(first, count), reference);
        ASSERT_EQ(RecordRanges(second, count), reference);
      }
    }
  }
}

TEST_F(ThreadPoolTest, ManySuccessiveCallsDoNotDeadlock) {
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> total{0};
    int64_t expected = 0;
    for (int call = 0; call < 2000; ++call) {
      // Alternate sizes so that some calls leave workers without work.
      const int64_t count = (call % 3 == 0) ? 1 : (call % 3 == 1 ? 2 : 97);
      expected += count;
      pool.ParallelFor(count, [&](int64_t begin, int64_t end, int) {
        total.fetch_add(end - begin, std::memory_order_relaxed);
      });
    }
    EXPECT_EQ(total.load(), expected) << "threads=" << threads;
  }
}

TEST_F(ThreadPoolTest, ConstructAndDestroyRepeatedly) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool pool(1 + i % 4);
    if (i % 2 == 0) {
      std::atomic<int> sum{0};
      pool.ParallelFor(10, [&](int64_t begin, int64_t end, int) {
        sum.fetch_add(static_cast<int>(end - begin));
      });
      ASSERT_EQ(sum.load(), 10);
    }
  }
}

TEST_F(ThreadPoolTest, DefaultThreadCountIsPositive) { EXPECT_GE(DefaultThreadCount(), 1); }

}  // namespace
}  // namespace bora
