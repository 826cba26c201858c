// N communicators between threads of one process: the in-process emulation of an N-rank group
// (tests run N model shards on N threads and compare with one rank and with real MPI ranks).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "dist/communicator.h"

namespace bora::dist {

class LocalGroup {
 public:
  explicit LocalGroup(int size);
  // Rank r's communicator; each must be used by one thread.
  Communicator& rank(int r) { return *members_[r]; }
  int size() const { return static_cast<int>(members_.size()); }

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable changed;
    int arrived = 0;
    int64_t generation = 0;
    std::vector<std::vector<uint8_t>> slots;  // one per rank
  };
  class Member;
  std::shared_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Communicator>> members_;
};

}  // namespace bora::dist
