// Prometheus metrics of the server: requests by route and status, tokens in and out, latency
// histograms (time to first token, time per output token), and engine gauges per model.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bora::server {

class ServedModel;

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void Observe(double value);
  // Prometheus text lines for `name` (cumulative buckets, sum, count).
  std::string Render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, last one +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void CountRequest(const std::string& route, int status);
  void AddTokens(int64_t prompt, int64_t completion);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveTimePerOutputToken(double seconds);
  // The exposition text, with each model's engine counters as gauges.
  std::string Render(const std::vector<ServedModel*>& models);

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t completion_tokens_ = 0;
  Histogram ttft_;
  Histogram tpot_;
};

}  // namespace bora::server
