// `bora serve --model [NAME=]DIR ...`: the Mistral and OpenAI HTTP APIs over the serving engine,
// on loopback by default, until SIGINT/SIGTERM.
#include <malloc.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <map>
#include <thread>

#include "base/error.h"
#include "commands.h"
#include "dist/sharded_model.h"
#include "dist/world.h"
#include "server/finetune/distributed_jobs.h"
#include "kv_flags.h"
#include "model/weights.h"
#include "server/http_server.h"
#include "server/image_fetch.h"

namespace bora::app {
namespace {

namespace fs = std::filesystem;

struct ServeFlags {
  std::vector<std::string> models;
  std::vector<std::string> loras;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  std::vector<std::string> admin_keys;
  std::vector<std::string> allowed_hosts;
  bool public_models = false;
  double rate_limit = 0;
  int max_concurrent_per_key = 0;
  int parallel = 8;
  int max_queue = 0;  // 0: 4x parallel
  int64_t context = 4096;
  std::string dtype;
  int threads = 0;
  KvFlags kv;
  std::string max_body = "8M";
  int max_images = 8;
  std::string max_image_bytes = "20M";
  int64_t max_image_pixels = 25'000'000;
  bool allow_image_urls = false;
  bool image_urls_private = false;
  int request_timeout = 30;
  std::vector<std::string> cors;
  bool insecure_no_auth = false;
  std::string state_dir;  // empty: the default below
  std::string max_upload = "512M";
  std::string upload_quota = "10G";
  int train_threads = 0;
};

// $XDG_DATA_HOME/bora, else ~/.local/share/bora; empty when neither is known.
std::string DefaultStateDir() {
  if (const char* data = std::getenv("XDG_DATA_HOME"); data != nullptr && data[0] == '/')
    return std::string(data) + "/bora";
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0')
    return std::string(home) + "/.local/share/bora";
  return "";
}

int RunServe(const ServeFlags& flags) {
  // Signals go to one waiting thread (not an async handler), which stops the server cleanly;
  // blocked before any thread starts (engines, HTTP workers), so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a write to a closed socket must never end the process
#ifdef __GLIBC__
  // The HTTP worker threads each get a glibc arena, and glibc raises its mmap and trim
  // thresholds (up to 32 and 64 MiB) whenever a large block is freed: after that, the scratch
  // memory of tokenizing a long prompt stays resident in every arena that met one (measured:
  // +7 MB per 200 KB prompt, per worker thread). A fixed threshold keeps large blocks mmapped,
  // returned on free, and arena tops trimmed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif

  server::ServerOptions options;
  options.host = flags.host;
  options.port = flags.port;
  options.api_keys = flags.api_keys;
  if (!flags.api_key_file.empty()) {
    std::ifstream in(flags.api_key_file);
    if (!in) throw IoError(flags.api_key_file + ": cannot read the API key file");
    struct stat info {};
    if (::stat(flags.api_key_file.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
      std::fprintf(stderr, "bora serve: warning: %s is readable by other users; chmod 600 it\n",
                   flags.api_key_file.c_str());
    }
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') options.api_keys.push_back(line);
    }
  }
  options.admin_api_keys = flags.admin_keys;
  options.allowed_hosts = flags.allowed_hosts;
  options.public_models = flags.public_models;
  options.rate_limits.requests_per_minute = flags.rate_limit;
  options.rate_limits.max_concurrent = flags.max_concurrent_per_key;
  if (!server::IsLoopbackHost(flags.host) && options.api_keys.empty() &&
      options.admin_api_keys.empty() && !flags.insecure_no_auth) {
    throw InvalidArgument("--host " + flags.host +
                          " exposes the server beyond this machine without an API key; "
                          "give --api-key/--api-key-file, or --insecure-no-auth to do it anyway");
  }
  options.max_body_bytes = ParseByteSize(flags.max_body);
  options.read_timeout_seconds = flags.request_timeout;
  options.cors_origins = flags.cors;
  options.max_upload_bytes = ParseByteSize(flags.max_upload);
  options.upload_quota_bytes = static_cast<int64_t>(ParseByteSize(flags.upload_quota));
  options.train_threads = flags.train_threads > 0 ? flags.train_threads : flags.threads;
  options.state_dir = flags.state_dir == "none" ? ""
                      : flags.state_dir.empty() ? DefaultStateDir()
                                                : flags.state_dir;
  if (dist::World::Get().rank() != 0) {
    // ranks >= 1 run no HTTP server: nothing to say about files and jobs
  } else if (options.state_dir.empty()) {
    std::fprintf(stderr, "bora serve: no state folder: /v1/files and /v1/fine_tuning are off\n");
  } else {
    std::fprintf(stderr, "bora serve: files and fine-tuning jobs in %s\n",
                 options.state_dir.c_str());
  }

  model::LoadOptions load;
  load.context = flags.context;
  load.threads = flags.threads;
  if (!flags.dtype.empty()) load.dtype = model::ParseWeightDType(flags.dtype);
  runtime::EngineOptions engine;
  engine.max_sequences = flags.parallel;
  engine.max_queued = flags.max_queue > 0 ? flags.max_queue : 4 * flags.parallel;
  ApplyKvFlags(flags.kv, engine);

  dist::World& world = dist::World::Get();
  if (world.size() > 1 && flags.models.size() > 1 && !world.concurrent_comms()) {
    throw dist::GroupError("this MPI library serves one --model per group (no MPI_THREAD_MULTIPLE); start one mpirun per model");
  }
  // "--model [NAME=]DIR": the folder and the id it is served under (a GGUF file: its stem).
  auto parse_model = [](const std::string& spec) {
    const size_t equals = spec.find('=');
    std::string dir = equals == std::string::npos ? spec : spec.substr(equals + 1);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const fs::path path(dir);
    const std::string id = equals != std::string::npos ? spec.substr(0, equals)
                           : path.extension() == ".gguf" ? path.stem().string()
                                                         : path.filename().string();
    return std::pair<std::string, std::string>(id, dir);
  };
  const int train_threads = flags.train_threads > 0 ? flags.train_threads : flags.threads;
  if (world.rank() != 0) {
    // Ranks >= 1: load this rank's part of every model, in rank 0's order, and follow each
    // model's steps on a thread of its own, and the fine-tuning jobs on another, until rank 0
    // stops.
    std::vector<dist::ShardedModel> shards;
    std::map<std::string, std::string> model_dirs;
    for (const std::string& spec : flags.models) {
      const auto [id, dir] = parse_model(spec);
      shards.push_back(dist::LoadShardedModel(dir, load));
      model_dirs[id] = dir;
    }
    // Jobs train on every rank only when MPI lets two threads talk at once (engine and trainer).
    std::unique_ptr<dist::Communicator> jobs = world.concurrent_comms() ? world.NewComm() : nullptr;
    std::vector<std::thread> followers;
    for (dist::ShardedModel& shard : shards) {
      followers.emplace_back([&shard] { shard.group->FollowSteps(); });
    }
    if (jobs) followers.emplace_back([&] { server::FollowJobs(*jobs, model_dirs, train_threads); });
    for (std::thread& follower : followers) follower.join();
    return 0;
  }
  std::vector<std::unique_ptr<server::ServedModel>> models;
  for (const std::string& spec : flags.models) {
    // A GGUF file is served under its name without the extension ("Ministral-3-8B-Q4_K_M").
    const auto [id, dir] = parse_model(spec);
    if (id.empty()) throw InvalidArgument("--model " + spec + ": empty model name");
    for (const auto& loaded : models) {
      if (loaded->id() == id)
        throw InvalidArgument("two models are named " + id + "; use --model NAME=DIR");
    }
    std::fprintf(stderr, "bora serve: loading %s from %s\n", id.c_str(), dir.c_str());
    models.push_back(server::ServedModel::Load(id, dir, load, engine));
    tokenizer::ImageRequestLimits image_limits;
    image_limits.max_images = flags.max_images;
    image_limits.image.max_bytes = static_cast<int64_t>(ParseByteSize(flags.max_image_bytes));
    image_limits.image.max_pixels = flags.max_image_pixels;
    image_limits.max_total_pixels = std::max<int64_t>(4 * flags.max_image_pixels, 1);
    if (flags.allow_image_urls) {
      server::ImageFetchOptions fetch;
      fetch.max_bytes = image_limits.image.max_bytes;
      fetch.allow_private = flags.image_urls_private;
      image_limits.fetch = [fetch](const std::string& url) { return server::FetchImageUrl(url, fetch); };
    }
    models.back()->set_image_limits(image_limits);
  }
  // Adapters: models of their own that run on their base model's engine.
  for (const std::string& spec : flags.loras) {
    const size_t equals = spec.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == spec.size()) {
      throw InvalidArgument("--lora " + spec + ": expected NAME=DIR or BASE:NAME=DIR");
    }
    const std::string left = spec.substr(0, equals);
    std::string dir = spec.substr(equals + 1);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const size_t colon = left.rfind(':');
    const std::string base_id = colon == std::string::npos ? "" : left.substr(0, colon);
    const std::string name = colon == std::string::npos ? left : left.substr(colon + 1);
    if (name.empty()) throw InvalidArgument("--lora " + spec + ": empty adapter name");
    server::ServedModel* base = nullptr;
    for (const auto& loaded : models) {
      if (loaded->Answers(name)) {
        throw InvalidArgument("--lora " + spec + ": a model named " + name + " is already served");
      }
      if (!loaded->is_adapter() && (base_id.empty() || loaded->id() == base_id)) {
        if (base != nullptr && base_id.empty()) {
          throw InvalidArgument("--lora " + spec +
                                ": several models are served; name the base: --lora BASE:" + name +
                                "=" + dir);
        }
        base = loaded.get();
      }
    }
    if (base == nullptr) throw InvalidArgument("--lora " + spec + ": no --model named " + base_id);
    std::fprintf(stderr, "bora serve: loading LoRA adapter %s from %s on %s\n", name.c_str(),
                 dir.c_str(), base->id().c_str());
    models.push_back(server::ServedModel::LoadAdapter(name, dir, *base));
  }

