// Byte-rank hash map and heap-driven BPE merging with lazy invalidation of stale candidates.
#include "tokenizer/bpe_merge.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/error.h"

namespace bora::tokenizer {
namespace {

// 64-bit hash of a short byte string: 8-byte words folded in with multiply-xorshift rounds
// (splitmix64 constants). Not cryptographic; the table only needs a good spread.
uint64_t HashBytes(std::string_view bytes) {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ (bytes.size() * 0xFF51AFD7ED558CCDull);
  const char* data = bytes.data();
  size_t remaining = bytes.size();
  while (remaining >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    hash = (hash ^ word) * 0xBF58476D1CE4E5B9ull;
    hash ^= hash >> 29;
    data += 8;
    remaining -= 8;
  }
  if (remaining > 0) {
    // 1..7 tail bytes without a variable-length copy: two overlapping 4-byte loads, or the
    // first, middle and last byte (the length is already in the seed).
    uint64_t word;
    if (remaining >= 4) {
      uint32_t low;
      uint32_t high;
      std::memcpy(&low, data, 4);
      std::memcpy(&high, data + remaining - 4, 4);
      word = (uint64_t{high} << 32) | low;
    } else {
      word = (uint64_t{static_cast<uint8_t>(data[0])} << 16) |
             (uint64_t{static_cast<uint8_t>(data[remaining / 2])} << 8) |
             static_cast<uint8_t>(data[remaining - 1]);
    }
    hash = (hash ^ word) * 0x94D049BB133111EBull;
    hash ^= hash >> 31;
  }
  hash *= 0xD6E8FEB86659FD93ull;
  hash ^= hash >> 32;
  return hash;
}

// Smallest power of two >= 2 * count, at least 16: load factor at most one half.
size_t TableSizeFor(size_t count) {
  size_t size = 16;
  while (size < 2 * count) size *= 2;
  return size;
}

// Orders the candidate heap as a min-heap on (rank, left offset). A function object rather than
// a function pointer, so that the heap algorithms inline it.
struct LaterCandidate {
  bool operator()(const BpeWorkspace::Candidate& a, const BpeWorkspace::Candidate& b) const {
    return a.key > b.key;
  }
};

}  // namespace

void ByteRankMap::Reserve(size_t count, size_t total_bytes) {
  arena_.reserve(total_bytes);
  offsets_.reserve(count + 1);
  if (TableSizeFor(count) > slots_.size()) {
    slots_.assign(TableSizeFor(count), Slot{-1, 0});
    for (int32_t rank = 0; rank < size(); ++rank) Place(rank, HashBytes(Bytes(rank)));
  }
}

void ByteRankMap::Grow() {
  slots_.assign(std::max<size_t>(16, slots_.size() * 2), Slot{-1, 0});
  for (int32_t rank = 0; rank < size(); ++rank) Place(rank, HashBytes(Bytes(rank)));
}

void ByteRankMap::Place(int32_t rank, uint64_t hash) {
  const size_t mask = slots_.size() - 1;
  size_t index = hash & mask;
  while (slots_[index].rank >= 0) index = (index + 1) & mask;
  slots_[index] = Slot{rank, static_cast<uint32_t>(hash >> 32)};
}

int32_t ByteRankMap::Add(std::string_view bytes) {
  if (Find(bytes) >= 0) return -1;
  if (size() == std::numeric_limits<int32_t>::max()) {
    throw ResourceExhausted("byte rank map: more than 2^31 - 1 entries");
  }
  if (2 * (static_cast<size_t>(size()) + 1) > slots_.size()) Grow();
  const int32_t rank = size();
  arena_.append(bytes);
  offsets_.push_back(arena_.size());
  Place(rank, HashBytes(bytes));
  if (bytes.size() == 1) byte_ranks_[static_cast<uint8_t>(bytes[0])] = rank;
  return rank;
}

int32_t ByteRankMap::Find(std::string_view bytes) const {
  if (slots_.empty()) return -1;
  const uint64_t hash = HashBytes(bytes);
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  const size_t mask = slots_.size() - 1;
  for (size_t index = hash & mask;; index = (index + 1) & mask) {
    const Slot& slot = slots_[index];
    if (slot.rank < 0) return -1;
    if (slot.tag == tag && Bytes(slot.rank) == bytes) return slot.rank;
  }
}

void BpeMerge(std::string_view piece, const ByteRankMap& ranks, BpeWorkspace& workspace,
              std::vector<int32_t>& out) {
  const size_t n = piece.size();
  if (n == 0) return;
  if (n > std::numeric_limits<uint32_t>::max()) {
    throw InvalidArgument("BPE piece of " + std::to_string(n) + " bytes exceeds 2^32 - 1");
  }
  if (const int32_t whole = ranks.Find(piece); whole >= 0) {
    out.push_back(whole);
    return;
  }

  // Symbols are contiguous byte ranges identified by their start offset: the right neighbour
  // of the symbol at `s` starts at s + length[s], so only left links are stored.
  auto& length = workspace.length;
  auto& prev = workspace.prev;
  auto& rank = workspace.rank;
  auto& heap = workspace.heap;
  length.assign(n, 1);
  prev.resize(n);
  rank.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    const int32_t byte_rank = ranks.ByteRank(static_cast<uint8_t>(piece[i]));
    if (byte_rank < 0) {
      throw InvalidArgument("BPE: byte " + std::to_string(static_cast<uint8_t>(piece[i])) +
                            " has no rank");
    }
    rank[i] = byte_rank;
    prev[i] = i == 0 ? 0 : static_cast<uint32_t>(i - 1);
  }

  // Candidate for merging the symbols at `left` and `right` (adjacent), if their
  // concatenation is an entry.
  const auto candidate = [&](uint32_t left, uint32_t right, bool keep_heap_order) {
    const uint32_t total = length[left] + length[right];
    const int32_t merged = ranks.Find(piece.substr(left, total));
    if (merged < 0) return;
    heap.push_back({(static_cast<uint64_t>(merged) << 32) | left, total});
    if (keep_heap_order) std::push_heap(heap.begin(), heap.end(), LaterCandidate{});
  };
  for (uint32_t i = 0; i + 1 < n; ++i) candidate(i, i + 1, false);
  std::make_heap(heap.begin(), heap.end(), LaterCandidate{});

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LaterCandidate{});
    const BpeWorkspace::Candidate best = heap.back();
    heap.pop_back();
    const uint32_t left = static_cast<uint32_t>(best.key);
    // Stale when the left symbol was absorbed (length 0), has no right neighbour any more, or
    // either side grew since the push: lengths only grow, so an unchanged sum means unchanged.
    if (length[left] == 0) continue;
    const uint32_t right = left + length[left];
    if (right >= n || length[left] + length[right] != best.total_len) continue;
    length[left] = best.total_len;
    length[right] = 0;
    rank[left] = static_cast<int32_t>(best.key >> 32);
    const uint32_t next = left + best.total_len;
    if (next < n) {
      prev[next] = left;
      candidate(left, next, true);
    }
    if (left > 0) candidate(prev[left], left, true);
  }

  for (size_t i = 0; i < n; i += length[i]) out.push_back(rank[i]);
}

std::vector<int32_t> BpeMerge(std::string_view piece, const ByteRankMap& ranks) {
  BpeWorkspace workspace;
  std::vector<int32_t> out;
  BpeMerge(piece, ranks, workspace, out);
  return out;
}

}  // namespace bora::tokenizer
