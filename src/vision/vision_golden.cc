// Reading tiny-pixtral-style golden sets and checking images and the encoder against them.
#include "vision/vision_golden.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "image/image.h"

namespace bora::vision {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A .bin entry ({"file", "dtype", "shape"}) as floats, checked against `count` elements.
std::vector<float> ReadF32(const fs::path& dir, const Json& entry, int64_t count, const std::string& what) {
  if (!entry.is_object() || !entry.contains("file")) throw FormatError(what + ": missing file entry");
  const std::string bytes = ReadBytes(dir / entry.at("file").get<std::string>());
  if (static_cast<int64_t>(bytes.size()) != count * 4) {
    throw FormatError(what + ": " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(count * 4));
  }
  std::vector<float> values(static_cast<size_t>(count));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

double MaxAbs(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
  return worst;
}

}  // namespace

bool IsVisionGoldenDir(const std::string& golden_dir) {
  const fs::path path = fs::path(golden_dir) / "golden.json";
  if (!fs::is_regular_file(path)) return false;
  try {
    const Json root = Json::parse(ReadBytes(path));
    return root.is_object() && root.contains("images") && root.contains("image_config");
  } catch (const Json::exception&) {
    return false;
  }
}

VisionGoldenSet ReadVisionGoldenSet(const std::string& golden_dir) {
  const fs::path dir(golden_dir);
  const std::string json_path = (dir / "golden.json").string();
  VisionGoldenSet set;
  set.text = model::ReadGoldenSet(golden_dir, /*with_images=*/true);
  Json root;
  try {
    root = Json::parse(ReadBytes(json_path));
    const Json& config = root.at("image_config");
    set.config.patch_size = config.at("image_patch_size").get<int64_t>();
    set.config.max_image_size = config.at("max_image_size").get<int64_t>();
    set.config.spatial_merge_size = config.at("spatial_merge_size").get<int64_t>();
    set.config.image_token_id = config.at("image_token_id").get<int32_t>();
    set.config.image_break_token_id = config.at("image_break_token_id").get<int32_t>();
    set.config.image_end_token_id = config.at("image_end_token_id").get<int32_t>();
    for (const auto& [name, entry] : root.at("images").items()) {
      GoldenImage image;
      image.name = name;
      image.file = entry.at("file").get<std::string>();
      image.tokens_w = entry.at("tokens_wh")[0].get<int64_t>();
      image.tokens_h = entry.at("tokens_wh")[1].get<int64_t>();
      image.width = entry.at("resized_wh")[0].get<int64_t>();
      image.height = entry.at("resized_wh")[1].get<int64_t>();
      image.image_tokens = entry.at("image_tokens").get<std::vector<int32_t>>();
      const auto& rgb_shape = entry.at("rgb_u8").at("shape");
      const std::string rgb = ReadBytes(dir / entry.at("rgb_u8").at("file").get<std::string>());
      if (static_cast<int64_t>(rgb.size()) != rgb_shape[0].get<int64_t>() * rgb_shape[1].get<int64_t>() * 3) {
        throw FormatError(json_path + ": " + name + " rgb_u8 has the wrong size");
      }
      image.rgb_u8.assign(rgb.begin(), rgb.end());
      image.pixels.grid = {image.tokens_w, image.tokens_h, image.width, image.height};
      image.pixels.pixels = ReadF32(dir, entry.at("pixels"), 3 * image.width * image.height, json_path + ": " + name);
      const auto& embed_shape = entry.at("patch_embeds").at("shape");
      const int64_t patches = embed_shape[0].get<int64_t>(), d = embed_shape[1].get<int64_t>();
      image.patch_embeds = ReadF32(dir, entry.at("patch_embeds"), patches * d, json_path + ": " + name);
      image.vision_out = ReadF32(dir, entry.at("vision_out"), patches * d, json_path + ": " + name);
      const auto& out_shape = entry.at("embeddings").at("shape");
      image.embeddings = ReadF32(dir, entry.at("embeddings"), out_shape[0].get<int64_t>() * out_shape[1].get<int64_t>(),
                                 json_path + ": " + name);
      set.images.emplace(name, std::move(image));
    }
    for (const Json& entry : root.at("cases")) {
      std::vector<std::string> names;
      if (entry.contains("images")) names = entry.at("images").get<std::vector<std::string>>();
      for (const std::string& name : names) {
        if (!set.images.count(name)) throw FormatError(json_path + ": a case names unknown image " + name);
      }
      set.case_images.push_back(std::move(names));
    }
  } catch (const Json::exception& e) {
    throw FormatError(json_path + ": " + e.what());
  }
  if (set.case_images.size() != set.text.cases.size()) throw FormatError(json_path + ": cases do not line up");
  return set;
}

ImageCheck CheckGoldenImage(ops::ComputeContext& ctx, const VisionEncoder& encoder, const std::string& ref_dir,
                            const GoldenImage& golden, const image::ImageConfig& config,
                            std::vector<float>& embeddings) {
  ImageCheck check;
  check.name = golden.name;
  const std::string file = ReadBytes(fs::path(ref_dir) / golden.file);
  const image::RgbImage rgb =
      image::DecodeImage(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(file.data()), file.size()));
  check.rgb_exact = rgb.rgb == golden.rgb_u8;
  const image::PreprocessedImage ours = image::PreprocessImage(rgb, config);
  check.tokens_match = ours.grid.tokens_w == golden.tokens_w && ours.grid.tokens_h == golden.tokens_h &&
                       ours.grid.width == golden.width && ours.grid.height == golden.height &&
                       image::ImageTokenIds(ours.grid, config) == golden.image_tokens;
  check.pixels = MaxAbs(ours.pixels, golden.pixels.pixels);
  VisionTrace trace;
  embeddings.assign(static_cast<size_t>(encoder.OutputRows(golden.pixels) * encoder.output_dim()), 0.0f);
  encoder.Encode(ctx, golden.pixels, embeddings, &trace);
  check.patch_embeds = MaxAbs(trace.patch_embeds, golden.patch_embeds);
  check.vision_out = MaxAbs(trace.vision_out, golden.vision_out);
  check.embeddings = MaxAbs(embeddings, golden.embeddings);
  return check;
}

void AttachCaseImages(model::GoldenCase& golden_case, const std::vector<std::string>& names,
                      const std::map<std::string, std::vector<float>>& embeddings_by_name, int32_t image_token) {
  golden_case.image_rows.clear();
  golden_case.image_token = image_token;
  for (const std::string& name : names) {
    const std::vector<float>& rows = embeddings_by_name.at(name);
    golden_case.image_rows.insert(golden_case.image_rows.end(), rows.begin(), rows.end());
  }
}

}  // namespace bora::vision
