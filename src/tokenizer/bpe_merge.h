// Rank-based byte-level BPE (tiktoken semantics) over one pre-tokenized piece, in O(n log n).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bora::tokenizer {

// Map from byte strings to ranks, stored as one byte arena plus an open-addressing hash table;
// ranks are assigned in insertion order 0, 1, 2, ... Built with Add, then only read: the const
// methods are safe to call from many threads at once.
class ByteRankMap {
 public:
  ByteRankMap() { byte_ranks_.fill(-1); }

  // Reserves room for `count` entries holding `total_bytes` bytes in all (an optimisation).
  void Reserve(size_t count, size_t total_bytes);

  // Adds `bytes` with rank size() and returns that rank, or -1 (and adds nothing) when the
  // same byte string is already present. Empty strings are accepted like any other.
  int32_t Add(std::string_view bytes);

  // Rank of `bytes`, or -1 when absent.
  int32_t Find(std::string_view bytes) const;

  // The byte string of `rank`; `rank` must be in [0, size()).
  std::string_view Bytes(int32_t rank) const {
    return {arena_.data() + offsets_[rank], offsets_[rank + 1] - offsets_[rank]};
  }

  // Rank of the single byte `byte`, or -1 when that byte is not an entry.
  int32_t ByteRank(uint8_t byte) const { return byte_ranks_[byte]; }

  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }

 private:
  void Grow();
  void Place(int32_t rank, uint64_t hash);

  // One hash table slot: the rank stored there (-1: empty) and the high half of its hash, which
  // rejects most non-matching probes without touching the arena.
  struct Slot {
    int32_t rank;
    uint32_t tag;
  };

  std::string arena_;                    // all byte strings, back to back
  std::vector<size_t> offsets_{0};       // rank r spans arena_[offsets_[r], offsets_[r + 1])
  std::vector<Slot> slots_;              // open addressing, linear probing, size a power of two
  std::array<int32_t, 256> byte_ranks_;  // rank of each single byte, -1 when absent
};

// Scratch memory for BpeMerge, reused across pieces so that encoding a text allocates only
// when a piece is longer than every earlier one. Holds no state between calls.
struct BpeWorkspace {
  struct Candidate {
    uint64_t key;        // (rank << 32) | left byte offset: the heap order, leftmost on ties
    uint32_t total_len;  // bytes of left + right when pushed; a mismatch marks it stale
  };
  std::vector<uint32_t> length;  // per byte offset: length of the symbol starting there, 0 if none
  std::vector<uint32_t> prev;    // per symbol start: start of the symbol to its left
  std::vector<int32_t> rank;     // per symbol start: the symbol's rank
  std::vector<Candidate> heap;   // min-heap of candidate merges, with stale entries
};

// Appends to `out` the ranks of `piece` under byte-level BPE: if the whole piece is an entry of
// `ranks` its rank, else start from single bytes and repeatedly merge the adjacent pair whose
// concatenation has the lowest rank (leftmost on ties) until no adjacent pair is an entry.
// Every single byte of `piece` must be an entry (InvalidArgument otherwise, nothing appended);
// pieces longer than 2^32 - 1 bytes throw InvalidArgument. O(n log n) in the piece length.
void BpeMerge(std::string_view piece, const ByteRankMap& ranks, BpeWorkspace& workspace,
              std::vector<int32_t>& out);

// Convenience overload with a temporary workspace.
std::vector<int32_t> BpeMerge(std::string_view piece, const ByteRankMap& ranks);

}  // namespace bora::tokenizer
