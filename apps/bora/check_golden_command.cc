// `bora check-golden REF_DIR`: runs a reference folder's golden cases on each checkpoint layout.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "commands.h"
#include "model/golden.h"
#include "model/transformer.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct CheckGoldenFlags {
  std::string ref_dir;
  std::string layout = "all";
  bool json = false;
  int threads = 0;
  int64_t chunk = 5;
};

int RunCheckGolden(const CheckGoldenFlags& flags) {
  model::GoldenSet golden = model::ReadGoldenSet((fs::path(flags.ref_dir) / "golden").string());
  std::vector<std::string> layouts;
  for (const char* name : {"mistral", "hf"}) {
    if (flags.layout != "all" && flags.layout != name) continue;
    if (fs::is_directory(fs::path(flags.ref_dir) / name)) {
      layouts.push_back(name);
    } else if (flags.layout != "all") {
      throw IoError(flags.ref_dir + ": has no " + name + "/ folder");
    }
  }
  if (layouts.empty()) throw IoError(flags.ref_dir + ": has neither mistral/ nor hf/ model folder");
  int64_t needed_context = 1;
  for (const auto& golden_case : golden.cases) {
    needed_context = std::max<int64_t>(needed_context,
                                       golden_case.prompt_tokens.size() + golden_case.greedy_tokens.size());
  }

  bool all_passed = true;
  nlohmann::ordered_json report = {{"ref_dir", flags.ref_dir}, {"tolerance", model::kGoldenTolerance}};
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  if (!flags.json) {
    std::printf("%-8s %-6s %-14s %-14s %-14s %-14s %-12s %s\n", "layout", "case", "token-by-token",
                ("chunked-" + std::to_string(flags.chunk)).c_str(), "one-shot", "decode", "greedy", "result");
  }
  for (const std::string& layout : layouts) {
    model::LoadOptions options;
    options.context = std::max<int64_t>(4096, needed_context);
    options.threads = flags.threads;
    std::unique_ptr<model::Transformer> model =
        model::LoadModel((fs::path(flags.ref_dir) / layout).string(), options);
    if (model->params().vocab_size != golden.vocab_size) {
      throw FormatError(flags.ref_dir + "/" + layout + ": model vocabulary " + std::to_string(model->params().vocab_size) +
                        " differs from the goldens' " + std::to_string(golden.vocab_size));
    }
    for (const model::GoldenCase& golden_case : golden.cases) {
      model::GoldenCaseResult result = model::RunGoldenCase(*model, golden_case, flags.chunk);
      all_passed = all_passed && result.passed();
      nlohmann::ordered_json paths = nlohmann::ordered_json::object();
      for (const auto& path : result.paths) paths[path.path] = path.max_abs_diff;
      results.push_back({{"layout", layout},
                         {"case", result.name},
                         {"max_abs_diff", result.max_abs_diff},
                         {"paths", paths},
                         {"greedy_match", result.greedy_match},
                         {"first_greedy_mismatch", result.first_greedy_mismatch},
                         {"passed", result.passed()}});
      if (!flags.json) {
        std::string greedy = result.greedy_match
                                 ? std::to_string(golden_case.greedy_tokens.size()) + "/" +
                                       std::to_string(golden_case.greedy_tokens.size()) + " ok"
                                 : "differs@" + std::to_string(result.first_greedy_mismatch);
        std::printf("%-8s %-6s", layout.c_str(), result.name.c_str());
        for (const auto& path : result.paths) std::printf(" %-14.3e", path.max_abs_diff);
        std::printf(" %-12s %s\n", greedy.c_str(), result.passed() ? "PASS" : "FAIL");
      }
    }
  }
  report["passed"] = all_passed;
  report["results"] = results;
  if (flags.json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::printf("%s: max abs logit difference tolerance %.0e, greedy tokens must match\n",
                all_passed ? "PASS" : "FAIL", model::kGoldenTolerance);
  }
  return all_passed ? 0 : 1;
}

}  // namespace

Command RegisterCheckGolden(CLI::App& app) {
  auto flags = std::make_shared<CheckGoldenFlags>();
  CLI::App* sub = app.add_subcommand(
      "check-golden",
      "Check bora's logits against golden outputs of Mistral's reference code.\n"
      "REF_DIR holds golden/golden.json with its .bin files and one or both model folders\n"
      "mistral/ and hf/. Every case runs as one-shot, chunked and token-by-token prefill plus\n"
      "KV-cache decode; exits 1 if any logit differs by more than 1e-4 or a greedy token differs.");
  sub->add_option("REF_DIR", flags->ref_dir, "Reference folder (e.g. ../shared/reference-models/tiny-dense)")
      ->required();
  sub->add_option("--layout", flags->layout, "Which model folder to check")
      ->check(CLI::IsMember({"mistral", "hf", "all"}))
      ->capture_default_str();
  sub->add_flag("--json", flags->json, "Print a JSON report instead of a table");
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  sub->add_option("--chunk", flags->chunk, "Chunk size of the chunked-prefill path")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  return {sub, [flags] { return RunCheckGolden(*flags); }};
}

}  // namespace bora::app
