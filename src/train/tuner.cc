// The fine-tuning loop: micro-batches with gradient accumulation, clipping, AdamW on the
// one-cycle schedule, evaluation, checkpoints and exact resume.
#include "train/tuner.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "base/memory_info.h"
#include "model/weights.h"
#include "tokenizer/load_tokenizer.h"
#include "train/trainable_model.h"
#include "train/training_state.h"

namespace bora::train {
namespace {

// Rule J7: this many steps in a row with a non-finite loss or gradient stop the run.
constexpr int kMaxNonFiniteSteps = 3;

using Clock = std::chrono::steady_clock;

void MakeDirs(const std::string& path) {
  std::string partial;
  std::stringstream parts(path);
  std::string part;
  if (!path.empty() && path[0] == '/') partial = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    partial += part + "/";
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      throw IoError("cannot create directory " + partial);
    }
  }
}

// Stacks `count` packed sequences from `first` into one micro-batch.
TrainingBatch MakeBatch(const std::vector<PackedSequence>& sequences, size_t first, size_t count) {
  TrainingBatch batch;
  for (size_t i = first; i < first + count && i < sequences.size(); ++i) {
    const PackedSequence& s = sequences[i];
    const int32_t offset = static_cast<int32_t>(batch.inputs.size());
    for (int32_t start : s.block_starts) batch.block_starts.push_back(offset + start);
    batch.inputs.insert(batch.inputs.end(), s.x.begin(), s.x.end());
    batch.targets.insert(batch.targets.end(), s.y.begin(), s.y.end());
    batch.mask.insert(batch.mask.end(), s.mask.begin(), s.mask.end());
    batch.positions.insert(batch.positions.end(), s.positions.begin(), s.positions.end());
  }
  return batch;
}

int64_t MaskCount(const TrainingBatch& batch) {
  int64_t count = 0;
  for (uint8_t m : batch.mask) count += m ? 1 : 0;
  return count;
}

// Bytes of activations one micro-batch of `rows` keeps for the backward (all blocks), plus
// the attention scratch of the longest block per thread.
uint64_t ActivationBytes(const formats::ModelParams& p, int64_t rows, int64_t seq_len, int64_t rank,
                         int threads) {
  const int64_t q = p.n_heads * p.head_dim, kv = p.n_kv_heads * p.head_dim;
  const int64_t experts_factor = p.moe ? p.moe->num_experts_per_tok : 1;
  const int64_t per_row = 5 * p.dim + 2 * q + 2 * kv + p.n_heads + 2 +
                          experts_factor * (3 * p.hidden_dim + 2 * p.dim) +
                          7 * rank * experts_factor;
  const uint64_t saved = static_cast<uint64_t>(per_row) * rows * p.n_layers * sizeof(float);
  const uint64_t scratch =
      static_cast<uint64_t>(3 * seq_len * seq_len) * std::max(threads, 1) * sizeof(float);
  const uint64_t working =
      static_cast<uint64_t>(rows) * (6 * p.dim + 4 * p.hidden_dim) * sizeof(float);
  return saved + scratch + working;
}

tokenizer::OrderedJson Settings(const TuneOptions& o, const std::string& model_dir) {
  tokenizer::OrderedJson s;
  s["model"] = model_dir;
  s["data"] = o.data.data;
  s["eval"] = o.data.eval;
  s["eval_split"] = o.data.eval_split;
  s["seq_len"] = o.data.seq_len;
  s["seed"] = o.seed;
  s["rank"] = o.rank;
  s["scaling"] = o.scaling;
  s["dropout"] = o.dropout;
  s["steps"] = o.steps;
  s["lr"] = o.lr;
  s["warmup"] = o.warmup;
  s["weight_decay"] = o.adamw.weight_decay;
  s["max_grad_norm"] = o.max_grad_norm;
  s["batch"] = o.batch;
  // Micro-batches per step over the whole group: N ranks x G equal one rank with N*G, so a run
  // resumes with another rank count when the product stays.
  s["grad_accum"] = o.grad_accum * (o.comm != nullptr ? o.comm->size() : 1);
  s["base_dtype"] = o.base_dtype ? std::string(DTypeName(*o.base_dtype)) : std::string("stored");
  return s;
}

