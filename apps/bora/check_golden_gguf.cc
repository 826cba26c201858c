// GGUF test folders for `bora check-golden`: each file's logits against llama.cpp's (of the file
// itself, and of its F32 dequantization), prompts of golden.json, all positions in one prefill.
#include "check_golden_gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Tolerances of ../shared/gguf/README.md: exact dequantization 1e-4; bora's own quantized
// compute vs llama.cpp's (which quantizes activations too) on dense models: max abs 0.5 for
// logits of RMS 1 (scaled by the logits' RMS above that) and RMS relative 5%.
constexpr double kExactTolerance = 1e-4;
constexpr double kNativeMaxAbs = 0.5;
constexpr double kNativeRmsRel = 0.05;

Json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path.string() + ": cannot open");
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    throw FormatError(path.string() + ": not valid JSON: " + e.what());
  }
}

// Rows of a stored [rows, vocab] float32 file; the path must stay inside `dir`.
std::vector<float> ReadLogits(const fs::path& dir, const Json& entry, int64_t vocab, int64_t& rows) {
  if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string()) {
    throw FormatError((dir / "golden.json").string() + ": a logits entry has no \"file\"");
  }
  const std::string name = entry["file"].get<std::string>();
  if (name.find("..") != std::string::npos || (!name.empty() && name[0] == '/')) {
    throw FormatError((dir / "golden.json").string() + ": logits path \"" + name + "\" leaves the folder");
  }
  const fs::path path = dir / name;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw IoError(path.string() + ": cannot open");
  const auto bytes = static_cast<int64_t>(in.tellg());
  if (bytes <= 0 || bytes % (4 * vocab) != 0) {
    throw FormatError(path.string() + ": size is not a whole number of [" + std::to_string(vocab) + "] float32 rows");
  }
  rows = bytes / (4 * vocab);
  std::vector<float> values(static_cast<size_t>(bytes / 4));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()), bytes);
  return values;
}

std::vector<int32_t> Tokens(const Json& value) {
  std::vector<int32_t> tokens;
  if (!value.is_array()) return tokens;
  for (const Json& id : value) tokens.push_back(id.get<int32_t>());
  return tokens;
}

struct Comparison {
  double max_abs = 0, sum_sq_diff = 0, sum_sq_ref = 0;
  int64_t rows = 0, top1_same = 0;
  double rms_rel() const { return sum_sq_ref > 0 ? std::sqrt(sum_sq_diff / sum_sq_ref) : 0; }
};

void Compare(const float* ours, const float* ref, int64_t rows, int64_t vocab, Comparison& c) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = ours + r * vocab;
    const float* b = ref + r * vocab;
    for (int64_t v = 0; v < vocab; ++v) {
      const double d = static_cast<double>(a[v]) - b[v];
      c.max_abs = std::isnan(d) ? INFINITY : std::max(c.max_abs, std::fabs(d));
      c.sum_sq_diff += d * d;
      c.sum_sq_ref += static_cast<double>(b[v]) * b[v];
    }
    c.top1_same += std::max_element(a, a + vocab) == a + (std::max_element(b, b + vocab) - b) ? 1 : 0;
    ++c.rows;
  }
}

// Greedy continuation of `prompt` by `count` tokens through the KV-cache decode path.
std::vector<int32_t> Greedy(model::Transformer& model, const std::vector<int32_t>& prompt, size_t count) {
  const int64_t vocab = model.params().vocab_size;
  model::ContiguousKvCache cache = model.NewCache();
  std::vector<float> logits(static_cast<size_t>(vocab));
  model.Forward(prompt, cache, logits, false);
  std::vector<int32_t> out;
  while (out.size() < count) {
    const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (out.size() == count) break;
    model.Forward(std::span<const int32_t>(&out.back(), 1), cache, logits, false);
  }
  return out;
}

}  // namespace

bool IsGgufGoldenFolder(const std::string& dir) {
  const fs::path path = fs::path(dir) / "golden.json";
  if (!fs::exists(path)) return false;
  const Json root = ReadJson(path);
  return root.is_object() && root.contains("files") && root["files"].is_object();
}

