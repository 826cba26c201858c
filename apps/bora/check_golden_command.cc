// `bora check-golden REF_DIR`: runs a reference folder's golden cases on each checkpoint layout.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "check_golden_gguf.h"
#include "check_golden_vision.h"
#include "commands.h"
#include "model/golden.h"
#include "model/transformer.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct CheckGoldenFlags {
  std::string ref_dir;
  std::string model;      // --model: a GGUF (or folder) checked against REF_DIR's golden/
  bool dtype_given = false;
  std::string layout = "all";
  bool json = false;
  int threads = 0;
  int64_t chunk = 5;
  std::string dtype = "f32";
};

// --dtype bf16|q8|q4: teacher-forced quality against the f32 goldens, with the exit rule of
// dense models (q8 and bf16 at least as close as Mistral's own bf16 compute, q4 within 3x its
// RMS error); MoE models are reported only (quantization flips expert choices).
template <typename GoldenOf, typename PathOf>
int RunQuality(const CheckGoldenFlags& flags, GoldenOf golden_of, PathOf path_of, const std::vector<std::string>& layouts,
               int64_t needed_context) {
  const DType dtype = model::ParseWeightDType(flags.dtype);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  bool passed = true;
  bool judged = false;
  if (!flags.json) {
    std::printf("%-11s %-6s %-10s %-10s %-8s %-10s\n", "layout", "case", "max_abs", "rms_rel", "top1", "mean_kl");
  }
  double rule_rms = 0, rule_top1 = 0;
  for (const std::string& layout : layouts) {
    model::LoadOptions options;
    options.context = std::max<int64_t>(4096, needed_context);
    options.threads = flags.threads;
    options.dtype = dtype;
    std::unique_ptr<model::Transformer> model = model::LoadModel(path_of(layout), options);
    const model::GoldenSet& golden = golden_of(layout);
    double sum_sq_diff = 0, sum_sq_golden = 0, worst_top1 = 1;
    for (const model::GoldenCase& golden_case : golden.cases) {
      model::GoldenQuality q = model::MeasureGoldenQuality(*model, golden_case);
      sum_sq_diff += q.sum_sq_diff;
      sum_sq_golden += q.sum_sq_golden;
      worst_top1 = std::min(worst_top1, q.top1_agreement);
      results.push_back({{"layout", layout}, {"case", q.name}, {"rows", q.rows}, {"max_abs_diff", q.max_abs_diff},
                         {"rms_rel", q.rms_rel()}, {"top1_agreement", q.top1_agreement}, {"mean_kl", q.mean_kl}});
      if (!flags.json) {
        std::printf("%-11s %-6s %-10.4f %-10.5f %-8.4f %-10.3e\n", layout.c_str(), q.name.c_str(), q.max_abs_diff,
                    q.rms_rel(), q.top1_agreement, q.mean_kl);
      }
    }
    const double overall_rms = sum_sq_golden > 0 ? std::sqrt(sum_sq_diff / sum_sq_golden) : 0;
    if (!model->params().moe && golden.bf16_drift) {
      judged = true;
      rule_rms = golden.bf16_drift->rms_rel * (dtype == DType::kQ4 ? 3.0 : 1.0);
      rule_top1 = dtype == DType::kQ4 ? 0.0 : golden.bf16_drift->top1_agreement_min;
      const bool ok = overall_rms <= rule_rms && worst_top1 >= rule_top1;
      passed = passed && ok;
      if (!flags.json) {
        std::printf("%-11s all    rms_rel %.5f (limit %.5f), worst top1 %.4f (limit %.4f): %s\n", layout.c_str(),
                    overall_rms, rule_rms, worst_top1, rule_top1, ok ? "PASS" : "FAIL");
      }
    } else if (!flags.json) {
      std::printf("%-11s all    rms_rel %.5f, worst top1 %.4f (reported only: %s)\n", layout.c_str(), overall_rms,
                  worst_top1, model->params().moe ? "MoE routing flips under quantization" : "no bf16 reference");
    }
  }
  if (flags.json) {
    nlohmann::ordered_json report = {{"ref_dir", flags.ref_dir}, {"dtype", flags.dtype}, {"judged", judged},
                                     {"rms_rel_limit", rule_rms}, {"top1_limit", rule_top1}, {"passed", passed},
                                     {"results", results}};
    std::printf("%s\n", report.dump(2).c_str());
  }
  return passed ? 0 : 1;
}

// Every layout bora knows, and the golden folder each is checked against.
constexpr std::pair<const char*, const char*> kLayouts[] = {
    {"mistral", "golden"}, {"hf", "golden"}, {"hf-mistral3", "golden"}, {"mistral-fp8", "golden-fp8"},
    {"hf-fp8", "golden-fp8"}};

std::string GoldenDirOf(const std::string& layout) {
  for (const auto& [name, golden] : kLayouts) {
    if (layout == name) return golden;
  }
  return "golden";  // --model: the reference weights' goldens
}

