// Subcommands of the `bora` binary; each registers its flags and returns the action to run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace bora::app {

// Runs after a successful parse; returns the process exit code.
using CommandAction = std::function<int()>;

struct Command {
  CLI::App* subcommand;
  CommandAction action;
};

Command RegisterCheckGolden(CLI::App& app);
Command RegisterGenerate(CLI::App& app);
Command RegisterMakeModel(CLI::App& app);
Command RegisterBench(CLI::App& app);
Command RegisterQuantize(CLI::App& app);
Command RegisterTokenize(CLI::App& app);
Command RegisterRender(CLI::App& app);
Command RegisterServe(CLI::App& app);
Command RegisterChat(CLI::App& app);
Command RegisterMergeLora(CLI::App& app);
Command RegisterTune(CLI::App& app);
Command RegisterMakeDataset(CLI::App& app);

// "1,2,3" or "1 2 3" → ids; throws InvalidArgument for anything else.
std::vector<int32_t> ParseTokenList(const std::string& text);

}  // namespace bora::app
