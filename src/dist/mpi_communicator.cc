// Collectives over MPI: blocking ones during a step, a sleeping wait for the next step's header.
#include "dist/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <thread>

#include "base/error.h"

namespace bora::dist {
namespace {

using Clock = std::chrono::steady_clock;

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm handle() const { return comm_; }

  void Broadcast(std::vector<uint8_t>& bytes, bool idle) override {
    const auto start = Clock::now();
    uint64_t length = bytes.size();
    MPI_Request request;
    MPI_Ibcast(&length, 1, MPI_UINT64_T, 0, comm_, &request);
    if (rank_ == 0 || !idle) {
      MPI_Wait(&request, MPI_STATUS_IGNORE);
    } else {
      WaitIdle(request);
    }
    if (rank_ != 0) bytes.resize(length);
    if (length > static_cast<uint64_t>(INT_MAX)) Abort("a step message over 2 GiB");
    if (length > 0) MPI_Bcast(bytes.data(), static_cast<int>(length), MPI_BYTE, 0, comm_);
    Count(rank_ == 0 ? static_cast<int64_t>(length + 8) : 0, start, 2);
  }

  void AllGather(std::span<const float> local, std::span<float> all) override {
    const auto start = Clock::now();
    MPI_Allgather(local.data(), Int(local.size()), MPI_FLOAT, all.data(), Int(local.size()), MPI_FLOAT, comm_);
    Count(static_cast<int64_t>(local.size_bytes()), start, 1);
  }

  void Gather(std::span<const float> local, std::span<float> all) override {
    const auto start = Clock::now();
    int mine = Int(local.size());
    counts_.resize(size_);
    displacements_.resize(size_);
    MPI_Gather(&mine, 1, MPI_INT, counts_.data(), 1, MPI_INT, 0, comm_);
    if (rank_ == 0) {
      int64_t at = 0;
      for (int r = 0; r < size_; ++r) {
        displacements_[r] = Int(at);
        at += counts_[r];
      }
      if (static_cast<size_t>(at) > all.size()) Abort("gathered logits do not fit the vocabulary");
    }
    MPI_Gatherv(local.data(), mine, MPI_FLOAT, all.data(), counts_.data(), displacements_.data(), MPI_FLOAT, 0, comm_);
    Count(static_cast<int64_t>(local.size_bytes()), start, 2);
  }

  std::vector<std::vector<uint8_t>> AllGatherBytes(const std::vector<uint8_t>& mine) override {
    const auto start = Clock::now();
    int length = Int(mine.size());
    std::vector<int> lengths(size_), offsets(size_);
    MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = Int(total);
      total += lengths[r];
    }
    std::vector<uint8_t> all(static_cast<size_t>(total));
    MPI_Allgatherv(mine.data(), length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, comm_);
    std::vector<std::vector<uint8_t>> out(size_);
    for (int r = 0; r < size_; ++r) out[r].assign(all.begin() + offsets[r], all.begin() + offsets[r] + lengths[r]);
    Count(static_cast<int64_t>(mine.size()), start, 2);
    return out;
  }

  [[noreturn]] void Abort(const std::string& message) override {
    std::fprintf(stderr, "bora: rank %d: error: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, 1);
    std::_Exit(1);
  }

 private:
  int Int(uint64_t value) {
    if (value > static_cast<uint64_t>(INT_MAX)) Abort("an MPI message over 2^31 elements");
    return static_cast<int>(value);
  }

  // Polls for the next step: busy for the first milliseconds (decode steps follow each other
  // closely), then sleeping up to 2 ms between polls so an idle server costs no CPU.
  static void WaitIdle(MPI_Request& request) {
    const auto start = Clock::now();
    auto pause = std::chrono::microseconds(50);
    for (;;) {
      int done = 0;
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return;
      if (Clock::now() - start < std::chrono::milliseconds(5)) {
        std::this_thread::yield();
        continue;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(2000));
    }
  }

  void Count(int64_t bytes, Clock::time_point start, int messages) {
    stats_.messages += messages;
    stats_.bytes += bytes;
    stats_.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<int> counts_, displacements_;
};

}  // namespace

std::unique_ptr<Communicator> InitMpi(int* argc, char*** argv, bool* concurrent) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    throw IoError("MPI_Init failed; check the mpirun command and the hostfile");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    throw Unsupported("this MPI library cannot be called from the engine thread (MPI_THREAD_SERIALIZED)");
  }
  *concurrent = provided >= MPI_THREAD_MULTIPLE;
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  return std::make_unique<MpiCommunicator>(comm);
}

std::unique_ptr<Communicator> DupMpi(Communicator& comm) {
  MPI_Comm copy;
  MPI_Comm_dup(static_cast<MpiCommunicator&>(comm).handle(), &copy);
  return std::make_unique<MpiCommunicator>(copy);
}

void FinalizeMpi() { MPI_Finalize(); }

void AbortMpi(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace bora::dist
