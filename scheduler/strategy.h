// File: scheduler/strategy.h
// -----------------------------------------------------------------------------
//
// How a `TestScheduler` picks the next task: its *strategy*. Every strategy
// is a pure function of the seed (and the spec), so a seed replays exactly
// under the strategy it ran with.
//
//   random     a uniformly random runnable task each step (the default of a
//              bare TestScheduler; the benchmark's hot path)
//   fifo       the task queued first (debugging: a readable, fixed order)
//   pct:D      PCT (Burckhardt et al., ASPLOS 2010) with bug depth D: random
//              task priorities, the highest runs; D-1 change points at
//              seed-chosen steps in [1, k] demote the task about to run there
//   pos        POS (Yuan et al., CAV 2018): a fresh random priority for every
//              event (each time a task becomes runnable), the highest runs
//   mix        picks one of the above per seed, from the seed itself
//
// `k` (the expected run length in steps) is part of a PCT spec:
// "pct:3:k=180". The simulation harness estimates it from the sweep's own
// earlier seeds and prints the full spec in every replay line; a bare
// TestScheduler given no k assumes `kDefaultRunLength`. docs/strategies.md
// says how each strategy treats lanes, deprioritized labels and timers, and
// which to use when.
//
// This header defines:
//   * `simsched::StrategyKind`, `simsched::StrategySpec`
//   * `simsched::ParseStrategy()`    text -> spec, with a clear error
//   * `simsched::ResolveStrategy()`  "mix" -> the concrete strategy of a seed
//   * `simsched::RunLengthEstimator` PCT's k, learned over a sweep
//
// Example:
//
//   absl::StatusOr<simsched::StrategySpec> spec = simsched::ParseStrategy("pct:3");
//   if (!spec.ok()) return spec.status();   // "unknown strategy ..." etc.
//   simsched::TestScheduler scheduler({.seed = 7, .strategy = spec->ToString()});

#ifndef SIMSCHED_SCHEDULER_STRATEGY_H_
#define SIMSCHED_SCHEDULER_STRATEGY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace simsched {

// StrategyKind
enum class StrategyKind : uint8_t { kRandom, kFifo, kPct, kPos, kMix };

// StrategySpec
//
// A parsed strategy. `ToString()` gives back text that `ParseStrategy`
// accepts and that means the same thing.
struct StrategySpec {
  // PCT's k when nothing better is known.
  static constexpr uint64_t kDefaultRunLength = 200;
  // Largest accepted PCT depth (more change points than this explore like
  // random with extra bookkeeping).
  static constexpr uint32_t kMaxDepth = 20;
  // Largest accepted k: a trillion steps is beyond any run, and PCT's
  // fairness bound (10k + 1000 steps) must not overflow.
  static constexpr uint64_t kMaxRunLength = 1'000'000'000'000;

  StrategyKind kind = StrategyKind::kRandom;
  // pct: the bug depth D (D-1 change points); 1..kMaxDepth.
  uint32_t depth = 3;
  // pct (also mix, for the PCT seeds it picks): the expected steps of one run,
  // 1..kMaxRunLength. Zero means unknown (the TestScheduler then uses
  // kDefaultRunLength).
  uint64_t run_length = 0;

  // "random", "fifo", "pos", "mix", "pct:3", "pct:3:k=180", "mix:k=180".
  std::string ToString() const;
  bool is_pct() const { return kind == StrategyKind::kPct; }
  friend bool operator==(const StrategySpec& a, const StrategySpec& b) {
    return a.ToString() == b.ToString();
  }
};

// ParseStrategy()
//
// Accepts `random`, `fifo`, `pos`, `mix`, `pct` (depth 3), `pct:D`, and a
// `:k=N` suffix on pct and mix. Anything else is InvalidArgument naming the
// bad part and the accepted forms.
absl::StatusOr<StrategySpec> ParseStrategy(std::string_view text);

// ResolveStrategy()
//
// The concrete strategy a seed runs with: `spec` itself unless it is `mix`,
// which picks random, pct:2, pct:3, pct:4 or pos from a hash of `seed`
// (documented weights in docs/strategies.md), keeping `run_length`. Never
// returns kMix.
StrategySpec ResolveStrategy(const StrategySpec& spec, uint64_t seed);

// RunLengthEstimator
//
// PCT's k for a sweep: the median step count of the first
// `kCalibrationRuns` seeds observed (then frozen, so a long sweep's k does
// not drift), or StrategySpec::kDefaultRunLength before any was observed.
// Deterministic: it depends only on the step counts fed to it, in order.
class RunLengthEstimator {
 public:
  static constexpr size_t kCalibrationRuns = 15;
  void Observe(uint64_t steps);
  uint64_t Estimate() const { return estimate_; }

 private:
  std::vector<uint64_t> observed_;
  uint64_t estimate_ = StrategySpec::kDefaultRunLength;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_STRATEGY_H_
