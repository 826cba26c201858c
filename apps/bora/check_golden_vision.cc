// `bora check-golden` for vision-language reference folders: image preprocessing, the vision
// encoder and the multimodal prompts against Mistral's reference outputs.
#include "check_golden_vision.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/golden.h"
#include "model/transformer.h"
#include "vision/vision_golden.h"

namespace bora::app {
namespace {
namespace fs = std::filesystem;
}  // namespace

bool IsVisionGoldenFolder(const std::string& ref_dir) {
  return vision::IsVisionGoldenDir((fs::path(ref_dir) / "golden").string());
}

int RunCheckVisionGolden(const std::string& ref_dir, const std::string& dtype_name, int threads, bool json,
                         int64_t chunk) {
  const std::string model_dir = (fs::path(ref_dir) / "mistral").string();
  if (!fs::is_directory(model_dir)) throw IoError(ref_dir + ": has no mistral/ folder");
  vision::VisionGoldenSet golden = vision::ReadVisionGoldenSet((fs::path(ref_dir) / "golden").string());
  int64_t needed = 1;
  for (const auto& c : golden.text.cases) {
    needed = std::max<int64_t>(needed, static_cast<int64_t>(c.prompt_tokens.size() + c.greedy_tokens.size()));
  }
  const DType dtype = model::ParseWeightDType(dtype_name);
  model::LoadOptions options;
  options.context = std::max<int64_t>(4096, needed);
  options.threads = threads;
  options.dtype = dtype;
  std::unique_ptr<model::Transformer> model = model::LoadModel(model_dir, options);
  if (!model->params().vision) throw FormatError(model_dir + ": params.json has no vision encoder");
  auto encoder = vision::VisionEncoder::Load(model->folder(), model->params().dim, dtype, model->compute());

  bool passed = true;
  nlohmann::ordered_json report = {{"ref_dir", ref_dir}, {"dtype", dtype_name}};
  nlohmann::ordered_json images = nlohmann::ordered_json::array();
  std::map<std::string, std::vector<float>> embeddings;
  if (!json) {
    std::printf("%-14s %-6s %-6s %-10s %-12s %-12s %-12s %s\n", "image", "rgb", "tokens", "pixels", "patch_embeds",
                "vision_out", "embeddings", "result");
  }
  for (const auto& [name, image] : golden.images) {
    std::vector<float> rows;
    const vision::ImageCheck check = vision::CheckGoldenImage(model->compute(), *encoder, ref_dir, image, golden.config,
                                                              rows);
    embeddings.emplace(name, std::move(rows));
    // Quantized weights: only the preprocessing is judged here; the prompts measure the rest.
    const bool ok = dtype == DType::kF32 ? check.passed()
                                         : check.rgb_exact && check.tokens_match && check.pixels <= vision::kPixelsTolerance;
    passed = passed && ok;
    images.push_back({{"image", name}, {"rgb_exact", check.rgb_exact}, {"tokens_match", check.tokens_match},
                      {"pixels", check.pixels}, {"patch_embeds", check.patch_embeds}, {"vision_out", check.vision_out},
                      {"embeddings", check.embeddings}, {"passed", ok}});
    if (!json) {
      std::printf("%-14s %-6s %-6s %-10.2e %-12.2e %-12.2e %-12.2e %s\n", name.c_str(), check.rgb_exact ? "exact" : "DIFF",
                  check.tokens_match ? "ok" : "DIFF", check.pixels, check.patch_embeds, check.vision_out,
                  check.embeddings, ok ? "PASS" : "FAIL");
    }
  }
  report["images"] = images;
  nlohmann::ordered_json cases = nlohmann::ordered_json::array();
  for (size_t i = 0; i < golden.text.cases.size(); ++i) {
    model::GoldenCase& golden_case = golden.text.cases[i];
    vision::AttachCaseImages(golden_case, golden.case_images[i], embeddings, golden.config.image_token_id);
    if (dtype != DType::kF32) {
      const model::GoldenQuality q = model::MeasureGoldenQuality(*model, golden_case);
      cases.push_back({{"case", q.name}, {"max_abs_diff", q.max_abs_diff}, {"rms_rel", q.rms_rel()},
                       {"top1_agreement", q.top1_agreement}, {"mean_kl", q.mean_kl}});
      if (!json) {
        std::printf("%-22s max_abs %.4f rms_rel %.5f top1 %.4f mean_kl %.3e\n", q.name.c_str(), q.max_abs_diff,
                    q.rms_rel(), q.top1_agreement, q.mean_kl);
      }
      continue;
    }
    const model::GoldenCaseResult result = model::RunGoldenCase(*model, golden_case, chunk);
    passed = passed && result.passed();
    nlohmann::ordered_json paths = nlohmann::ordered_json::object();
    for (const auto& path : result.paths) paths[path.path] = path.max_abs_diff;
    cases.push_back({{"case", result.name}, {"max_abs_diff", result.max_abs_diff}, {"paths", paths},
                     {"greedy_match", result.greedy_match}, {"passed", result.passed()}});
    if (!json) {
      std::printf("%-22s", result.name.c_str());
      for (const auto& path : result.paths) std::printf(" %s %.3e", path.path.c_str(), path.max_abs_diff);
      std::printf(" greedy %s %s\n", result.greedy_match ? "ok" : "DIFFERS", result.passed() ? "PASS" : "FAIL");
    }
  }
  report["cases"] = cases;
  report["passed"] = passed;
  if (json) {
    std::printf("%s\n", report.dump(2).c_str());
  } else if (dtype == DType::kF32) {
    std::printf("%s: pixels <= 1e-5, encoder <= 1e-4, embeddings <= 1e-5, logits <= 1e-4 and greedy tokens equal\n",
                passed ? "PASS" : "FAIL");
  } else {
    std::printf("%s: preprocessing exact; prompts reported (teacher-forced, %s weights)\n", passed ? "PASS" : "FAIL",
                dtype_name.c_str());
  }
  return passed ? 0 : 1;
}

}  // namespace bora::app
