// Golden-logit verification.
#include "model/golden.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "kernels/activation.h"

namespace bora::model {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::vector<float> ReadFloats(const fs::path& dir, const Json& entry, int64_t rows, int64_t vocab,
                              const std::string& what) {
  if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string()) {
    throw FormatError((dir / "golden.json").string() + ": " + what + " has no \"file\"");
  }
  if (entry.contains("shape") && entry["shape"] != Json::array({rows, vocab})) {
    throw FormatError((dir / "golden.json").string() + ": " + what + " shape " + entry["shape"].dump() +
                      " does not match [" + std::to_string(rows) + ", " + std::to_string(vocab) + "]");
  }
  std::string name = entry["file"].get<std::string>();
  if (name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
    throw FormatError((dir / "golden.json").string() + ": file name \"" + name + "\" must be a plain name");
  }
  fs::path path = dir / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  std::vector<float> values(static_cast<size_t>(rows * vocab));
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  if (in.gcount() != static_cast<std::streamsize>(values.size() * sizeof(float)) || in.peek() != EOF) {
    throw FormatError(path.string() + ": expected exactly " + std::to_string(values.size() * 4) + " bytes of float32");
  }
  return values;  // little-endian float32 on every host bora targets (x86-64, aarch64)
}

std::vector<int32_t> ReadTokens(const Json& value, const std::string& what, const std::string& file) {
  if (!value.is_array() || value.empty()) throw FormatError(file + ": " + what + " must be a non-empty array");
  std::vector<int32_t> tokens;
  for (const Json& id : value) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      throw FormatError(file + ": " + what + " holds a non-integer or negative id");
    }
    tokens.push_back(id.get<int32_t>());
  }
  return tokens;
}

double MaxAbsDiff(const float* a, const float* b, size_t count) {
  double worst = 0;
  for (size_t i = 0; i < count; ++i) {
    double diff = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (std::isnan(diff)) return INFINITY;
    worst = std::max(worst, diff);
  }
  return worst;
}

}  // namespace

GoldenSet ReadGoldenSet(const std::string& golden_dir, bool with_images) {
  fs::path dir(golden_dir);
  fs::path json_path = dir / "golden.json";
  std::ifstream in(json_path);
  if (!in) throw IoError(json_path.string() + ": cannot open (is this a reference folder with golden/?)");
  Json root;
  try {
    root = Json::parse(in);
  } catch (const Json::exception& e) {
    throw FormatError(json_path.string() + ": not valid JSON: " + e.what());
  }
  if (!root.contains("cases") || !root["cases"].is_array() || root["cases"].empty()) {
    throw FormatError(json_path.string() + ": no \"cases\" array");
  }
  GoldenSet set;
  if (root.contains("bf16_compute_vs_f32") && root["bf16_compute_vs_f32"].is_object()) {
    const Json& drift = root["bf16_compute_vs_f32"];
    if (drift.contains("rms_rel") && drift["rms_rel"].is_number() && drift.contains("top1_agreement_min") &&
        drift["top1_agreement_min"].is_number()) {
      set.bf16_drift = Bf16Drift{drift["rms_rel"].get<double>(), drift["top1_agreement_min"].get<double>()};
    }
  }
  for (const Json& entry : root["cases"]) {
    GoldenCase golden;
    golden.name = entry.value("name", "case" + std::to_string(set.cases.size()));
    // A case bora cannot run is an error, never a skip.
    if (!with_images && entry.contains("images") && entry["images"].is_array() && !entry["images"].empty()) {
      throw Unsupported(json_path.string() + ": case " + golden.name +
                        " feeds images; check it with the vision golden reader (bora check-golden REF_DIR)");
    }
    golden.prompt_tokens = ReadTokens(entry.value("prompt_tokens", Json()), golden.name + ".prompt_tokens", json_path);
    golden.greedy_tokens = ReadTokens(entry.value("greedy_tokens", Json()), golden.name + ".greedy_tokens", json_path);
    const Json& prefill = entry.value("prefill_logits", Json());
    if (!prefill.is_object() || !prefill.contains("shape") || !prefill["shape"].is_array() ||
        prefill["shape"].size() != 2 || !prefill["shape"][1].is_number_unsigned()) {
      throw FormatError(json_path.string() + ": " + golden.name + ".prefill_logits needs a [N, V] shape");
    }
    int64_t vocab = prefill["shape"][1].get<int64_t>();
    if (vocab < 1 || vocab > (1 << 22)) throw FormatError(json_path.string() + ": vocabulary size out of range");
    if (set.vocab_size != 0 && set.vocab_size != vocab) throw FormatError(json_path.string() + ": cases disagree on V");
    set.vocab_size = vocab;
    const int64_t prompt = static_cast<int64_t>(golden.prompt_tokens.size());
    const int64_t generated = static_cast<int64_t>(golden.greedy_tokens.size());
    golden.prefill_logits = ReadFloats(dir, prefill, prompt, vocab, golden.name + ".prefill_logits");
    golden.decode_logits = ReadFloats(dir, entry.value("decode_logits", Json()), generated, vocab,
                                      golden.name + ".decode_logits");
    set.cases.push_back(std::move(golden));
  }
  return set;
}

