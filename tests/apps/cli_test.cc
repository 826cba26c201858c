// End-to-end tests of the `bora` binary: help, check-golden, generate, make-model, bench, and
// one-line errors with a non-zero exit for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "testdata.h"

namespace bora::testing {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs bora with stdout and stderr merged, or with stderr dropped (`stdout_only`) where the test
// parses stdout: a merged stream would interleave progress lines with the JSON.
CommandResult RunBora(const std::string& arguments, bool stdout_only = false) {
  std::string command = std::string(BORA_BINARY) + " " + arguments + (stdout_only ? " 2>/dev/null" : " 2>&1");
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t count;
  while ((count = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, count);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Join(const std::vector<int>& ids, const char* separator) {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) text += (i ? separator : "") + std::to_string(ids[i]);
  return text;
}

TEST(CliTest, HelpOnEveryCommand) {
  CommandResult top = RunBora("--help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command : {"check-golden", "generate", "make-model", "bench", "quantize", "tokenize", "render"}) {
    EXPECT_NE(top.output.find(command), std::string::npos) << command;
    CommandResult help = RunBora(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_NE(help.output.find("--"), std::string::npos) << help.output;
  }
  const CommandResult bare = RunBora("");  // no subcommand: the list of them
  EXPECT_NE(bare.exit_code, 0);
  for (const char* name : {"generate", "serve", "chat", "tune", "quantize", "check-golden"}) {
    EXPECT_NE(bare.output.find(name), std::string::npos) << bare.output;
  }
  EXPECT_NE(RunBora("no-such-command").exit_code, 0);
}

TEST(CliTest, CheckGoldenPassesOnSharedModels) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* name : {"tiny-dense", "tiny-moe"}) {
    CommandResult run = RunBora("check-golden --json -t 2 " + shared + "/reference-models/" + name);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    nlohmann::json report = nlohmann::json::parse(run.output);
    EXPECT_TRUE(report["passed"].get<bool>());
    EXPECT_EQ(report["results"].size(), 6u);  // 3 cases x 2 layouts
    for (const auto& row : report["results"]) EXPECT_LE(row["max_abs_diff"].get<double>(), 1e-4);
  }
  CommandResult table = RunBora("check-golden --layout hf " + shared + "/reference-models/tiny-dense");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("PASS"), std::string::npos);
  EXPECT_EQ(table.output.find("mistral "), std::string::npos) << "only the hf layout was asked for";
}

// The images acceptance command: preprocessing, encoder, embeddings and multimodal logits of
// tiny-pixtral against Mistral's reference; a tampered embedding golden fails it.
TEST(CliTest, CheckGoldenPassesOnTinyPixtral) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-pixtral";
  CommandResult run = RunBora("check-golden --json -t 2 " + ref, true);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json report = nlohmann::json::parse(run.output);
  EXPECT_TRUE(report["passed"].get<bool>());
  EXPECT_EQ(report["images"].size(), 4u);
  EXPECT_EQ(report["cases"].size(), 3u);
  for (const auto& image : report["images"]) {
    EXPECT_TRUE(image["rgb_exact"].get<bool>()) << image;
    EXPECT_LE(image["pixels"].get<double>(), 1e-5);
    EXPECT_LE(image["embeddings"].get<double>(), 1e-5);
  }
  for (const auto& c : report["cases"]) EXPECT_LE(c["max_abs_diff"].get<double>(), 1e-4);

  TempDir copy;
  fs::copy(ref, copy.path(), fs::copy_options::recursive);
  const std::string file = copy.path() + "/golden/img_photo_64x48_embeddings.f32.bin";
  fs::permissions(file, fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = ReadAll(file);
  float value;
  std::memcpy(&value, bytes.data() + 40, 4);
  value += 1e-4f;
  std::memcpy(bytes.data() + 40, &value, 4);
  WriteFile(file, bytes);
  CommandResult tampered = RunBora("check-golden -t 2 " + copy.path());
  EXPECT_EQ(tampered.exit_code, 1) << tampered.output;
  EXPECT_NE(tampered.output.find("FAIL"), std::string::npos) << tampered.output;
}

