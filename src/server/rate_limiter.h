// Per-client request budgets (rule S6): a token bucket of requests per minute and a cap on
// requests in flight, each client (an API key, or an address when there are no keys) on its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace bora::server {

struct RateLimits {
  double requests_per_minute = 0;  // bucket refill rate and size; 0: unlimited
  int max_concurrent = 0;          // requests in flight per client; 0: unlimited
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Held while a request runs (a streamed one until its last byte); releasing it frees the
  // client's in-flight slot.
  class Ticket {
   public:
    Ticket(RateLimiter* limiter, std::string client);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    RateLimiter* limiter_;
    std::string client_;
  };

  struct Decision {
    std::shared_ptr<Ticket> ticket;  // null when refused
    int retry_after_seconds = 0;     // when refused: seconds until a request would be admitted
    std::string reason;              // when refused: for the 429 message
  };

  explicit RateLimiter(RateLimits limits) : limits_(limits) {}
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  bool enabled() const { return limits_.requests_per_minute > 0 || limits_.max_concurrent > 0; }

  // Takes one request from `client`'s bucket and an in-flight slot, or says why not.
  Decision Admit(const std::string& client, Clock::time_point now = Clock::now());

  // Clients remembered (idle ones with a full bucket are forgotten); for tests.
  size_t tracked_clients() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point refilled;
    int in_flight = 0;
  };
  void Release(const std::string& client);
  void ForgetIdle(Clock::time_point now);

  const RateLimits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  Clock::time_point last_sweep_{};
};

}  // namespace bora::server
