// Independent random streams derived from one training seed, so that every random choice of the
// data pipeline is a pure function of (seed, purpose, index) and a run can be resumed from
// counters alone.
#pragma once

#include <cstdint>

#include "base/random.h"

namespace bora::train {

// Purposes of derived streams (part of the derivation: changing one changes the data order).
enum class SeedPurpose : uint64_t {
  kSourceChoice = 1,   // index: draw number
  kSourceShuffle = 2,  // index: source * 2^32 + epoch
  kEvalSplit = 3,      // index: source
  kSynthetic = 4,      // index: record number
};

// A well-mixed 64-bit seed for (seed, purpose, index), via SplitMix64.
inline uint64_t DeriveSeed(uint64_t seed, SeedPurpose purpose, uint64_t index) {
  uint64_t state = seed;
  state = SplitMix64(state) ^ (static_cast<uint64_t>(purpose) * 0xd1b54a32d192ed03ull);
  state = SplitMix64(state) ^ (index * 0x8cb92ba72f3d8dd7ull);
  return SplitMix64(state);
}

// A generator for (seed, purpose, index).
inline Xoshiro256 DerivedGenerator(uint64_t seed, SeedPurpose purpose, uint64_t index) {
  return Xoshiro256(DeriveSeed(seed, purpose, index));
}

// Uniform integer in [0, bound) (bound >= 1); the modulo bias is below 2^-40 for bounds
// under 2^24.
inline uint64_t UniformBelow(Xoshiro256& rng, uint64_t bound) { return rng.Next() % bound; }

}  // namespace bora::train