// `generate --chat ... --image FILE` decodes the reference's greedy tokens for r1; a text
// model refuses --image in one line.
TEST(CliTest, GenerateWithAnImage) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-pixtral";
  const nlohmann::json golden = nlohmann::json::parse(ReadAll(ref + "/golden/golden.json"));
  CommandResult run = RunBora("generate --json -t 2 --model " + ref + "/mistral --chat \"What is in this image?\" --image " +
                                  ref + "/images/photo_64x48.jpg --temperature 0 --max-tokens 16",
                              true);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nlohmann::json::parse(run.output)["tokens"].get<std::vector<int>>(),
            golden["cases"][0]["greedy_tokens"].get<std::vector<int>>());
  // A quantized folder keeps its vision tower (as stored) and reads the image the same way.
  TempDir out;
  CommandResult quantize = RunBora("quantize --model " + ref + "/mistral --dtype q8 --out " + out.path() + "/q8");
  ASSERT_EQ(quantize.exit_code, 0) << quantize.output;
  CommandResult q8 = RunBora("generate --json -t 2 --model " + out.path() + "/q8 --chat \"What is in this image?\" --image " +
                                 ref + "/images/photo_64x48.jpg --temperature 0 --max-tokens 4",
                             true);
  ASSERT_EQ(q8.exit_code, 0) << q8.output;
  EXPECT_EQ(nlohmann::json::parse(q8.output)["tokens"].size(), 4u);
  CommandResult missing = RunBora("generate --model " + ref + "/mistral --chat hi --image /nonexistent.png");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("/nonexistent.png"), std::string::npos) << missing.output;
}

TEST(CliTest, CheckGoldenFailsOnTamperedGoldens) {
  BORA_REQUIRE_SHARED(shared);
  TempDir ref;
  fs::copy(shared + "/reference-models/tiny-dense", ref.path(), fs::copy_options::recursive);
  fs::permissions(ref.path() + "/golden/p7_decode_logits.f32.bin", fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = ReadAll(ref.path() + "/golden/p7_decode_logits.f32.bin");
  float value;
  std::memcpy(&value, bytes.data() + 400, 4);
  value += 1e-3f;
  std::memcpy(bytes.data() + 400, &value, 4);
  WriteFile(ref.path() + "/golden/p7_decode_logits.f32.bin", bytes);
  CommandResult run = RunBora("check-golden --layout mistral " + ref.path());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("FAIL"), std::string::npos) << run.output;
}

TEST(CliTest, GenerateReproducesGoldenGreedyTokens) {
  BORA_REQUIRE_SHARED(shared);
  const std::string ref = shared + "/reference-models/tiny-moe";
  nlohmann::json golden = nlohmann::json::parse(ReadAll(ref + "/golden/golden.json"));
  const auto& golden_case = golden["cases"][1];
  std::vector<int> prompt = golden_case["prompt_tokens"].get<std::vector<int>>();
  std::vector<int> expected = golden_case["greedy_tokens"].get<std::vector<int>>();
  for (const char* layout : {"mistral", "hf"}) {
    CommandResult run = RunBora("generate --model " + ref + "/" + layout + " --tokens " + Join(prompt, ",") +
                                " --max-tokens 32 --prefill-chunk 3",
                                true);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output, Join(expected, " ") + "\n");
  }
  CommandResult json = RunBora("generate --json --model " + ref + "/mistral --tokens " + Join(prompt, ",") +
                                   " --max-tokens 4",
                               true);
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_EQ(nlohmann::json::parse(json.output)["tokens"].get<std::vector<int>>(),
            std::vector<int>(expected.begin(), expected.begin() + 4));
}