int RunCheckGgufGolden(const std::string& dir_text, std::optional<std::string> dtype, int threads, bool json) {
  const fs::path dir(dir_text);
  const Json root = ReadJson(dir / "golden.json");
  if (!root.contains("cases")) throw FormatError((dir / "golden.json").string() + ": needs cases and files");
  // Two layouts: ../shared/gguf/<model>/ (cases and each file's cases are lists with "name",
  // vocab_size at the top) and real-models/stories260K/ (both keyed by case name).
  std::map<std::string, std::vector<int32_t>> prompts;
  for (const auto& [key, value] : root["cases"].items()) {
    prompts[value.is_object() && value.contains("name") ? value["name"].get<std::string>() : key] =
        Tokens(value.value("prompt_tokens", Json::array()));
  }
  const int64_t stated_vocab = root.contains("vocab_size") ? root["vocab_size"].get<int64_t>() : -1;
  const bool exact = dtype == std::string("f32");
  bool all_passed = true;
  Json results = Json::array();
  if (!json) {
    std::printf("%-28s %-5s %-5s %-10s %-9s %-7s %-9s %s\n", "file", "case", "rows", "max_abs", "rms_rel", "top1",
                "greedy", "result");
  }
  for (const auto& [type, file] : root["files"].items()) {
    const fs::path gguf = dir / file.at("gguf").get<std::string>();
    model::LoadOptions options;
    options.context = 4096;
    options.threads = threads;
    if (dtype) options.dtype = model::ParseWeightDType(*dtype);
    std::unique_ptr<model::Transformer> model = model::LoadModel(gguf.string(), options);
    const int64_t vocab = model->params().vocab_size;
    if (stated_vocab >= 0 && vocab != stated_vocab) {
      throw FormatError(gguf.string() + ": vocabulary " + std::to_string(vocab) + " differs from golden.json's " +
                        std::to_string(stated_vocab));
    }
    const bool moe = model->params().moe.has_value();
    Comparison overall;
    bool file_passed = true;
    for (const auto& [case_key, file_case] : file.at("cases").items()) {
      const std::string name = file_case.contains("name") ? file_case["name"].get<std::string>() : case_key;
      const std::vector<int32_t> prompt = prompts.count(name) ? prompts.at(name) : std::vector<int32_t>{};
      if (prompt.empty()) continue;  // a case without a prompt (stories260K's "bos": greedy only)
      // An F32 file is its own exact dequantization (stories260K stores no separate one).
      const char* key = exact && !(type == "F32" && !file_case.contains("dequant_f32_prefill_logits"))
                            ? "dequant_f32_prefill_logits"
                            : "prefill_logits";
      if (!file_case.contains(key) || file_case[key].is_null()) continue;  // not stored for this prompt
      const Json& entry = file_case[key];
      int64_t rows = 0;
      const std::vector<float> ref = ReadLogits(dir, entry, vocab, rows);
      if (rows > static_cast<int64_t>(prompt.size())) {
        throw FormatError(gguf.string() + ": case " + name + " stores more rows than the prompt has tokens");
      }
      model::ContiguousKvCache cache = model->NewCache();
      std::vector<float> ours(prompt.size() * static_cast<size_t>(vocab));
      model->Forward(prompt, cache, ours, true);
      Comparison c;
      Compare(ours.data(), ref.data(), rows, vocab, c);
      Compare(ours.data(), ref.data(), rows, vocab, overall);
      std::string greedy = "-";
      bool passed = true;
      if (exact) {
        passed = c.max_abs <= kExactTolerance;
        const std::vector<int32_t> expected =
            file_case.contains("greedy_tokens_dequant_f32") ? Tokens(file_case["greedy_tokens_dequant_f32"]) : std::vector<int32_t>{};
        if (!expected.empty()) {
          const std::vector<int32_t> got = Greedy(*model, prompt, expected.size());
          const auto mismatch = std::mismatch(got.begin(), got.end(), expected.begin());
          greedy = mismatch.first == got.end() ? std::to_string(got.size()) + "/" + std::to_string(got.size()) + " ok"
                                               : "differs@" + std::to_string(mismatch.first - got.begin());
          passed = passed && mismatch.first == got.end();
        }
      }
      file_passed = file_passed && passed;
      results.push_back({{"file", gguf.filename().string()}, {"type", type}, {"case", name}, {"rows", rows},
                         {"max_abs_diff", c.max_abs}, {"rms_rel", c.rms_rel()},
                         {"top1_agreement", static_cast<double>(c.top1_same) / std::max<int64_t>(1, c.rows)},
                         {"greedy", greedy}, {"passed", passed}});
      if (!json) {
        std::printf("%-28s %-5s %-5lld %-10.3e %-9.5f %-7.3f %-9s %s\n", gguf.filename().string().c_str(), name.c_str(),
                    static_cast<long long>(rows), c.max_abs, c.rms_rel(),
                    static_cast<double>(c.top1_same) / std::max<int64_t>(1, c.rows), greedy.c_str(),
                    exact ? (passed ? "PASS" : "FAIL") : "");
      }
    }
    if (!exact) {
      // bora's compute vs llama.cpp's quantized compute: a dense-model rule; MoE routing flips.
      // The max-abs limit is for logits of RMS ~1 (the reference models); larger logits scale it.
      const double logit_rms = std::sqrt(overall.sum_sq_ref / std::max<double>(1, overall.rows * vocab));
      const double max_abs_limit = kNativeMaxAbs * std::max(1.0, logit_rms);
      const bool ok = overall.max_abs <= max_abs_limit && overall.rms_rel() <= kNativeRmsRel;
      if (!moe) file_passed = ok;
      if (!json) {
        std::printf("%-28s all   max abs %.4f (limit %.2f), rms_rel %.4f (limit %.2f): %s\n",
                    gguf.filename().string().c_str(), overall.max_abs, max_abs_limit, overall.rms_rel(), kNativeRmsRel,
                    moe ? "reported only (MoE: expert choices flip under quantized compute)" : (ok ? "PASS" : "FAIL"));
      }
    }
    all_passed = all_passed && file_passed;
  }
  if (json) {
    Json report = {{"dir", dir_text}, {"dtype", dtype.value_or("native")}, {"passed", all_passed}, {"results", results}};
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::printf("%s\n", all_passed ? "PASS" : "FAIL");
  }
  return all_passed ? 0 : 1;
}

}  // namespace bora::app
