#include "sim/random.h"

#include <utility>

namespace simsched {

void Rng::Reseed(uint64_t seed) {
  // SplitMix64 as a sequence generator: state advances by the golden gamma
  // and each output is the mix of the advanced state.
  uint64_t x = seed;
  for (uint64_t& word : state_) {
    word = SplitMix64(x);
    x += 0x9e3779b97f4a7c15ULL;
  }
}

int64_t Rng::InRange(int64_t low, int64_t high) {
  if (high < low) std::swap(low, high);
  const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  if (span == UINT64_MAX) return static_cast<int64_t>(Next64());
  return static_cast<int64_t>(static_cast<uint64_t>(low) + Below(span + 1));
}

}  // namespace simsched