// The GGUF acceptance commands: check-golden on a GGUF test folder and on the reference goldens,
// generate printing llama.cpp's greedy tokens of the F32-dequantized file, a truncated file.
TEST(CliTest, GgufFilesCheckAndGenerate) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* model : {"tiny-dense", "tiny-moe"}) {
    CommandResult run = RunBora("check-golden -t 2 --dtype f32 " + shared + "/gguf/" + model);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("PASS"), std::string::npos) << run.output;
  }
  CommandResult native = RunBora("check-golden -t 2 " + shared + "/gguf/tiny-dense");
  EXPECT_EQ(native.exit_code, 0) << native.output;
  // The real model's folder (its own golden.json layout: cases keyed by name).
  for (const char* dtype : {" --dtype f32", ""}) {
    CommandResult stories = RunBora("check-golden -t 2" + std::string(dtype) + " " + shared + "/real-models/stories260K");
    EXPECT_EQ(stories.exit_code, 0) << stories.output;
    EXPECT_NE(stories.output.find("stories260K-F32.gguf"), std::string::npos) << stories.output;
  }
  CommandResult goldens = RunBora("check-golden -t 2 " + shared + "/reference-models/tiny-dense --model " + shared +
                                  "/gguf/tiny-dense/tiny-dense-BF16.gguf");
  EXPECT_EQ(goldens.exit_code, 0) << goldens.output;

  const nlohmann::json golden = nlohmann::json::parse(ReadAll(shared + "/gguf/tiny-dense/golden.json"));
  const std::vector<int> prompt = golden["cases"][1]["prompt_tokens"].get<std::vector<int>>();
  const std::vector<int> expected =
      golden["files"]["Q5_K_M"]["cases"][1]["greedy_tokens_dequant_f32"].get<std::vector<int>>();
  CommandResult run = RunBora("generate --model " + shared + "/gguf/tiny-dense/tiny-dense-Q5_K_M.gguf --dtype f32 --tokens " +
                                  Join(prompt, ",") + " --temperature 0 --max-tokens " + std::to_string(expected.size()),
                              true);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, Join(expected, " ") + "\n");

  TempDir dir;
  const std::string truncated = dir.File("cut.gguf");
  fs::copy_file(shared + "/gguf/tiny-dense/tiny-dense-Q4_0.gguf", truncated);
  fs::permissions(truncated, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(truncated, fs::file_size(truncated) - 4096);
  run = RunBora("generate --model " + truncated + " --tokens 1,2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("cut.gguf"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("truncated"), std::string::npos) << run.output;
}

TEST(CliTest, BadInputGetsOneLineErrorAndNonZeroExit) {
  BORA_REQUIRE_SHARED(shared);
  const std::string model = shared + "/reference-models/tiny-dense/mistral";
  struct Case {
    std::string arguments;
    std::string expected;
  };
  const Case cases[] = {
      {"generate --model " + model + " --tokens 1,x", "not a token id"},
      {"generate --model " + model + " --tokens 1,-2", "not a token id"},
      {"generate --model " + model + " --tokens 1,4096", "outside the vocabulary"},
      {"generate --model " + model + " --tokens 1,2 --max-tokens 4095", "exceeds the context"},
      {"generate --model /nonexistent/model --tokens 1", "no such file or folder"},
      {"generate --model /nonexistent/model --prompt hi", "no such file or folder"},
      {"generate --model " + model + "/consolidated.safetensors --prompt hi", "is a weight file"},
      {"generate --model " + shared + "/gguf/tokenizers/mistral-v3-spm-vocab.gguf --prompt hi",
       "vocabulary-only GGUF"},
      {"serve --model " + shared + "/real-models/stories260K/params.json", "is a file, not a model folder"},
      {"check-golden /nonexistent/ref", "cannot open"},
      {"make-model --preset huge --out /tmp/x", "huge"},
      {"make-model --moe 2,3 --out /tmp/bora-never-written", "num_experts_per_tok"},
  };
  for (const Case& c : cases) {
    CommandResult run = RunBora(c.arguments);
    EXPECT_NE(run.exit_code, 0) << c.arguments;
    EXPECT_NE(run.output.find(c.expected), std::string::npos) << c.arguments << "\n" << run.output;
    EXPECT_EQ(run.output.find("internal error"), std::string::npos) << run.output;
  }
}

TEST(CliTest, CorruptModelFolderNamesTheFile) {
  BORA_REQUIRE_SHARED(shared);
  TempDir dir;
  fs::copy(shared + "/reference-models/tiny-dense/mistral", dir.path(), fs::copy_options::recursive);
  const std::string weights = dir.File("consolidated.safetensors");
  fs::permissions(weights, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(weights, fs::file_size(weights) - 100);  // truncated download
  CommandResult run = RunBora("generate --model " + dir.path() + " --tokens 1,2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("consolidated.safetensors"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("bora: error:"), std::string::npos) << run.output;

  fs::permissions(dir.File("params.json"), fs::perms::owner_write, fs::perm_options::add);
  WriteFile(dir.File("params.json"), "{\"dim\": 256, \"n_layers\": 4");  // truncated JSON
  run = RunBora("generate --model " + dir.path() + " --tokens 1,2");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("params.json"), std::string::npos) << run.output;
}

TEST(CliTest, MakeModelIsDeterministicAndRunnable) {
  TempDir one, two, other;
  ASSERT_EQ(RunBora("make-model --preset tiny --vocab 1000 --seed 5 -t 1 --out " + one.path()).exit_code, 0);
  ASSERT_EQ(RunBora("make-model --preset tiny --vocab 1000 --seed 5 -t 2 --out " + two.path()).exit_code, 0);
  ASSERT_EQ(RunBora("make-model --preset tiny --vocab 1000 --seed 6 --out " + other.path()).exit_code, 0);
  std::string bytes = ReadAll(one.File("consolidated.safetensors"));
  EXPECT_EQ(bytes, ReadAll(two.File("consolidated.safetensors")));  // thread count does not matter
  EXPECT_NE(bytes, ReadAll(other.File("consolidated.safetensors")));
  EXPECT_EQ(ReadAll(one.File("params.json")), ReadAll(two.File("params.json")));
  nlohmann::json params = nlohmann::json::parse(ReadAll(one.File("params.json")));
  EXPECT_EQ(params["dim"], 256);
  EXPECT_EQ(params["n_layers"], 4);
  EXPECT_EQ(params["vocab_size"], 1000);
  EXPECT_EQ(params["rope_theta"], 1e6);
  CommandResult run = RunBora("generate --model " + one.path() + " --tokens 1,2,3 --max-tokens 5");
  EXPECT_EQ(run.exit_code, 0) << run.output;

  TempDir moe;
  ASSERT_EQ(RunBora("make-model --preset tiny --moe 4,2 --vocab 500 --sliding-window 16 --out " + moe.path()).exit_code, 0);
  params = nlohmann::json::parse(ReadAll(moe.File("params.json")));
  EXPECT_EQ(params["moe"]["num_experts"], 4);
  EXPECT_EQ(params["sliding_window"], 16);
  EXPECT_EQ(RunBora("generate --model " + moe.path() + " --tokens 7 --max-tokens 20").exit_code, 0);
}

TEST(CliTest, MakeModelTakesVocabularyFromTokenizer) {
  BORA_REQUIRE_SHARED(shared);
  TempDir dir;
  CommandResult run = RunBora("make-model --preset tiny --tokenizer " + shared + "/tokenizers/tokenizer.model.v1 --out " +
                              dir.path());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(fs::exists(dir.File("tokenizer.model.v1")));
  EXPECT_EQ(nlohmann::json::parse(ReadAll(dir.File("params.json")))["vocab_size"], 32000);
}

// Every stdout line of `bench --json` is one JSON object; the last one holds the results.
TEST(CliTest, BenchReportsRatesAsJsonLines) {
  BORA_REQUIRE_SHARED(shared);
  for (const char* dtype : {"", " --dtype q8", " --dtype q4"}) {
    CommandResult run = RunBora(std::string("bench --json -p 8 -n 4 -r 2 -t 1") + dtype + " --model " + shared +
                                "/reference-models/tiny-dense/mistral", true);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::istringstream lines(run.output);
    std::string line;
    nlohmann::json last;
    int count = 0;
    while (std::getline(lines, line)) {
      last = nlohmann::json::parse(line);  // throws (fails the test) on a non-JSON line
      ++count;
    }
    ASSERT_GE(count, 3) << run.output;  // loaded, 2 repetitions, result
    EXPECT_EQ(last["event"], "result");
    EXPECT_GT(last["pp_tok_s"].get<double>(), 0);
    EXPECT_GT(last["tg_tok_s"].get<double>(), 0);
    EXPECT_GT(last["model_bytes"].get<double>(), 0);
    EXPECT_GT(last["tg_bandwidth_gb_s"].get<double>(), 0);
    EXPECT_LE(last["pp_tok_s_min"].get<double>(), last["pp_tok_s"].get<double>());
    EXPECT_GE(last["tg_tok_s_max"].get<double>(), last["tg_tok_s"].get<double>());
    if (*dtype != 0) {
      EXPECT_EQ(last["dtype"], std::string(dtype).substr(9));
    }
  }
}

// `quantize` writes a folder that loads as it is; check-golden --dtype reports quality.
TEST(CliTest, QuantizeWritesALoadableFolder) {
  BORA_REQUIRE_SHARED(shared);
  TempDir out;
  CommandResult run = RunBora("quantize --dtype q8 -t 2 --model " + shared + "/reference-models/tiny-dense/mistral --out " +
                              out.path() + "/q8");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  CommandResult direct = RunBora("generate --tokens 1,2,3 --max-tokens 8 --dtype q8 --model " + shared +
                                 "/reference-models/tiny-dense/mistral", true);
  CommandResult packed = RunBora("generate --tokens 1,2,3 --max-tokens 8 --model " + out.path() + "/q8", true);
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
  EXPECT_EQ(direct.output, packed.output);
  EXPECT_NE(RunBora("quantize --dtype q5 --model x --out y").exit_code, 0);
  CommandResult quality = RunBora("check-golden --json --dtype q8 --layout mistral " + shared +
                                  "/reference-models/tiny-dense", true);
  nlohmann::json report = nlohmann::json::parse(quality.output);
  EXPECT_EQ(report["dtype"], "q8");
  EXPECT_EQ(report["results"].size(), 3u);
  for (const auto& row : report["results"]) {
    EXPECT_GT(row["top1_agreement"].get<double>(), 0.5);
    EXPECT_GT(row["rms_rel"].get<double>(), 0.0);  // quantization is not free
  }
}

// Runs `bora ARGS` with `input` on stdin and returns one parsed JSON value per output line.
std::vector<nlohmann::json> RunJsonLines(const std::string& arguments, const std::string& input,
                                         int* exit_code = nullptr) {
  TempDir folder;
  WriteFile(folder.File("input.jsonl"), input);
  CommandResult result = RunBora(arguments + " < " + folder.File("input.jsonl"));
  if (exit_code) *exit_code = result.exit_code;
  std::vector<nlohmann::json> lines;
  std::istringstream stream(result.output);
  std::string line;
  while (std::getline(stream, line)) {
    if (line.empty() || line[0] != '{') continue;  // skips --explain lines on stderr
    lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST(CliTest, TokenizeEncodesAndDecodesJsonLines) {
  BORA_REQUIRE_SHARED(shared);
  const std::string tekken = shared + "/tokenizers/tekken_240718-reconstructed.json";
  int exit_code = -1;
  auto encoded = RunJsonLines("tokenize --tokenizer " + tekken,
                              "{\"text\": \"Hello world\"}\nnot json\n{\"text\": \"[INST]\"}\n", &exit_code);
  EXPECT_EQ(exit_code, 0);
  ASSERT_EQ(encoded.size(), 3u);
  EXPECT_EQ(encoded[0]["ids"], nlohmann::json({22177, 4304}));
  EXPECT_TRUE(encoded[1].contains("error"));
  EXPECT_EQ(encoded[2]["ids"], nlohmann::json({1091, 3174, 3074, 1093}));  // text, not control id 3
  auto decoded = RunJsonLines("tokenize --decode --tokenizer " + tekken,
                              "{\"ids\": [22177, 4304]}\n{\"ids\": [999999999]}\n");
  ASSERT_EQ(decoded.size(), 2u);
  EXPECT_EQ(decoded[0]["text"], "Hello world");
  EXPECT_TRUE(decoded[1].contains("error"));
}

TEST(CliTest, RenderBuildsPromptsAndReportsErrorsPerLine) {
  BORA_REQUIRE_SHARED(shared);
  const std::string v3 = shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
  const std::string input =
      "{\"request\": {\"messages\": [{\"role\": \"system\", \"content\": \"SYSTEM\"}, "
      "{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, "
      "{\"role\": \"user\", \"content\": \"c\"}]}}\n"
      "{\"request\": {\"messages\": [{\"role\": \"assistant\", \"content\": \"b\"}]}}\n"
      "{\"request\": {\"prompt\": \"def f(\", \"suffix\": \"return a + b\"}}\n";
  int exit_code = -1;
  auto lines = RunJsonLines("render --tokenizer " + v3, input, &exit_code);
  EXPECT_EQ(exit_code, 0);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["ids"], nlohmann::json({1, 3, 1032, 4, 1055, 2, 3, 17889, 23294, 781, 781, 29485, 4}));
  EXPECT_EQ(lines[0]["text"], "<s>[INST]\u2581a[/INST]\u2581b</s>[INST]\u2581SYSTEM<0x0A><0x0A>c[/INST]");
  EXPECT_TRUE(lines[1].contains("error"));
  EXPECT_EQ(lines[2]["ids"], nlohmann::json({1, 13, 1575, 1032, 1416, 1055, 11, 1569, 1053, 29500}));
  // --version overrides the file's v3 and --explain says so.
  CommandResult explain = RunBora("render --explain --version v7 --tokenizer " + v3 + " < /dev/null");
  EXPECT_EQ(explain.exit_code, 0);
  EXPECT_NE(explain.output.find("instruct version v7"), std::string::npos) << explain.output;
  EXPECT_NE(RunBora("render --version v9 --tokenizer " + v3 + " < /dev/null").exit_code, 0);
}

// Text generation: the folder's tokenizer and instruct format, seeded sampling, stop strings,
// streamed stdout equal to the JSON text, greedy chat equal to greedy ids of the rendered prompt.
TEST(CliTest, GenerateTextSamplesReproduciblyAndStopsOnStopStrings) {
  BORA_REQUIRE_SHARED(shared);
  TempDir dir;
  const std::string v3 = shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
  ASSERT_EQ(RunBora("make-model --preset tiny --seed 5 --tokenizer " + v3 + " --out " + dir.path() + "/m").exit_code, 0);
  const std::string model = " --model " + dir.path() + "/m";
  auto json = [&](const std::string& arguments) {
    CommandResult run = RunBora("generate --json" + model + " " + arguments, true);
    EXPECT_EQ(run.exit_code, 0) << arguments << "\n" << run.output;
    return nlohmann::json::parse(run.output);
  };
  const nlohmann::json a = json("--prompt \"Once upon a time\" --seed 3 --temperature 1 --max-tokens 12");
  const nlohmann::json b = json("--prompt \"Once upon a time\" --seed 3 --temperature 1 --max-tokens 12");
  const nlohmann::json c = json("--prompt \"Once upon a time\" --seed 4 --temperature 1 --max-tokens 12");
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(a["text"], b["text"]);
  EXPECT_NE(a["tokens"], c["tokens"]);
  CommandResult streamed = RunBora("generate" + model + " --prompt \"Once upon a time\" --seed 3 --temperature 1 --max-tokens 12", true);
  EXPECT_EQ(streamed.output, a["text"].get<std::string>() + "\n");

  // Greedy chat = greedy continuation of the ids `render` builds for the same message.
  int exit_code = -1;
  auto rendered = RunJsonLines("render --tokenizer " + v3,
                               "{\"request\": {\"messages\": [{\"role\": \"user\", \"content\": \"Hello there\"}]}}\n",
                               &exit_code);
  ASSERT_EQ(rendered.size(), 1u);
  const nlohmann::json chat = json("--chat \"Hello there\" --temperature 0 --max-tokens 10");
  const nlohmann::json ids = json("--tokens " + Join(rendered[0]["ids"].get<std::vector<int>>(), ",") + " --max-tokens 10");
  const auto chat_tokens = chat["tokens"].get<std::vector<int>>();
  const auto id_tokens = ids["tokens"].get<std::vector<int>>();
  ASSERT_LE(chat_tokens.size(), id_tokens.size());
  EXPECT_TRUE(std::equal(chat_tokens.begin(), chat_tokens.end(), id_tokens.begin()));
  if (chat_tokens.size() < id_tokens.size()) {
    EXPECT_EQ(id_tokens[chat_tokens.size()], 2);  // stopped on EOS
  }

  // A stop string from the middle of the greedy text: output ends right before it, "stop".
  const nlohmann::json greedy = json("--prompt \"Once upon a time\" --temperature 0 --max-tokens 16");
  const std::string text = greedy["text"].get<std::string>();
  ASSERT_GE(text.size(), 12u);
  std::string stop = text.substr(6, 3);
  while (stop.find_first_of("\"\\$`") != std::string::npos || (static_cast<unsigned char>(stop[0]) & 0xC0) == 0x80) {
    stop = text.substr(text.find(stop) + 1, 3);  // keep the shell quoting and UTF-8 simple
  }
  const nlohmann::json stopped = json("--prompt \"Once upon a time\" --temperature 0 --max-tokens 16 --stop \"" + stop + "\"");
  EXPECT_EQ(stopped["finish_reason"], "stop");
  EXPECT_EQ(stopped["text"], text.substr(0, text.find(stop)));

  // Mode errors are one-line errors.
  CommandResult both = RunBora("generate" + model + " --prompt x --tokens 1");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.output.find("exactly one of"), std::string::npos) << both.output;
  CommandResult no_tokenizer = RunBora("generate --model " + shared + "/reference-models/tiny-dense/mistral --prompt x");
  EXPECT_NE(no_tokenizer.exit_code, 0);
  EXPECT_NE(no_tokenizer.output.find("no tokenizer file"), std::string::npos) << no_tokenizer.output;
}

// `--json-schema FILE` / `--json-object`: sampled output of a random model is valid JSON under
// the schema (bounded strings, so it ends with EOS); a bad schema is a one-line error.
TEST(CliTest, GenerateJsonSchemaConstrainsTheOutput) {
  BORA_REQUIRE_SHARED(shared);
  TempDir dir;
  const std::string v3 = shared + "/tokenizers/mistral_instruct_tokenizer_240323.model.v3";
  ASSERT_EQ(RunBora("make-model --preset tiny --seed 5 --tokenizer " + v3 + " --out " + dir.path() + "/m").exit_code, 0);
  const std::string model = " --model " + dir.path() + "/m";
  {
    std::ofstream schema(dir.path() + "/schema.json");
    schema << R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},)"
              R"("age":{"type":"integer","minimum":0,"maximum":150},"ok":{"type":"boolean"}},)"
              R"("required":["name","age","ok"],"additionalProperties":false})";
  }
  for (int seed = 1; seed <= 3; ++seed) {
    CommandResult run = RunBora("generate --json" + model + " --chat \"Describe a person\" --temperature 1 --seed " +
                                    std::to_string(seed) + " --max-tokens 200 --json-schema " + dir.path() + "/schema.json",
                                true);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const nlohmann::json out = nlohmann::json::parse(run.output);
    EXPECT_EQ(out["finish_reason"], "stop") << out.dump();
    const nlohmann::json value = nlohmann::json::parse(out["text"].get<std::string>());
    ASSERT_TRUE(value.is_object()) << out.dump();
    EXPECT_EQ(value.size(), 3u);
    EXPECT_TRUE(value["name"].is_string() && value["name"].get<std::string>().size() <= 12 * 4);
    EXPECT_TRUE(value["age"].is_number_integer());
    EXPECT_TRUE(value["ok"].is_boolean());
  }
  CommandResult object = RunBora("generate --json" + model + " --prompt x --seed 2 --temperature 1 --max-tokens 64 --json-object", true);
  ASSERT_EQ(object.exit_code, 0) << object.output;
  const nlohmann::json out = nlohmann::json::parse(object.output);
  const std::string text = out["text"].get<std::string>();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.find_first_not_of(" \t\n\r"), text.find('{')) << text;  // an object, from its start

  {
    std::ofstream bad(dir.path() + "/bad.json");
    bad << R"({"type":"string","pattern":"^[a-z]+$"})";
  }
  CommandResult refused = RunBora("generate" + model + " --prompt x --json-schema " + dir.path() + "/bad.json");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("pattern"), std::string::npos) << refused.output;
}

// `bench --concurrent`: one JSON object per concurrency level through the real engine.
TEST(CliTest, BenchConcurrentReportsAggregateRatesPerLevel) {
  BORA_REQUIRE_SHARED(shared);
  CommandResult run = RunBora("bench --json --concurrent 1,3 -p 8 -n 6 -r 1 -t 2 --model " + shared +
                                  "/reference-models/tiny-dense/mistral",
                              true);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::istringstream lines(run.output);
  std::string line;
  std::vector<nlohmann::json> levels;
  while (std::getline(lines, line)) levels.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(levels.size(), 2u) << run.output;
  EXPECT_EQ(levels[0]["concurrent"], 1);
  EXPECT_EQ(levels[1]["concurrent"], 3);
  for (const auto& level : levels) {
    EXPECT_GT(level["aggregate_tg_tok_s"].get<double>(), 0);
    EXPECT_GT(level["ttft_ms_p50"].get<double>(), 0);
  }
  EXPECT_TRUE(levels[1].contains("speedup_vs_1"));
  EXPECT_NE(RunBora("bench --concurrent 0 --model " + shared + "/reference-models/tiny-dense/mistral").exit_code, 0);
}

}  // namespace
}  // namespace bora::testing
