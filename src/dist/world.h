// The ranks mpirun started this process among: MPI is initialised once per process (it can only
// be), so World is the one process-wide object of this layer. A binary started without mpirun, or
// built without MPI, is a one-rank world.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace bora::dist {

class World {
 public:
  // Initialises MPI when the environment says mpirun started this process; throws
  // InvalidArgument when it did but bora was built without MPI. Call once, early in main.
  static void Init(int* argc, char*** argv);
  // The world (one rank before Init).
  static World& Get();
  // MPI_Finalize; idempotent. Called at exit by main.
  static void Finish();
  // Ends every rank of the world with `code` (MPI_Abort) when this rank fails alone; a no-op
  // without MPI.
  static void AbortGroup(int code);

  Communicator& comm() { return *comm_; }
  // A new communicator over the same ranks (MPI_Comm_dup), for one tensor-parallel group: each
  // served model's engine thread talks on its own. Collective: every rank, in the same order.
  std::unique_ptr<Communicator> NewComm();
  // Whether several threads may use their communicators at once (MPI_THREAD_MULTIPLE).
  bool concurrent_comms() const { return !mpi_ || concurrent_; }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }
  bool mpi() const { return mpi_; }
  // Whether this build can run under mpirun (BORA_WITH_MPI).
  static bool compiled_with_mpi();

 private:
  World();
  std::unique_ptr<Communicator> comm_;
  bool mpi_ = false;
  bool concurrent_ = false;
  bool finished_ = false;
};

}  // namespace bora::dist
