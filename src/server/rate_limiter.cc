// Token buckets and in-flight counts per client.
#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace bora::server {
namespace {

// Sweeping idle clients at most this often keeps Admit O(1) amortised.
constexpr std::chrono::seconds kSweepInterval{60};
constexpr size_t kSweepAbove = 1024;

}  // namespace

RateLimiter::Ticket::Ticket(RateLimiter* limiter, std::string client)
    : limiter_(limiter), client_(std::move(client)) {}

RateLimiter::Ticket::~Ticket() { limiter_->Release(client_); }

RateLimiter::Decision RateLimiter::Admit(const std::string& client, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  ForgetIdle(now);
  const double capacity = limits_.requests_per_minute;
  auto [it, inserted] = buckets_.try_emplace(client);
  Bucket& bucket = it->second;
  if (inserted) {
    bucket.tokens = capacity;
    bucket.refilled = now;
  }
  Decision decision;
  if (capacity > 0) {
    const double elapsed = std::chrono::duration<double>(now - bucket.refilled).count();
    if (elapsed > 0) {
      bucket.tokens = std::min(capacity, bucket.tokens + elapsed * capacity / 60.0);
      bucket.refilled = now;
    }
    if (bucket.tokens < 1.0) {
      const double wait = (1.0 - bucket.tokens) * 60.0 / capacity;
      decision.retry_after_seconds = std::max(1, static_cast<int>(std::ceil(wait)));
      decision.reason = "rate limit reached: " + std::to_string(static_cast<int64_t>(capacity)) +
                        " requests per minute for this key";
      return decision;
    }
  }
  if (limits_.max_concurrent > 0 && bucket.in_flight >= limits_.max_concurrent) {
    decision.retry_after_seconds = 1;
    decision.reason = "too many requests at once: " + std::to_string(limits_.max_concurrent) +
                      " in flight for this key";
    return decision;
  }
  if (capacity > 0) bucket.tokens -= 1.0;
  ++bucket.in_flight;
  decision.ticket = std::make_shared<Ticket>(this, client);
  return decision;
}

void RateLimiter::Release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = buckets_.find(client);
  if (it != buckets_.end() && it->second.in_flight > 0) --it->second.in_flight;
}

void RateLimiter::ForgetIdle(Clock::time_point now) {
  if (buckets_.size() <= kSweepAbove || now - last_sweep_ < kSweepInterval) return;
  last_sweep_ = now;
  const double capacity = limits_.requests_per_minute;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& bucket = it->second;
    const double elapsed = std::chrono::duration<double>(now - bucket.refilled).count();
    const bool full = capacity <= 0 || bucket.tokens + elapsed * capacity / 60.0 >= capacity;
    it = bucket.in_flight == 0 && full ? buckets_.erase(it) : std::next(it);
  }
}

size_t RateLimiter::tracked_clients() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buckets_.size();
}

}  // namespace bora::server
