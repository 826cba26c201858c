// MPI_COMM_WORLD as a Communicator (compiled only when OpenMPI is found).
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace bora::dist {

// MPI_Init_thread (serialized: one thread at a time calls MPI) and the world communicator.
std::unique_ptr<Communicator> InitMpi(int* argc, char*** argv);
void FinalizeMpi();
[[noreturn]] void AbortMpi(int code);

}  // namespace bora::dist