// The checkpoint with the highest step in OUT/checkpoints that has a complete training state.
std::string LatestCheckpoint(const std::string& out_dir, int64_t* step) {
  const std::string root = out_dir + "/checkpoints";
  DIR* dir = ::opendir(root.c_str());
  if (dir == nullptr) return "";
  std::string best;
  *step = -1;
  while (dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind("checkpoint_", 0) != 0) continue;
    char* end = nullptr;
    const long long value = std::strtoll(name.c_str() + 11, &end, 10);
    if (end == name.c_str() + 11 || *end != '\0') continue;
    if (value > *step && HasTrainingState(root + "/" + name + "/training_state")) {
      *step = value;
      best = root + "/" + name;
    }
  }
  ::closedir(dir);
  return best;
}

// Keeps the metrics lines of steps <= `step` (a resume rewrites what followed).
void TruncateMetrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto json = tokenizer::OrderedJson::parse(line, nullptr, false);
    if (json.is_object() && json.contains("step") && json["step"].is_number_integer() &&
        json["step"].get<int64_t>() <= step) {
      kept += line + "\n";
    }
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  out << kept;
}

class MetricsFile {
 public:
  MetricsFile(const std::string& path, bool append)
      : out_(path, append ? std::ios::app : std::ios::trunc) {
    if (!out_) throw IoError("cannot write " + path);
  }
  void Write(const tokenizer::OrderedJson& line) {
    out_ << line.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// Every float of an adapter's matrices, in ForEachMatrix order (the all-reduce and resume payload).
void AppendFloats(const model::LoraAdapter& adapter, std::vector<float>& out) {
  adapter.ForEachMatrix([&](const model::LoraMatrix& m, const std::string&) {
    out.insert(out.end(), m.a.begin(), m.a.end());
    out.insert(out.end(), m.b.begin(), m.b.end());
  });
}

size_t ReadFloats(model::LoraAdapter& adapter, const float* in) {
  size_t at = 0;
  adapter.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    std::copy_n(in + at, m.a.size(), m.a.begin());
    at += m.a.size();
    std::copy_n(in + at, m.b.size(), m.b.begin());
    at += m.b.size();
  });
  return at;
}

// Rank 0's training state (after a resume) to the other ranks: step, data position, parameters
// and AdamW moments, so only rank 0 needs the checkpoint.
void ShareState(dist::Communicator& comm, TrainingState& state, std::string& resumed_from,
                const std::string& root_error) {
  std::vector<uint8_t> bytes;
  if (comm.rank() == 0 && !root_error.empty()) {
    bytes.assign(root_error.begin(), root_error.end());
    bytes.insert(bytes.begin(), 'E');
  } else if (comm.rank() == 0) {
    const std::string data = state.data.dump();
    std::vector<float> floats;
    AppendFloats(state.params, floats);
    AppendFloats(state.optimizer.m, floats);
    AppendFloats(state.optimizer.v, floats);
    const int64_t header[4] = {state.step, state.optimizer.step, static_cast<int64_t>(data.size()),
                               static_cast<int64_t>(resumed_from.size())};
    bytes.resize(1 + sizeof(header) + data.size() + resumed_from.size() + floats.size() * sizeof(float));
    bytes[0] = 'S';
    uint8_t* at = bytes.data() + 1;
    std::memcpy(at, header, sizeof(header));
    at += sizeof(header);
    std::memcpy(at, data.data(), data.size());
    at += data.size();
    std::memcpy(at, resumed_from.data(), resumed_from.size());
    at += resumed_from.size();
    std::memcpy(at, floats.data(), floats.size() * sizeof(float));
  }
  comm.Broadcast(bytes, false);
  if (!bytes.empty() && bytes[0] == 'E') {  // rank 0 could not start: every rank fails with its error
    throw dist::GroupError("rank 0: " + std::string(bytes.begin() + 1, bytes.end()));
  }
  if (comm.rank() == 0) return;
  int64_t header[4];
  std::memcpy(header, bytes.data() + 1, sizeof(header));
  const uint8_t* at = bytes.data() + 1 + sizeof(header);
  state.step = header[0];
  state.optimizer.step = header[1];
  state.data = tokenizer::OrderedJson::parse(std::string(reinterpret_cast<const char*>(at), header[2]));
  at += header[2];
  resumed_from.assign(reinterpret_cast<const char*>(at), header[3]);
  at += header[3];
  std::vector<float> floats((bytes.size() - (at - bytes.data())) / sizeof(float));
  std::memcpy(floats.data(), at, floats.size() * sizeof(float));
  size_t used = ReadFloats(state.params, floats.data());
  used += ReadFloats(state.optimizer.m, floats.data() + used);
  ReadFloats(state.optimizer.v, floats.data() + used);
}

}  // namespace

