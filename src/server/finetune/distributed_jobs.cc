// The job messages of a server under mpirun and the other ranks' side of each job.
#include "server/finetune/distributed_jobs.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace bora::server {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// [8-byte header length][header JSON][file bytes, in header order]. An empty message ends.
std::vector<uint8_t> Encode(const DistributedJob& job) {
  const train::TuneOptions& o = job.options;
  Json header = {{"id", job.id},           {"model", job.model},       {"seq_len", o.data.seq_len},
                 {"seed", o.seed},         {"steps", o.steps},         {"lr", o.lr},
                 {"warmup", o.warmup},     {"weight_decay", o.adamw.weight_decay},
                 {"ckpt_every", o.ckpt_every}, {"resume", o.resume}, {"rank", o.rank},
                 {"batch", o.batch},       {"grad_accum", o.grad_accum}};
  for (const char* kind : {"train", "eval"}) {
    Json sizes = Json::array();
    for (const JobFile& file : kind[0] == 't' ? job.train_files : job.eval_files) {
      sizes.push_back({{"bytes", file.bytes.size()}, {"weight", file.weight}});
    }
    header[kind] = sizes;
  }
  const std::string text = header.dump();
  std::vector<uint8_t> out(8 + text.size());
  const uint64_t length = text.size();
  std::memcpy(out.data(), &length, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  for (const auto* files : {&job.train_files, &job.eval_files}) {
    for (const JobFile& file : *files) out.insert(out.end(), file.bytes.begin(), file.bytes.end());
  }
  return out;
}

// Writes the job's files under `dir` and returns the job with its data lists pointing there.
DistributedJob Decode(const std::vector<uint8_t>& message, const std::string& dir) {
  uint64_t length = 0;
  if (message.size() < 8) throw FormatError("job message truncated");
  std::memcpy(&length, message.data(), 8);
  if (length > message.size() - 8) throw FormatError("job message truncated");
  const Json header = Json::parse(std::string(reinterpret_cast<const char*>(message.data()) + 8, length));
  DistributedJob job;
  job.id = header.at("id").get<std::string>();
  job.model = header.at("model").get<std::string>();
  train::TuneOptions& o = job.options;
  o.data.seq_len = header.at("seq_len").get<int64_t>();
  o.seed = header.at("seed").get<uint64_t>();
  o.steps = header.at("steps").get<int64_t>();
  o.lr = header.at("lr").get<double>();
  o.warmup = header.at("warmup").get<double>();
  o.adamw.weight_decay = header.at("weight_decay").get<double>();
  o.ckpt_every = header.at("ckpt_every").get<int64_t>();
  o.resume = header.at("resume").get<bool>();
  o.rank = header.at("rank").get<int64_t>();
  o.batch = header.at("batch").get<int64_t>();
  o.grad_accum = header.at("grad_accum").get<int64_t>();
  size_t at = 8 + length;
  int index = 0;
  for (const char* kind : {"train", "eval"}) {
    std::string& list = kind[0] == 't' ? o.data.data : o.data.eval;
    for (const Json& file : header.at(kind)) {
      const size_t bytes = file.at("bytes").get<size_t>();
      if (bytes > message.size() - at) throw FormatError("job message truncated");
      const std::string path = dir + "/" + kind + std::to_string(index++) + ".jsonl";
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(message.data()) + at, static_cast<std::streamsize>(bytes));
      if (!out) throw IoError("cannot write " + path);
      at += bytes;
      if (!list.empty()) list += ',';
      list += path;
      if (kind[0] == 't') {
        const std::string weight = std::to_string(file.at("weight").get<double>());
        list.push_back(':');
        list.append(weight);
      }
    }
  }
  return job;
}

}  // namespace

void SendJob(dist::Communicator& comm, const DistributedJob& job) {
  std::vector<uint8_t> message = Encode(job);
  comm.Broadcast(message, false);
}

void SendEndOfJobs(dist::Communicator& comm) {
  std::vector<uint8_t> message;
  comm.Broadcast(message, false);
}

void FollowJobs(dist::Communicator& comm, const std::map<std::string, std::string>& model_dirs, int threads) {
  for (;;) {
    std::vector<uint8_t> message;
    comm.Broadcast(message, true);
    if (message.empty()) return;
    const fs::path dir = fs::temp_directory_path() /
                         ("bora-job-rank" + std::to_string(comm.rank()) + "-" + std::to_string(::getpid()));
    std::error_code ignored;
    fs::create_directories(dir / "out", ignored);
    std::string id = "?";
    try {
      DistributedJob job = Decode(message, dir.string());
      id = job.id;
      const auto model = model_dirs.find(job.model);
      // Every rank serves the same models (checked at start), so this cannot differ from rank 0.
      if (model == model_dirs.end()) comm.Abort("fine-tuning job " + id + ": model " + job.model + " is not served here");
      job.options.model_dir = model->second;
      job.options.out_dir = (dir / "out").string();
      job.options.threads = threads;
      job.options.comm = &comm;
      train::TuneObserver silent;  // rank 0 records progress
      train::RunTune(job.options, silent);
    } catch (const std::exception& e) {
      // Errors every rank meets alike (bad data, divergence) end the job on all of them.
      std::fprintf(stderr, "bora serve: rank %d: fine-tuning job %s: %s\n", comm.rank(), id.c_str(), e.what());
    }
    fs::remove_all(dir, ignored);
  }
}

}  // namespace bora::server
