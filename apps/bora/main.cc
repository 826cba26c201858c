// Entry point of the `bora` binary: parses the subcommand and maps errors to one-line messages.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>

#include "base/error.h"
#include "commands.h"
#include "dist/communicator.h"
#include "dist/world.h"

namespace bora::app {

std::vector<int32_t> ParseTokenList(const std::string& text) {
  std::vector<int32_t> tokens;
  std::string item;
  std::istringstream stream(text);
  while (std::getline(stream, item, ',')) {
    std::istringstream words(item);
    std::string word;
    while (words >> word) {
      size_t used = 0;
      long long value = 0;
      try {
        value = std::stoll(word, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != word.size() || value < 0 || value > INT32_MAX) {
        throw InvalidArgument("--tokens: \"" + word + "\" is not a token id (expected non-negative integers like 1,2,3)");
      }
      tokens.push_back(static_cast<int32_t>(value));
    }
  }
  if (tokens.empty()) throw InvalidArgument("--tokens: no token ids given (example: --tokens 1,2,3)");
  return tokens;
}

}  // namespace bora::app

namespace {

// Under mpirun: which subcommands run as a group, and the one-line refusal for the others.
void CheckRunsUnderMpirun(const CLI::App& app) {
  const bora::dist::World& world = bora::dist::World::Get();
  if (world.size() == 1) return;
  for (const char* name : {"generate", "chat", "serve", "bench", "tune"}) {
    if (app.got_subcommand(name)) return;
  }
  throw bora::dist::GroupError("only generate, chat, serve, bench and tune run as a group of ranks; run this command without mpirun");
}

// Sets *group_error when the failure is one every rank shares (the ranks can end in step).
int Run(int argc, char** argv, bool* group_error);

}  // namespace

int main(int argc, char** argv) {
  // `serve` takes SIGINT/SIGTERM in one waiting thread (a clean stop). It blocks them before its
  // threads start; MPI starts threads of its own in Init, so under mpirun block them first.
  if (argc > 1 && std::strcmp(argv[1], "serve") == 0) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  try {
    bora::dist::World::Init(&argc, &argv);
  } catch (const bora::Error& e) {
    std::fprintf(stderr, "bora: error: %s\n", e.what());
    return 1;
  }
  // Ranks >= 1 compute; only rank 0 writes results.
  if (bora::dist::World::Get().rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;
  bool group_error = false;
  const int status = Run(argc, argv, &group_error);
  std::fflush(stdout);
  std::fflush(stderr);
  // A rank failing alone would leave the others waiting in a collective: end the whole group.
  if (status != 0 && !group_error) bora::dist::World::AbortGroup(status);
  bora::dist::World::Finish();
  return status;
}

namespace {

int Run(int argc, char** argv, bool* group_error) {
  const int rank = bora::dist::World::Get().rank();
  CLI::App app{"bora: run, serve and fine-tune Mistral-family models on your own CPU.", "bora"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "bora 0.1.0");
  const bora::app::Command commands[] = {
      bora::app::RegisterCheckGolden(app), bora::app::RegisterGenerate(app),
      bora::app::RegisterMakeModel(app), bora::app::RegisterBench(app), bora::app::RegisterQuantize(app),
      bora::app::RegisterTokenize(app), bora::app::RegisterRender(app), bora::app::RegisterServe(app),
      bora::app::RegisterChat(app), bora::app::RegisterMergeLora(app),
      bora::app::RegisterTune(app), bora::app::RegisterMakeDataset(app)};
  if (argc == 1) {  // a newcomer's first try: what bora can do, not "a subcommand is required"
    std::printf("%s", app.help().c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    CheckRunsUnderMpirun(app);
    for (const auto& command : commands) {
      if (command.subcommand->parsed()) return command.action();
    }
  } catch (const bora::Error& e) {
    // Rank 0 reports the errors all ranks share; another rank's own error names the rank.
    *group_error = dynamic_cast<const bora::dist::GroupError*>(&e) != nullptr;
    if (rank == 0) {
      std::fprintf(stderr, "bora: error: %s\n", e.what());
    } else if (dynamic_cast<const bora::dist::GroupError*>(&e) == nullptr) {
      std::fprintf(stderr, "bora: rank %d: error: %s\n", rank, e.what());
    }
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "bora: error: out of memory; lower --ctx or use a smaller model\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bora: internal error: %s\n", e.what());
    return 70;
  }
  return 0;
}

}  // namespace
