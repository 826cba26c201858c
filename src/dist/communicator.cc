// The collectives shared by every communicator: ordered all-reduce sums and the start agreement.
#include "dist/communicator.h"

#include <cstring>

#include "base/error.h"

namespace bora::dist {

void Communicator::AllReduceSum(std::span<float> data, std::vector<float>& scratch) {
  const size_t count = data.size();
  if (size() == 1 || count == 0) return;
  if (scratch.size() < count * size()) scratch.resize(count * size());
  AllGather(data, std::span<float>(scratch.data(), count * size()));
  // Rank order, element by element: every rank and the in-process emulation add identically.
  std::memcpy(data.data(), scratch.data(), sizeof(float) * count);
  for (int r = 1; r < size(); ++r) {
    const float* part = scratch.data() + r * count;
    for (size_t i = 0; i < count; ++i) data[i] += part[i];
  }
}

void Communicator::AllReduceSum(std::span<double> data) {
  if (size() == 1 || data.empty()) return;
  std::vector<uint8_t> mine(data.size() * sizeof(double));
  std::memcpy(mine.data(), data.data(), mine.size());
  const std::vector<std::vector<uint8_t>> all = AllGatherBytes(mine);
  for (size_t i = 0; i < data.size(); ++i) data[i] = 0;
  for (const std::vector<uint8_t>& part : all) {
    if (part.size() != mine.size()) Abort("ranks disagree on the size of a gradient all-reduce");
    const auto* values = reinterpret_cast<const double*>(part.data());
    for (size_t i = 0; i < data.size(); ++i) data[i] += values[i];
  }
}

void AgreeToStart(Communicator& comm, bool ok, const std::string& error, const std::string& identity) {
  std::string mine = std::string(ok ? "1" : "0") + identity + "\n" + error;
  const std::vector<std::vector<uint8_t>> all = comm.AllGatherBytes(std::vector<uint8_t>(mine.begin(), mine.end()));
  std::string failure, differ;
  std::string first_identity;
  for (int r = 0; r < static_cast<int>(all.size()); ++r) {
    const std::string text(all[r].begin(), all[r].end());
    const size_t newline = text.find('\n');
    if (text.empty() || text[0] != '1') {
      if (failure.empty()) failure = "rank " + std::to_string(r) + ": " + text.substr(newline + 1);
      continue;
    }
    const std::string id = text.substr(1, newline - 1);
    if (r == 0) first_identity = id;
    if (id != first_identity) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!failure.empty()) {
    // Every rank throws: rank 0 prints the first failure, the others exit quietly.
    throw GroupError(failure);
  }
  if (!differ.empty()) {
    throw GroupError("rank " + differ + " holds another model than rank 0 (params or weight file sizes differ);" +
                          " give every host the same model folder");
  }
}

}  // namespace bora::dist
