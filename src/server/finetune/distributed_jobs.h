// Fine-tuning jobs of a server under mpirun: rank 0 sends each job (its settings and the bytes
// of its uploaded files, which live in rank 0's state folder) to the other ranks, and every rank
// trains it data parallel (train::RunTune with the group's communicator).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "train/tuner.h"

namespace bora::server {

// One data file of a job: its bytes and its weight in the sampling mix.
struct JobFile {
  std::string bytes;
  double weight = 1.0;
};

struct DistributedJob {
  std::string id;
  std::string model;  // the served model's id; each rank trains on its own copy
  train::TuneOptions options;  // model_dir, out_dir, data.data, data.eval, comm and threads are per rank
  std::vector<JobFile> train_files;
  std::vector<JobFile> eval_files;
};

// Rank 0: announces a job (then every rank runs RunTune with `comm`), or the end of the server.
void SendJob(dist::Communicator& comm, const DistributedJob& job);
void SendEndOfJobs(dist::Communicator& comm);

// Ranks >= 1: trains each job rank 0 sends, in a temporary folder (rank 0 alone keeps
// checkpoints and metrics), until SendEndOfJobs. `model_dirs`: served model id -> this rank's
// folder; `threads`: this rank's fine-tuning threads.
void FollowJobs(dist::Communicator& comm, const std::map<std::string, std::string>& model_dirs, int threads);

}  // namespace bora::server
