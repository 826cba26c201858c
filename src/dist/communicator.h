// The collectives bora's tensor- and data-parallel code uses, over MPI (several processes or
// hosts) or between the threads of one process (the in-process emulation tests pin the math with).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"

namespace bora::dist {

// What the collectives of one communicator cost so far (bench reports them per token).
struct CommStats {
  int64_t messages = 0;  // collective calls
  int64_t bytes = 0;     // bytes this rank sent
  double seconds = 0;    // wall time inside collectives
};

// An error every rank of a group raised together (rank 0 reports it, the others stay quiet).
class GroupError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank 0's `bytes` to every rank (the others' are replaced). `idle`: the others may be
  // waiting for a long time (a server without requests) and wait without spinning a core.
  virtual void Broadcast(std::vector<uint8_t>& bytes, bool idle) = 0;
  // all = the ranks' `local` (equal sizes) concatenated in rank order, on every rank.
  virtual void AllGather(std::span<const float> local, std::span<float> all) = 0;
  // Rank 0: all = the ranks' `local` (any sizes) concatenated in rank order; `all` is unused on
  // the other ranks.
  virtual void Gather(std::span<const float> local, std::span<float> all) = 0;
  // Every rank gets every rank's bytes (any sizes), in rank order.
  virtual std::vector<std::vector<uint8_t>> AllGatherBytes(const std::vector<uint8_t>& mine) = 0;
  // Ends every rank of the group now (a rank that cannot go on); `message` goes to stderr first.
  [[noreturn]] virtual void Abort(const std::string& message) = 0;

  const CommStats& stats() const { return stats_; }
  void ResetStats() { stats_ = CommStats(); }

  // data = sum of every rank's data, added in rank order, the same bits on every rank. `scratch`
  // grows to size() * data.size() (callers keep it across calls: no allocation in decode).
  void AllReduceSum(std::span<float> data, std::vector<float>& scratch);
  void AllReduceSum(std::span<double> data);

 protected:
  CommStats stats_;
};

// Abort (naming this rank) if `ok` is false on any rank; otherwise checks that every rank passed
// the same `identity` (a hash of the model) and throws GroupError naming the ranks that
// differ. `error` is this rank's failure message. Collective: every rank calls it once.
void AgreeToStart(Communicator& comm, bool ok, const std::string& error, const std::string& identity);

}  // namespace bora::dist