std::string CheckpointDir(const std::string& out_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "checkpoint_%06lld", static_cast<long long>(step));
  return out_dir + "/checkpoints/" + name;
}

TuneResult RunTune(const TuneOptions& o, TuneObserver& observer) {
  if (o.model_dir.empty()) throw InvalidArgument("--model is required");
  if (o.out_dir.empty()) throw InvalidArgument("--out is required");
  if (o.steps < 1) throw InvalidArgument("--steps must be at least 1");
  if (o.rank < 1 || o.rank > 1024) throw InvalidArgument("--rank must be in [1, 1024]");
  if (o.batch < 1 || o.grad_accum < 1)
    throw InvalidArgument("--batch and --grad-accum must be at least 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw InvalidArgument("--lr must be a positive number");
  if (!(o.dropout >= 0 && o.dropout < 1)) throw InvalidArgument("--dropout must be in [0, 1)");
  if (!std::isfinite(o.scaling)) throw InvalidArgument("--scaling must be a number");
  if (o.data.seq_len < 2) throw InvalidArgument("--seq-len must be at least 2");
  const int ranks = o.comm != nullptr ? o.comm->size() : 1;
  const int rank = o.comm != nullptr ? o.comm->rank() : 0;
  const bool root = rank == 0;
  TuneObserver silent;
  TuneObserver& report_to = root ? observer : silent;  // rank 0 reports for the group

  std::string tokenizer_path;
  std::optional<tokenizer::LoadedTokenizer> loaded;
  std::optional<TrainingData> data_holder;
  std::unique_ptr<TrainableModel> model;
  int64_t rows = 0;
  try {
    tokenizer_path = tokenizer::FindTokenizerFile(o.model_dir);
    if (tokenizer_path.empty()) {
      throw InvalidArgument(o.model_dir +
                            " has no tokenizer file (tokenizer.model.v3, tekken.json...): "
                            "training data is tokenised with the model's tokenizer");
    }
    loaded.emplace(tokenizer::LoadTokenizer(tokenizer_path));
    TrainingDataOptions data_options = o.data;
    data_options.seed = o.seed;
    data_holder.emplace(LoadTrainingData(data_options, *loaded->tokenizer));

    TrainModelOptions model_options;
    model_options.threads = o.threads;
    model_options.dtype = o.base_dtype;
    model_options.max_positions = o.data.seq_len;
    model_options.mixed_precision = o.mixed_precision;
    model = LoadTrainableModel(o.model_dir, model_options);
    if (loaded->tokenizer->vocab_size() > model->params().vocab_size) {
      throw InvalidArgument("the tokenizer has more tokens than the model's vocabulary");
    }
    rows = o.batch * o.data.seq_len;
    const uint64_t activations =
        ActivationBytes(model->params(), rows, o.data.seq_len, o.rank, model->compute().num_threads());
    const MemoryBudget budget = ReadMemoryBudget();
    if (budget.usable_bytes > 0 && activations > budget.usable_bytes) {
      throw ResourceExhausted("training activations need " + FormatBytes(activations) + " but only " +
                              FormatBytes(budget.usable_bytes) +
                              " are available: lower --seq-len or --batch");
    }
  } catch (const std::exception& e) {
    // A rank failing alone must not leave the others waiting: every rank fails together.
    if (ranks > 1) dist::AgreeToStart(*o.comm, false, e.what(), "");
    throw;
  }
  TrainingData& data = *data_holder;
  const formats::ModelParams& p = model->params();

  if (ranks > 1) {
    // Every rank reads its own copies: they must hold the same model and data.
    const std::string identity = std::to_string(p.dim) + "/" + std::to_string(p.n_layers) + "/" +
                                 std::to_string(p.vocab_size) + "/" + std::to_string(data.train_report.valid) + "/" +
                                 std::to_string(data.eval.size());
    dist::AgreeToStart(*o.comm, true, "", identity);
  }

  TrainingState state;
  state.params = model::NewLoraAdapter(p, o.rank, o.scaling);
  state.params.dropout = o.dropout;
  state.params.instruct_version = "v3";
  InitLoraAdapter(state.params, o.seed);
  state.optimizer = NewAdamWState(state.params);
  state.settings = Settings(o, o.model_dir);

  const std::string metrics_path = o.out_dir + "/metrics.jsonl";
  TuneStart start;
  std::optional<MetricsFile> metrics_file;
  std::string root_error;  // rank 0's files: a failure there stops every rank
  if (root) {
    try {
      MakeDirs(o.out_dir);
      if (o.resume) {
        int64_t step = 0;
        const std::string checkpoint = LatestCheckpoint(o.out_dir, &step);
        if (!checkpoint.empty()) {
          LoadTrainingState(checkpoint + "/training_state", state);
          data.train.RestoreState(state.data);
          start.resumed_from = checkpoint;
          TruncateMetrics(metrics_path, state.step);
        }
      }
      metrics_file.emplace(metrics_path, !start.resumed_from.empty());
    } catch (const std::exception& e) {
      if (ranks == 1) throw;
      root_error = e.what();
    }
  }
  if (ranks > 1) {
    ShareState(*o.comm, state, start.resumed_from, root_error);
    if (!root && !start.resumed_from.empty()) data.train.RestoreState(state.data);
  }
  auto write_metrics = [&](const tokenizer::OrderedJson& line) {
    if (metrics_file) metrics_file->Write(line);
  };
  model::LoraAdapter grads = state.params;
  std::vector<float> reduce, reduce_scratch;
  ZeroLoraAdapter(grads);

  start.first_step = state.step + 1;
  start.total_steps = o.steps;
  start.train_samples = data.train_report.valid;
  start.eval_sequences = static_cast<int64_t>(data.eval.size());
  state.params.ForEachMatrix([&](model::LoraMatrix& m, const std::string&) {
    start.trainable_parameters += static_cast<int64_t>(m.a.size() + m.b.size());
  });
  // Micro-batches per optimizer step over the whole group; rank r runs those with index % N == r.
  const int64_t micro_batches = o.grad_accum * ranks;
  start.tokens_per_step = rows * micro_batches;
  start.base_dtype = model::WeightDTypeName(model->base_dtype());
  start.compute = model->bf16_compute() ? "bf16 (mixed precision)" : "f32";
  start.train_report = data.train_report;
  report_to.OnStart(start);

  TuneResult result;
  auto evaluate = [&](int64_t step) {
    if (data.eval.empty()) return;
    double loss = 0;
    int64_t targets = 0, correct = 0;
    size_t index = 0;
    for (size_t first = 0; first < data.eval.size(); first += static_cast<size_t>(o.batch), ++index) {
      if (static_cast<int>(index % ranks) != rank) continue;  // the ranks share the batches
      const TrainingBatch batch = MakeBatch(data.eval, first, static_cast<size_t>(o.batch));
      const CrossEntropyResult r = model->Run(state.params, batch, nullptr, 1.0, 0);
      loss += r.loss_sum;
      targets += r.count;
      correct += r.correct;
    }
    if (ranks > 1) {
      double sums[3] = {loss, static_cast<double>(targets), static_cast<double>(correct)};
      o.comm->AllReduceSum(std::span<double>(sums, 3));
      loss = sums[0];
      targets = static_cast<int64_t>(sums[1]);
      correct = static_cast<int64_t>(sums[2]);
    }
    const double denominator = static_cast<double>(std::max<int64_t>(targets, 1));
    const EvalReport report{step, loss / denominator, targets,
                            static_cast<double>(correct) / denominator};
    if (!result.first_eval_loss) result.first_eval_loss = report.loss;
    result.last_eval_loss = report.loss;
    write_metrics({{"step", step},
                   {"eval_loss", report.loss},
                   {"eval_accuracy", report.accuracy},
                   {"eval_targets", targets}});
    report_to.OnEval(report);
  };
  auto checkpoint = [&](int64_t step) {
    std::string error;
    if (root) {
      try {
        const std::string dir = CheckpointDir(o.out_dir, step);
        MakeDirs(dir);
        model::SaveLoraAdapter(state.params, p, dir + "/consolidated", tokenizer_path);
        state.step = step;
        state.data = data.train.SaveState();
        SaveTrainingState(state, dir + "/training_state");
        result.last_checkpoint = dir;
        report_to.OnCheckpoint(step, dir);
      } catch (const std::exception& e) {
        if (ranks == 1) throw;
        error = e.what();
      }
    }
    if (ranks > 1) {  // rank 0 alone writes: the others learn whether it could
      std::vector<uint8_t> status(error.begin(), error.end());
      o.comm->Broadcast(status, false);
      if (!status.empty()) throw dist::GroupError("rank 0: " + std::string(status.begin(), status.end()));
    }
  };
  const int64_t eval_every = o.eval_every > 0 ? o.eval_every : o.ckpt_every;

  if (start.resumed_from.empty()) evaluate(0);
  const Clock::time_point run_start = Clock::now();
  int non_finite_steps = 0;
  for (int64_t step = start.first_step; step <= o.steps; ++step) {
    // Cancellation: alone, between steps; in a group, rank 0's request travels in the step's
    // all-reduce and every rank stops there together (that step's update is dropped).
    const bool stop_asked = report_to.ShouldStop();
    if (stop_asked && ranks == 1) {
      result.stopped = true;
      break;
    }
    const Clock::time_point step_start = Clock::now();
    const double lr = OneCycleLearningRate(o.lr, step - 1, o.steps, o.warmup);
    ZeroLoraAdapter(grads);
    double loss = 0;
    for (int64_t micro = 0; micro < micro_batches; ++micro) {
      // Every rank draws every micro-batch (the data streams stay in step); runs its own.
      std::vector<PackedSequence> sequences;
      for (int64_t b = 0; b < o.batch; ++b) sequences.push_back(data.train.Next());
      if (static_cast<int>(micro % ranks) != rank) continue;
      const TrainingBatch batch = MakeBatch(sequences, 0, sequences.size());
      const int64_t targets = MaskCount(batch);
      // Loss = sum(CE * mask) / sum(mask) per micro-batch; gradients averaged over micro-batches.
      const double scale =
          1.0 / (static_cast<double>(std::max<int64_t>(targets, 1)) * micro_batches);
      const uint64_t step_key = (o.seed * 0x9e3779b97f4a7c15ull) ^
                                (static_cast<uint64_t>(step) << 20) ^ static_cast<uint64_t>(micro);
      const CrossEntropyResult r = model->Run(state.params, batch, &grads, scale, step_key);
      loss += r.loss_sum / static_cast<double>(std::max<int64_t>(r.count, 1)) / micro_batches;
    }
    if (ranks > 1) {  // one all-reduce: every gradient and the loss, summed in rank order
      reduce.clear();
      AppendFloats(grads, reduce);
      reduce.push_back(static_cast<float>(loss));
      reduce.push_back(stop_asked ? 1.0f : 0.0f);
      o.comm->AllReduceSum(std::span<float>(reduce), reduce_scratch);
      if (reduce.back() > 0) {
        result.stopped = true;
        break;
      }
      ReadFloats(grads, reduce.data());
      loss = reduce[reduce.size() - 2];
    }
    // Rule J7: a step whose loss or gradient is not finite changes nothing (a single bad batch
    // must not poison the adapter); three such steps in a row end the run.
    const double norm = std::isfinite(loss) ? ClipGradientNorm(grads, o.max_grad_norm) : loss;
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      ++non_finite_steps;
      std::fprintf(stderr, "bora tune: step %lld: %s is not finite; step skipped\n",
                   static_cast<long long>(step), std::isfinite(loss) ? "gradient" : "loss");
      if (non_finite_steps >= kMaxNonFiniteSteps) {
        throw InvalidArgument("training diverged: the loss or gradient was not finite at " +
                              std::to_string(non_finite_steps) + " steps in a row (up to step " +
                              std::to_string(step) + "); lower --lr");
      }
      result.steps_done = step;
      if (step == o.steps || (o.ckpt_every > 0 && step % o.ckpt_every == 0)) checkpoint(step);
      continue;
    }
    non_finite_steps = 0;
    AdamWUpdate(state.params, grads, state.optimizer, o.adamw, lr);
    const double seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    StepReport report{step,
                      o.steps,
                      loss,
                      lr,
                      norm,
                      static_cast<double>(start.tokens_per_step) / std::max(seconds, 1e-9),
                      std::chrono::duration<double>(Clock::now() - run_start).count()};
    result.steps_done = step;
    result.last_loss = loss;
    result.tokens += start.tokens_per_step;
    write_metrics({{"step", step},
                   {"loss", loss},
                   {"lr", lr},
                   {"grad_norm", norm},
                   {"tokens_per_s", report.tokens_per_s}});
    report_to.OnStep(report);
    const bool last = step == o.steps;
    if (last || (eval_every > 0 && step % eval_every == 0)) evaluate(step);
    if (last || (o.ckpt_every > 0 && step % o.ckpt_every == 0)) checkpoint(step);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
  return result;
}

}  // namespace bora::train