int RunCheckGolden(const CheckGoldenFlags& flags) {
  if (!fs::is_directory(flags.ref_dir)) {
    throw IoError(flags.ref_dir + ": cannot open: no such folder (expected a reference folder with golden/ and "
                  "model folders, e.g. ../shared/reference-models/tiny-dense)");
  }
  if (flags.model.empty() && IsGgufGoldenFolder(flags.ref_dir)) {
    return RunCheckGgufGolden(flags.ref_dir, flags.dtype_given ? std::optional<std::string>(flags.dtype) : std::nullopt,
                              flags.threads, flags.json);
  }
  if (flags.model.empty() && IsVisionGoldenFolder(flags.ref_dir)) {
    return RunCheckVisionGolden(flags.ref_dir, flags.dtype, flags.threads, flags.json, flags.chunk);
  }
  std::vector<std::string> layouts;
  if (!flags.model.empty()) {
    if (!fs::is_directory(fs::path(flags.ref_dir) / "golden")) throw IoError(flags.ref_dir + ": has no golden/ folder");
    layouts.push_back(flags.model);
  }
  for (const auto& [name, golden_dir] : kLayouts) {
    if (!flags.model.empty()) break;
    if (flags.layout != "all" && flags.layout != name) continue;
    if (fs::is_directory(fs::path(flags.ref_dir) / name)) {
      if (!fs::is_directory(fs::path(flags.ref_dir) / golden_dir)) {
        throw IoError(flags.ref_dir + ": has " + name + "/ but no " + golden_dir + "/ to check it against");
      }
      layouts.push_back(name);
    } else if (flags.layout != "all") {
      throw IoError(flags.ref_dir + ": has no " + name + "/ folder");
    }
  }
  if (layouts.empty()) throw IoError(flags.ref_dir + ": has no model folder of a known layout (mistral/, hf/, ...)");
  // One golden set per folder, read once.
  std::map<std::string, model::GoldenSet> goldens;
  for (const std::string& layout : layouts) {
    const std::string dir = GoldenDirOf(layout);
    if (!goldens.count(dir)) goldens.emplace(dir, model::ReadGoldenSet((fs::path(flags.ref_dir) / dir).string()));
  }
  int64_t needed_context = 1;
  for (const auto& [dir, golden] : goldens) {
    for (const auto& golden_case : golden.cases) {
      needed_context = std::max<int64_t>(needed_context,
                                         golden_case.prompt_tokens.size() + golden_case.greedy_tokens.size());
    }
  }
  auto golden_of = [&](const std::string& layout) -> const model::GoldenSet& { return goldens.at(GoldenDirOf(layout)); };
  auto path_of = [&](const std::string& layout) {
    return flags.model.empty() ? (fs::path(flags.ref_dir) / layout).string() : flags.model;
  };

  if (flags.dtype != "f32") return RunQuality(flags, golden_of, path_of, layouts, needed_context);

  bool all_passed = true;
  nlohmann::ordered_json report = {{"ref_dir", flags.ref_dir}, {"tolerance", model::kGoldenTolerance}};
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  if (!flags.json) {
    std::printf("%-11s %-6s %-14s %-14s %-14s %-14s %-12s %s\n", "layout", "case", "token-by-token",
                ("chunked-" + std::to_string(flags.chunk)).c_str(), "one-shot", "decode", "greedy", "result");
  }
  for (const std::string& layout : layouts) {
    model::LoadOptions options;
    options.context = std::max<int64_t>(4096, needed_context);
    options.threads = flags.threads;
    options.dtype = DType::kF32;
    std::unique_ptr<model::Transformer> model = model::LoadModel(path_of(layout), options);
    const model::GoldenSet& golden = golden_of(layout);
    if (model->params().vocab_size != golden.vocab_size) {
      throw FormatError(path_of(layout) + ": model vocabulary " + std::to_string(model->params().vocab_size) +
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
        // --model: the file's name (the full path would push the table out of line).
        const std::string label = flags.model.empty() ? layout : fs::path(layout).filename().string();
        std::printf("%-11s %-6s", label.c_str(), result.name.c_str());
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
      "REF_DIR holds golden/golden.json with its .bin files and model folders of the layouts\n"
      "mistral/, hf/, hf-mistral3/ (checked against golden/), mistral-fp8/ and hf-fp8/ (against\n"
      "golden-fp8/); without --layout every one present is checked. Every case runs as one-shot, chunked and token-by-token prefill plus\n"
      "KV-cache decode; exits 1 if any logit differs by more than 1e-4 or a greedy token differs.\n"
      "With --model FILE.gguf (or a folder) that model is checked against REF_DIR's golden/ instead.\n"
      "A GGUF test folder (golden.json with \"files\": ../shared/gguf/<model>/, real-models/stories260K/):\n"
      "every .gguf in it is checked; --dtype f32 against llama.cpp's logits of the F32-dequantized file\n"
      "(max abs 1e-4) and its greedy tokens; without --dtype bora's own compute is compared with\n"
      "llama.cpp's logits of the file (dense: max abs <= 0.5 x max(1, logit RMS) and RMS relative <= 5%;\n"
      "MoE: reported).");
  sub->add_option("REF_DIR", flags->ref_dir, "Reference folder (e.g. ../shared/reference-models/tiny-dense)")
      ->required();
  sub->add_option("--layout", flags->layout, "Which model folder to check")
      ->check(CLI::IsMember({"mistral", "hf", "hf-mistral3", "mistral-fp8", "hf-fp8", "all"}))
      ->capture_default_str();
  sub->add_flag("--json", flags->json, "Print a JSON report instead of a table");
  sub->add_option("-t,--threads", flags->threads, "Threads (default: all CPUs available)")->check(CLI::Range(0, 1024));
  sub->add_option("--model", flags->model, "A GGUF file or model folder to check against REF_DIR/golden/");
  CLI::Option* dtype_option = sub->add_option("--dtype", flags->dtype,
                  "Weight format: f32 checks the exact path against the 1e-4 tolerance; bf16, q8 and q4 report\n"
                  "max abs error, RMS relative error, top-1 agreement and mean KL (teacher-forced)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}))
      ->capture_default_str();
  sub->add_option("--chunk", flags->chunk, "Chunk size of the chunked-prefill path")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  return {sub, [flags, dtype_option] {
            flags->dtype_given = dtype_option->count() > 0;
            return RunCheckGolden(*flags);
          }};
}

}  // namespace bora::app
