// In-process communicators: every collective is "write my slot, wait for all, read the slots".
#include "dist/local_group.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace bora::dist {

class LocalGroup::Member final : public Communicator {
 public:
  Member(std::shared_ptr<Shared> shared, int rank, int size) : shared_(std::move(shared)), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void Broadcast(std::vector<uint8_t>& bytes, bool) override {
    Exchange(rank_ == 0 ? bytes : std::vector<uint8_t>(), [&](const std::vector<std::vector<uint8_t>>& slots) {
      if (rank_ != 0) bytes = slots[0];
    });
  }

  void AllGather(std::span<const float> local, std::span<float> all) override {
    Exchange(AsBytes(local), [&](const std::vector<std::vector<uint8_t>>& slots) {
      size_t at = 0;
      for (const auto& slot : slots) {
        std::memcpy(all.data() + at, slot.data(), slot.size());
        at += slot.size() / sizeof(float);
      }
    });
  }

  void Gather(std::span<const float> local, std::span<float> all) override {
    Exchange(AsBytes(local), [&](const std::vector<std::vector<uint8_t>>& slots) {
      if (rank_ != 0) return;
      size_t at = 0;
      for (const auto& slot : slots) {
        std::memcpy(all.data() + at, slot.data(), slot.size());
        at += slot.size() / sizeof(float);
      }
    });
  }

  std::vector<std::vector<uint8_t>> AllGatherBytes(const std::vector<uint8_t>& mine) override {
    std::vector<std::vector<uint8_t>> out;
    Exchange(mine, [&](const std::vector<std::vector<uint8_t>>& slots) { out = slots; });
    return out;
  }

  [[noreturn]] void Abort(const std::string& message) override {
    std::fprintf(stderr, "bora: rank %d: %s\n", rank_, message.c_str());
    std::abort();
  }

 private:
  static std::vector<uint8_t> AsBytes(std::span<const float> values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }

  // Two barriers: all slots written before anyone reads, all reads done before the next write.
  template <typename Read>
  void Exchange(std::vector<uint8_t> mine, Read read) {
    const auto start = std::chrono::steady_clock::now();
    stats_.messages += 1;
    stats_.bytes += static_cast<int64_t>(mine.size());
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->slots[rank_] = std::move(mine);
    Barrier(lock);
    read(shared_->slots);
    Barrier(lock);
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  void Barrier(std::unique_lock<std::mutex>& lock) {
    const int64_t generation = shared_->generation;
    if (++shared_->arrived == size_) {
      shared_->arrived = 0;
      ++shared_->generation;
      shared_->changed.notify_all();
      return;
    }
    shared_->changed.wait(lock, [&] { return shared_->generation != generation; });
  }

  std::shared_ptr<Shared> shared_;
  int rank_;
  int size_;
};

LocalGroup::LocalGroup(int size) : shared_(std::make_shared<Shared>()) {
  if (size < 1) throw InvalidArgument("a group needs at least one rank");
  shared_->slots.resize(size);
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<Member>(shared_, r, size));
}

}  // namespace bora::dist
