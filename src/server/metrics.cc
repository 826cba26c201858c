// Prometheus text exposition of the server's counters, histograms and engine gauges.
#include "server/metrics.h"

#include <cstdio>

#include "server/served_model.h"

namespace bora::server {
namespace {

std::string Number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

// Label values as Prometheus escapes them.
std::string Label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Histogram::Observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::Render(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + Number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + Number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
  return out;
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      tpot_({0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2}) {}

void Metrics::CountRequest(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::AddTokens(int64_t prompt, int64_t completion) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  completion_tokens_ += static_cast<uint64_t>(completion);
}

void Metrics::ObserveTimeToFirstToken(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.Observe(seconds);
}

void Metrics::ObserveTimePerOutputToken(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  tpot_.Observe(seconds);
}

std::string Metrics::Render(const std::vector<ServedModel*>& models) {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    out +=
        "# HELP bora_http_requests_total HTTP requests by route and status.\n"
        "# TYPE bora_http_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      out += "bora_http_requests_total{route=\"" + Label(key.first) + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }
    out +=
        "# HELP bora_prompt_tokens_total Prompt tokens of finished requests.\n"
        "# TYPE bora_prompt_tokens_total counter\nbora_prompt_tokens_total " +
        std::to_string(prompt_tokens_) + "\n";
    out +=
        "# HELP bora_completion_tokens_total Generated tokens of finished requests.\n"
        "# TYPE bora_completion_tokens_total counter\nbora_completion_tokens_total " +
        std::to_string(completion_tokens_) + "\n";
    out += ttft_.Render("bora_time_to_first_token_seconds", "Time from request to first token.");
    out += tpot_.Render("bora_time_per_output_token_seconds",
                        "Time between output tokens of a stream.");
  }
  struct Gauge {
    const char* name;
    const char* help;
    double (*value)(const runtime::EngineCounters&);
  };
  const Gauge gauges[] = {
      {"bora_queue_depth", "Requests waiting for a sequence slot.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.queued); }},
      {"bora_running_sequences", "Sequences in the running batch.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.running); }},
      {"bora_kv_blocks_used", "KV blocks referenced by running sequences.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.kv_blocks_used); }},
      {"bora_kv_blocks_total", "KV blocks in the pool.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.kv_blocks_total); }},
      {"bora_kv_usage_ratio", "Share of the KV pool in use.",
       [](const runtime::EngineCounters& c) {
         return c.kv_blocks_total > 0 ? static_cast<double>(c.kv_blocks_used) / c.kv_blocks_total
                                      : 0.0;
       }},
      {"bora_prefix_cache_hit_ratio",
       "Prompt blocks found in the prefix cache over those looked up.",
       [](const runtime::EngineCounters& c) {
         const double looked =
             static_cast<double>(c.pool.prefix_hit_blocks + c.pool.prefix_miss_blocks);
         return looked > 0 ? c.pool.prefix_hit_blocks / looked : 0.0;
       }},
      {"bora_prefix_cache_hit_tokens", "Prompt tokens served from the prefix cache.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.prefix_hit_tokens); }},
      {"bora_preemptions", "Sequences preempted for lack of KV blocks.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.preemptions); }},
      {"bora_images_encoded", "Images run through the vision encoder.",
       [](const runtime::EngineCounters& c) { return static_cast<double>(c.images); }},
  };
  std::vector<runtime::EngineCounters> counters;
  for (ServedModel* model : models) counters.push_back(model->engine().counters());
  for (const Gauge& gauge : gauges) {
    out += std::string("# HELP ") + gauge.name + " " + gauge.help + "\n# TYPE " + gauge.name +
           " gauge\n";
    for (size_t i = 0; i < models.size(); ++i) {
      out += std::string(gauge.name) + "{model=\"" + Label(models[i]->id()) + "\"} " +
             Number(gauge.value(counters[i])) + "\n";
    }
  }
  return out;
}

}  // namespace bora::server
