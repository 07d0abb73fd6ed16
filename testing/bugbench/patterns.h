// File: testing/bugbench/patterns.h
// -----------------------------------------------------------------------------
//
// The bug-finding benchmark: small simsched programs with planted
// concurrency bugs (classic patterns, after the SCTBench suite), each with a
// fixed twin as a negative control. A run of one program under one seed and
// strategy says whether the planted bug showed. `bugbench_report` measures,
// per strategy, the fraction of failing seeds and the seeds to the first
// failure; `bugbench_test` is the small CI version. docs/strategies.md has
// the measured table.
//
// This header defines:
//   * `simsched::bugbench::BugPattern`, `AllPatterns()`
//   * `simsched::bugbench::RunPattern()`, `CountFailures()`, `FindPattern()`,
//     `CalibratedRunLength()`
//
// Example:
//
//   for (const BugPattern& pattern : AllPatterns()) {
//     Outcome outcome = RunPattern(pattern, /*fixed=*/false, /*seed=*/7, "pct:3:k=40");
//     if (outcome.failed) ...
//   }

#ifndef SIMSCHED_TESTING_BUGBENCH_PATTERNS_H_
#define SIMSCHED_TESTING_BUGBENCH_PATTERNS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "scheduler/test_scheduler.h"

namespace simsched::bugbench {

// BugPattern
struct BugPattern {
  std::string name;
  std::string description;
  // Needs a long preemption or a specific order among many steps: what
  // uniform random scheduling almost never produces.
  bool deep = false;
  // Spawns the program (the fixed twin if `fixed`), runs it to the end and
  // returns whether the planted bug showed.
  bool (*run)(TestScheduler& scheduler, bool fixed) = nullptr;
};

// All patterns, in a fixed order.
const std::vector<BugPattern>& AllPatterns();

// Outcome of one run.
struct Outcome {
  bool failed = false;
  uint64_t steps = 0;
};

// RunPattern()
//
// One run under `seed` and a concrete or `mix` strategy string.
Outcome RunPattern(const BugPattern& pattern, bool fixed, uint64_t seed,
                   const std::string& strategy);

// CountFailures()
//
// How many of seeds first_seed .. first_seed + seeds - 1 fail under `strategy`.
uint64_t CountFailures(const BugPattern& pattern, bool fixed, const std::string& strategy,
                       uint64_t first_seed, uint64_t seeds);

// FindPattern()
//
// The pattern called `name`, or null.
const BugPattern* FindPattern(const std::string& name);

// CalibratedRunLength()
//
// PCT's k for a pattern, as the harness computes it: the median step count
// of seeds 0..2 under random.
uint64_t CalibratedRunLength(const BugPattern& pattern, bool fixed);

}  // namespace simsched::bugbench

#endif  // SIMSCHED_TESTING_BUGBENCH_PATTERNS_H_