  // Under mpirun: fine-tuning jobs train data parallel on a communicator of their own.
  std::unique_ptr<dist::Communicator> jobs_comm;
  if (world.size() > 1 && world.concurrent_comms()) jobs_comm = world.NewComm();
  options.training_comm = jobs_comm.get();
  server::HttpServer http(std::move(models), options);
  const int port = http.Bind();
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::fprintf(stderr, "bora serve: stopping (signal %d)\n", signal);
    // Under mpirun, SIGTERM is followed by SIGKILL one second later: end what runs with an error
    // now, so clients get an answer, and the ranks can stop together. Alone: drain.
    if (dist::World::Get().size() > 1) http.AbortInFlight("the server is stopping (signal " + std::to_string(signal) + ")");
    http.Stop();
  });
  std::fprintf(stderr, "bora serve: listening on http://%s:%d (web chat at /, API under /v1)\n",
               options.host.c_str(), port);
  std::fflush(stderr);
  http.Serve();
  pthread_kill(waiter.native_handle(), SIGTERM);  // if the server stopped on its own
  waiter.join();  // http.Stop() has stopped the fine-tuning thread too
  if (jobs_comm) server::SendEndOfJobs(*jobs_comm);
  return 0;
}

}  // namespace

Command RegisterServe(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* sub = app.add_subcommand(
      "serve",
      "Serve models over HTTP: the Mistral API and the OpenAI API (chat, FIM, completions,\n"
      "embeddings, models) for the official SDKs, /health, /metrics and a web chat page at /.\n"
      "A request without temperature gets the folder's generation_config.json value, else 0.7.\n"
      "Example: bora serve --model small=models/mistral-small --port 8080 --api-key secret");
  sub->add_option("--model", flags->models,
                  "[NAME=]DIR or [NAME=]FILE.gguf, repeatable; the id is NAME, the folder's name or the file's name without .gguf")
      ->required();
  sub->add_option("--lora", flags->loras,
                  "[BASE:]NAME=DIR, repeatable: serve a LoRA adapter folder as model NAME (also "
                  "ft:BASE:NAME) on the base model BASE (needed when several --model are given)");
  sub->add_option("--host", flags->host, "Address to bind (non-loopback needs an API key)")
      ->capture_default_str();
  sub->add_option("--port", flags->port, "Port (0: any free port, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--api-key", flags->api_keys,
                  "Accepted bearer key, repeatable (default: no auth)");
  sub->add_option("--api-key-file", flags->api_key_file, "File with one accepted key per line");
  sub->add_option("--admin-key", flags->admin_keys,
                  "Key for /v1/files and /v1/fine_tuning, repeatable (default: any --api-key)");
  sub->add_flag("--insecure-no-auth", flags->insecure_no_auth,
                "Allow a non-loopback --host without keys");
  sub->add_option("--allowed-host", flags->allowed_hosts,
                  "Host header name accepted besides localhost/127.0.0.1/[::1] when bound to "
                  "loopback (e.g. behind a proxy), repeatable");
  sub->add_flag("--public-models", flags->public_models, "Answer GET /v1/models without a key");
  sub->add_option("--rate-limit", flags->rate_limit,
                  "Requests per minute per key (per address without keys); 429 beyond")
      ->check(CLI::Range(0.0, 1e9));
  sub->add_option("--max-concurrent-per-key", flags->max_concurrent_per_key,
                  "Requests in flight per key (per address without keys); 429 beyond")
      ->check(CLI::Range(0, 1000000));
  sub->add_option("--parallel", flags->parallel, "Sequences decoded together per model")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_option("--max-queue", flags->max_queue,
                  "Requests waiting beyond that get 429 (default 4x --parallel)")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--ctx", flags->context, "Context length per sequence (capped by the model)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  sub->add_option("--dtype", flags->dtype,
                  "Convert weights at load: f32, bf16, q8 or q4 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "q8", "q4"}));
  sub->add_option("-t,--threads", flags->threads, "Compute threads (default: all CPUs available)")
      ->check(CLI::Range(0, 1024));
  AddKvFlags(sub, &flags->kv);
  sub->add_option("--max-body", flags->max_body, "Largest request body (413 above)")
      ->capture_default_str();
  sub->add_option("--max-images", flags->max_images, "Images per chat request (400 above)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  sub->add_option("--max-image-bytes", flags->max_image_bytes, "Largest encoded image (400 above)")
      ->capture_default_str();
  sub->add_option("--max-image-pixels", flags->max_image_pixels,
                  "Most pixels an image may declare (width x height; 400 above, checked before decoding); "
                  "the images of one request may hold 4x that together")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32))
      ->capture_default_str();
  sub->add_flag("--allow-image-urls", flags->allow_image_urls,
                "Fetch http(s) image URLs in chat requests (public addresses only, 3 redirects, 10 s, "
                "--max-image-bytes); without it only data: URLs are read");
  sub->add_flag("--image-urls-private", flags->image_urls_private,
                "With --allow-image-urls: also fetch from loopback and private networks (trusted networks only)");
  sub->add_option("--request-timeout", flags->request_timeout,
                  "Seconds a client may stay silent while sending")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sub->add_option("--cors", flags->cors, "Allowed browser origin, repeatable (* for any)");
  sub->add_option("--state-dir", flags->state_dir,
                  "Folder for uploaded files, fine-tuning jobs and their adapters, kept across "
                  "restarts (default $XDG_DATA_HOME/bora or ~/.local/share/bora; none: off)");
  sub->add_option("--max-upload", flags->max_upload, "Largest file upload to /v1/files")
      ->capture_default_str();
  sub->add_option("--upload-quota", flags->upload_quota,
                  "Stored files per API key (0: no quota); 403 beyond")
      ->capture_default_str();
  sub->add_option("--train-threads", flags->train_threads,
                  "Threads for fine-tuning jobs (default: as -t)")
      ->check(CLI::Range(0, 1024));
  return {sub, [flags] { return RunServe(*flags); }};
}

}  // namespace bora::app