GoldenQuality MeasureGoldenQuality(Transformer& model, const GoldenCase& golden) {
  const int64_t vocab = model.params().vocab_size;
  const int64_t prompt = static_cast<int64_t>(golden.prompt_tokens.size());
  const int64_t generated = static_cast<int64_t>(golden.greedy_tokens.size());
  const int64_t rows = prompt + generated;
  if (static_cast<int64_t>(golden.prefill_logits.size()) != prompt * vocab || rows > model.context_length()) {
    throw InvalidArgument("golden case " + golden.name + " does not fit this model (vocabulary or context)");
  }
  std::vector<int32_t> tokens = golden.prompt_tokens;
  tokens.insert(tokens.end(), golden.greedy_tokens.begin(), golden.greedy_tokens.end());
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  ContiguousKvCache cache = model.NewCache();
  model.Forward(tokens, cache, logits, true, nullptr, ImageRows{golden.image_rows, golden.image_token});
  GoldenQuality quality;
  quality.name = golden.name;
  quality.rows = rows;
  int64_t agree = 0;
  double kl_sum = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* ours = logits.data() + r * vocab;
    const float* ref = r < prompt ? golden.prefill_logits.data() + r * vocab
                                  : golden.decode_logits.data() + (r - prompt) * vocab;
    agree += kernels::ArgMax(ours, vocab) == kernels::ArgMax(ref, vocab);
    double ref_max = ref[0], our_max = ours[0];
    for (int64_t i = 0; i < vocab; ++i) {
      ref_max = std::max<double>(ref_max, ref[i]);
      our_max = std::max<double>(our_max, ours[i]);
      const double diff = static_cast<double>(ours[i]) - ref[i];
      quality.max_abs_diff = std::max(quality.max_abs_diff, std::fabs(diff));
      quality.sum_sq_diff += diff * diff;
      quality.sum_sq_golden += static_cast<double>(ref[i]) * ref[i];
    }
    double ref_sum = 0, our_sum = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      ref_sum += std::exp(ref[i] - ref_max);
      our_sum += std::exp(ours[i] - our_max);
    }
    const double ref_log_z = ref_max + std::log(ref_sum), our_log_z = our_max + std::log(our_sum);
    double kl = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      const double log_p = ref[i] - ref_log_z, log_q = ours[i] - our_log_z;
      kl += std::exp(log_p) * (log_p - log_q);
    }
    kl_sum += kl;
  }
  quality.top1_agreement = static_cast<double>(agree) / static_cast<double>(rows);
  quality.mean_kl = kl_sum / static_cast<double>(rows);
  return quality;
}

GoldenCaseResult RunGoldenCase(Transformer& model, const GoldenCase& golden, int64_t chunk_size) {
  const int64_t vocab = model.params().vocab_size;
  const int64_t prompt = static_cast<int64_t>(golden.prompt_tokens.size());
  const int64_t generated = static_cast<int64_t>(golden.greedy_tokens.size());
  if (static_cast<int64_t>(golden.prefill_logits.size()) != prompt * vocab) {
    throw InvalidArgument("golden case " + golden.name + " has vocabulary " +
                          std::to_string(golden.prefill_logits.size() / std::max<int64_t>(prompt, 1)) +
                          " but the model has " + std::to_string(vocab));
  }
  if (prompt + generated > model.context_length()) {
    throw InvalidArgument("golden case " + golden.name + " needs a context of " + std::to_string(prompt + generated) +
                          " tokens, the model allows " + std::to_string(model.context_length()));
  }
  GoldenCaseResult result;
  result.name = golden.name;
  std::vector<float> logits(static_cast<size_t>(prompt * vocab));
  std::span<const int32_t> tokens(golden.prompt_tokens);

  auto record = [&](const std::string& path, double diff) {
    result.paths.push_back({path, diff});
    result.max_abs_diff = std::max(result.max_abs_diff, diff);
  };
  // Prefill split into calls of `step` tokens (prompt = one-shot, 1 = token by token).
  auto prefill = [&](KvCache& cache, int64_t step) {
    for (int64_t start = 0; start < prompt; start += step) {
      int64_t count = std::min(step, prompt - start);
      const std::span<const int32_t> chunk = tokens.subspan(start, count);
      ImageRows images;
      if (!golden.image_rows.empty()) {
        const int64_t dim = model.params().dim;
        const int64_t before = CountImageTokens(tokens.subspan(0, start), golden.image_token);
        const int64_t here = CountImageTokens(chunk, golden.image_token);
        images = {std::span<const float>(golden.image_rows).subspan(before * dim, here * dim), golden.image_token};
      }
      model.Forward(chunk, cache, std::span<float>(logits).subspan(start * vocab), true, nullptr, images);
    }
    return MaxAbsDiff(logits.data(), golden.prefill_logits.data(), logits.size());
  };

  ContiguousKvCache cache = model.NewCache();
  for (auto [name, step] : {std::pair<std::string, int64_t>{"token-by-token", 1},
                            std::pair<std::string, int64_t>{"chunked-" + std::to_string(chunk_size), chunk_size},
                            std::pair<std::string, int64_t>{"one-shot", prompt}}) {
    cache.Reset();
    record(name, prefill(cache, step));
  }
  // The cache now holds the one-shot prefill; decode feeds the golden greedy tokens.
  auto note_greedy = [&](int64_t index, const float* row) {
    if (kernels::ArgMax(row, vocab) != golden.greedy_tokens[index] && result.greedy_match) {
      result.greedy_match = false;
      result.first_greedy_mismatch = static_cast<int>(index);
    }
  };
  note_greedy(0, logits.data() + (prompt - 1) * vocab);
  std::vector<float> row(static_cast<size_t>(vocab));
  double decode_diff = 0;
  for (int64_t i = 0; i < generated; ++i) {
    model.Forward(std::span<const int32_t>(&golden.greedy_tokens[i], 1), cache, row, false);
    decode_diff = std::max(decode_diff, MaxAbsDiff(row.data(), golden.decode_logits.data() + i * vocab, vocab));
    if (i + 1 < generated) note_greedy(i + 1, row.data());
  }
  record("decode", decode_diff);
  return result;
}

}  // namespace bora::model
