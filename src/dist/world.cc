// The process's world: MPI_COMM_WORLD under mpirun, one rank otherwise.
#include "dist/world.h"

#include <cstdlib>
#include <string>

#include "base/error.h"
#include "dist/local_group.h"

#ifdef BORA_WITH_MPI
#include "dist/mpi_communicator.h"
#endif

namespace bora::dist {
namespace {

// mpirun (OpenMPI, PMIx) and MPICH's hydra tell their processes the job size.
int LaunchedSize() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* value = std::getenv(name);
    if (value != nullptr) return std::atoi(value);
  }
  return 1;
}

class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void Broadcast(std::vector<uint8_t>&, bool) override {}
  void AllGather(std::span<const float> local, std::span<float> all) override {
    std::copy(local.begin(), local.end(), all.begin());
  }
  void Gather(std::span<const float> local, std::span<float> all) override {
    std::copy(local.begin(), local.end(), all.begin());
  }
  std::vector<std::vector<uint8_t>> AllGatherBytes(const std::vector<uint8_t>& mine) override { return {mine}; }
  [[noreturn]] void Abort(const std::string& message) override {
    std::fprintf(stderr, "bora: error: %s\n", message.c_str());
    std::exit(1);
  }
};

}  // namespace

World::World() : comm_(std::make_unique<SoloCommunicator>()) {}

World& World::Get() {
  static World world;  // MPI state is per process; so is this
  return world;
}

bool World::compiled_with_mpi() {
#ifdef BORA_WITH_MPI
  return true;
#else
  return false;
#endif
}

void World::Init(int* argc, char*** argv) {
  World& world = Get();
  if (LaunchedSize() <= 1 || world.mpi_) return;
#ifdef BORA_WITH_MPI
  world.comm_ = InitMpi(argc, argv, &world.concurrent_);
  world.mpi_ = true;
#else
  (void)argc;
  (void)argv;
  throw InvalidArgument("this bora was built without MPI, so mpirun would start " +
                        std::to_string(LaunchedSize()) +
                        " separate copies; rebuild with OpenMPI installed (scripts/install-deps.sh) or run without mpirun");
#endif
}

std::unique_ptr<Communicator> World::NewComm() {
#ifdef BORA_WITH_MPI
  if (mpi_) return DupMpi(*comm_);
#endif
  return std::make_unique<SoloCommunicator>();
}

void World::AbortGroup(int code) {
  World& world = Get();
  if (!world.mpi_ || world.finished_ || world.size() == 1) return;
#ifdef BORA_WITH_MPI
  AbortMpi(code);
#else
  (void)code;
#endif
}

void World::Finish() {
  World& world = Get();
  if (!world.mpi_ || world.finished_) return;
  world.finished_ = true;
#ifdef BORA_WITH_MPI
  FinalizeMpi();
#endif
}

}  // namespace bora::dist
