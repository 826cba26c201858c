// libFuzzer target (rule L11): bytes as a LoRA adapter folder. Byte 0 picks the layout
// (even: mistral-finetune's params.json + lora.safetensors, odd: PEFT's adapter_config.json +
// adapter_model.safetensors); the rest is the config file and the safetensors file, split at the
// first "\n--8<--\n" (no marker: no config file). The folder is loaded against a small dense and
// a small mixture-of-experts base; it must load into an adapter that matches the base with
// finite values, or fail with a typed error.
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "base/error.h"
#include "formats/model_params.h"
#include "model/lora_adapter.h"

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMarker = "\n--8<--\n";

// dim 32, 2 layers, 4 heads of 8 (2 KV heads), FFN 64; the MoE one has 4 experts, 2 active.
bora::formats::ModelParams SmallBase(bool moe) {
  bora::formats::ModelParams p;
  p.dim = 32, p.n_layers = 2, p.n_heads = 4, p.n_kv_heads = 2, p.head_dim = 8, p.hidden_dim = 64;
  p.vocab_size = 128;
  p.layer_windows.assign(2, 0);
  if (moe) p.moe = bora::formats::MoeParams{4, 2};
  return p;
}

// One folder per process, reused by every input (in memory when /dev/shm exists) and removed
// at exit. A plain array, so it is still there when the exit handler runs.
char g_folder[64];

void RemoveFolder() {
  std::error_code error;
  fs::remove_all(g_folder, error);
}

const char* Folder() {
  if (g_folder[0] == '\0') {
    std::snprintf(g_folder, sizeof(g_folder), "%s/bora-fuzz-lora-XXXXXX",
                  fs::exists("/dev/shm") ? "/dev/shm" : "/tmp");
    if (::mkdtemp(g_folder) == nullptr) std::abort();
    std::atexit(RemoveFolder);
  }
  return g_folder;
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();  // the fuzzer's own folder: not the input's fault
}

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool peft = (data[0] & 1) != 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t marker = rest.find(kMarker);
  const std::string_view config = marker == std::string_view::npos ? "" : rest.substr(0, marker);
  const std::string_view weights =
      marker == std::string_view::npos ? rest : rest.substr(marker + kMarker.size());

  const fs::path dir = Folder();
  std::error_code error;
  for (const char* name :
       {"params.json", "lora.safetensors", "adapter_config.json", "adapter_model.safetensors"}) {
    fs::remove(dir / name, error);
  }
  if (peft) {
    WriteFile(dir / "adapter_config.json", config);
    WriteFile(dir / "adapter_model.safetensors", weights);
  } else {
    if (marker != std::string_view::npos) WriteFile(dir / "params.json", config);
    WriteFile(dir / "lora.safetensors", weights);
  }
  for (const bool moe : {false, true}) {
    const bora::formats::ModelParams base = SmallBase(moe);
    try {
      const bora::model::LoraAdapter adapter = bora::model::LoadLoraAdapter(dir.string(), base);
      Require(bora::model::LoraMatchesModel(adapter, base), "a loaded adapter fits its base");
      Require(adapter.rank >= 1 && adapter.rank <= 256, "rank in [1, 256]");
      Require(std::isfinite(adapter.scaling), "finite scaling");
      adapter.ForEachMatrix([&](const bora::model::LoraMatrix& m, const std::string&) {
        Require(m.a.size() == static_cast<size_t>(m.rank * m.in), "A is rank x in");
        Require(m.b.size() == static_cast<size_t>(m.out * m.rank), "B is out x rank");
        for (float v : m.a) Require(std::isfinite(v), "finite A");
        for (float v : m.b) Require(std::isfinite(v), "finite B");
      });
    } catch (const bora::Error&) {
    }
  }
  return 0;
}
