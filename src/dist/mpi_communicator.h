// MPI_COMM_WORLD as a Communicator (compiled only when OpenMPI is found).
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace bora::dist {

// MPI_Init_thread and the world communicator. *concurrent: MPI_THREAD_MULTIPLE was granted
// (threads may use different communicators at once); serialized access is the minimum.
std::unique_ptr<Communicator> InitMpi(int* argc, char*** argv, bool* concurrent);
// A duplicate of an MPI communicator made by InitMpi or DupMpi (collective).
std::unique_ptr<Communicator> DupMpi(Communicator& comm);
void FinalizeMpi();
[[noreturn]] void AbortMpi(int code);

}  // namespace bora::dist
