// `bora make-dataset --out FILE`: a seeded synthetic fine-tuning dataset (mistral-finetune JSONL).
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "train/data/synthetic_dataset.h"

namespace bora::app {
namespace {

struct MakeDatasetFlags {
  std::string out;
  int64_t count = 1000;
  uint64_t seed = 0;
  std::string kind = "instruct";
};

int RunMakeDataset(const MakeDatasetFlags& flags) {
  const train::SyntheticKind kind = train::ParseSyntheticKind(flags.kind);
  train::WriteSyntheticDataset(flags.out, kind, flags.count, flags.seed);
  std::printf("wrote %s: %lld %s records, seed %llu\n", flags.out.c_str(),
              static_cast<long long>(flags.count), flags.kind.c_str(),
              static_cast<unsigned long long>(flags.seed));
  return 0;
}

}  // namespace

Command RegisterMakeDataset(CLI::App& app) {
  auto flags = std::make_shared<MakeDatasetFlags>();
  CLI::App* sub = app.add_subcommand(
      "make-dataset",
      "Write a seeded synthetic fine-tuning dataset (mistral-finetune JSONL, one record a line).\n"
      "Kinds: instruct (one-word answers to capital/colour/opposite questions, some two-turn,\n"
      "some with a system_prompt), pretrain ({\"text\"} documents from a few sentence templates),\n"
      "tools (function calling with weather/time tools: a call, or a call, its result and an\n"
      "answer). Answers are short and predictable, so a tiny model learns them in a few LoRA\n"
      "steps. Same kind and seed give the same records; use another seed for an eval set.");
  sub->add_option("--out", flags->out, "Output .jsonl file")->required();
  sub->add_option("--count", flags->count, "Number of records")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}))
      ->capture_default_str();
  sub->add_option("--seed", flags->seed, "Random seed")->capture_default_str();
  sub->add_option("--kind", flags->kind, "Dataset kind")
      ->check(CLI::IsMember({"instruct", "pretrain", "tools"}))
      ->capture_default_str();
  return {sub, [flags] { return RunMakeDataset(*flags); }};
}

}  // namespace bora::app
