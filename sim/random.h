// File: sim/random.h
// -----------------------------------------------------------------------------
//
// The seeded pseudo-random generator behind every decision the simulation
// makes. Scheduling order, simulated latencies and test data all draw from a
// `Rng`, so one 64-bit seed reproduces a whole run.
//
// The algorithms are ours, fixed and portable, so a seed means the same thing
// with g++/libstdc++ and clang++/libc++ on every platform:
//
//   * Seeding: SplitMix64 (Steele, Lea, Flood 2014) expands the 64-bit seed
//     into the 256-bit state.
//   * Generator: xoshiro256** 1.0 (Blackman, Vigna 2018).
//   * Bounded integers: Lemire's nearly divisionless method (2019) with its
//     exact rejection step, so `Below(n)` is uniform for every n.
//
// Never use `std::uniform_int_distribution` and friends for simulation
// decisions: their output differs between standard libraries.
//
// This header defines:
//   * `simsched::Rng`
//
// Example:
//
//   simsched::Rng rng(/*seed=*/42);
//   uint64_t dice = rng.Below(6) + 1;        // 1..6
//   if (rng.Chance(1, 10)) DropPacket();     // 10% of the time
//   auto latency = std::chrono::milliseconds(rng.InRange(5, 50));

#ifndef SIMSCHED_SIM_RANDOM_H_
#define SIMSCHED_SIM_RANDOM_H_

#include <cstdint>

namespace simsched {

// Rng
//
// A deterministic, seedable generator. Copying an `Rng` copies its state: the
// copy produces the same sequence from that point on. Not thread-safe.
class Rng {
 public:
  // Creates a generator whose whole sequence is a function of `seed`.
  explicit Rng(uint64_t seed = 0) { Reseed(seed); }

  // Reseed()
  //
  // Restarts the sequence as if the generator had been made with `seed`.
  void Reseed(uint64_t seed);

  // Next64()
  //
  // Returns the next 64 uniformly distributed bits.
  uint64_t Next64() {
    const uint64_t result = RotateLeft(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = RotateLeft(state_[3], 45);
    return result;
  }

  // Below()
  //
  // Returns a uniformly distributed integer in [0, bound). `Below(0)` returns
  // 0 (there is no empty range to draw from; callers check for emptiness).
  uint64_t Below(uint64_t bound) {
    // Lemire: the high word of a 64x64->128 multiply maps [0, 2^64) onto
    // [0, bound); the low word tells when the mapping was biased.
    unsigned __int128 m = static_cast<unsigned __int128>(Next64()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) [[unlikely]] {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next64()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // InRange()
  //
  // Returns a uniformly distributed integer in [low, high] (both inclusive).
  // If `high < low` the two are swapped.
  int64_t InRange(int64_t low, int64_t high);

  // Chance()
  //
  // Returns true with probability `numerator / denominator` (exactly, no
  // floating point). A zero denominator returns false.
  bool Chance(uint64_t numerator, uint64_t denominator) {
    if (denominator == 0) return false;
    return Below(denominator) < numerator;
  }

  // NextDouble()
  //
  // Returns a double uniformly distributed in [0, 1), from the top 53 bits.
  double NextDouble() {
    return static_cast<double>(Next64() >> 11) * 0x1.0p-53;
  }

  // Fork()
  //
  // Returns an independent generator derived from this one's next output, so
  // a component can own its stream without perturbing the parent's later draws
  // beyond the one value consumed here.
  Rng Fork() { return Rng(Next64()); }

 private:
  static constexpr uint64_t RotateLeft(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
  }

  uint64_t state_[4];
};

// SplitMix64()
//
// One step of the SplitMix64 output function: a strong 64-bit mixer, used to
// seed `Rng` and to derive per-iteration seeds. Pure function.
constexpr uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace simsched

#endif  // SIMSCHED_SIM_RANDOM_H_
