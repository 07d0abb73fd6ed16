// File: testing/sweep_config.h
// -----------------------------------------------------------------------------
//
// `SweepConfig` says which seeds a simulation test runs and how: how many,
// from where, on which shard, for how long, and what to do on failure. Every
// knob is a `SIMSCHED_*` environment variable, validated strictly: a bad
// value is an error naming the variable and the accepted form, never a silent
// default.
//
//   SIMSCHED_ITERATIONS=N         seeds per test (a positive integer)
//   SIMSCHED_SEED=S               run exactly seed S (replay); no sweep
//   SIMSCHED_START_SEED=S         first seed of the sweep (default 0)
//   SIMSCHED_TIME_BUDGET=D        stop the sweep after D of wall time ("30s",
//                                 "2m", "1500ms"); says how far it got
//   SIMSCHED_COLLECT_ALL=1        keep going after a failing seed
//   SIMSCHED_CHECK_DETERMINISM=1  run each seed twice and compare the traces
//   SIMSCHED_LOG=short|full       the failing seed's trace: last 20 steps or all
//   SIMSCHED_STRATEGY=S           scheduling strategy for every test: random,
//                                 fifo, pct:D[:k=N], pos, mix (scheduler/strategy.h)
//   SIMSCHED_TRACE_FILE=path      with SIMSCHED_SEED: write the run's events
//                                 as JSON lines (docs/trace-format.md)
//   GTEST_SHARD_INDEX/GTEST_TOTAL_SHARDS (set by Bazel's shard_count): run
//                                 only this shard's share of the seeds
//   SIMSCHED_TOTAL_SHARDS/SIMSCHED_SHARD_INDEX: the same, under simsched's
//                                 own names (tools/simctl sweep, CMake, a CI
//                                 matrix); with a total set and no index,
//                                 JOB_COMPLETION_INDEX (a Kubernetes Indexed
//                                 Job) is the index
//
// One rule for every SIMSCHED_* variable (these, the torture sweep's, the
// race tests' and benchmarks' knobs): a variable set to the empty string is
// treated as unset, so `SIMSCHED_SEED= cmd` or `--test_env=SIMSCHED_SEED=`
// clears a value inherited from the shell. `EnvironmentValue()` applies it;
// read SIMSCHED_* variables only through it.
//
// This header defines:
//   * `simsched::testing::SweepConfig`
//   * `simsched::testing::SweepConfigFromEnvironment()`
//   * `simsched::testing::SweepSeeds()`
//   * `simsched::testing::EnvironmentValue()`, `EnvironmentUint64()`
//
// Example:
//
//   absl::StatusOr<SweepConfig> config = SweepConfigFromEnvironment(
//       /*default_iterations=*/100, [](const char* name) { return std::getenv(name); });
//   if (!config.ok()) ADD_FAILURE() << config.status().message();

#ifndef SIMSCHED_TESTING_SWEEP_CONFIG_H_
#define SIMSCHED_TESTING_SWEEP_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace simsched::testing {

// SweepConfig
struct SweepConfig {
  uint64_t iterations = 100;
  uint64_t start_seed = 0;
  // Set by SIMSCHED_SEED: run this seed only (on shard 0 only).
  std::optional<uint64_t> single_seed = std::nullopt;
  std::optional<std::chrono::nanoseconds> time_budget = std::nullopt;
  bool collect_all = false;
  bool check_determinism = false;
  bool full_log = false;
  uint64_t shard_index = 0;
  uint64_t total_shards = 1;
  // Set by SIMSCHED_STRATEGY (validated); overrides the test's `.strategy`.
  std::optional<std::string> strategy = std::nullopt;
  // Set by SIMSCHED_TRACE_FILE (only with SIMSCHED_SEED): where the replayed
  // seed's events go, as JSON lines.
  std::optional<std::string> trace_file = std::nullopt;
};

// Looks up an environment variable; returns null when unset.
using EnvLookup = std::function<const char*(const char*)>;

// EnvironmentValue()
//
// The value of environment variable `name`, or null when it is unset or set
// to the empty string (empty means unset, for every SIMSCHED_* variable).
// The first form reads the process environment; the second goes through
// `getenv`, which tests substitute.
const char* EnvironmentValue(const char* name);
const char* EnvironmentValue(const EnvLookup& getenv, const char* name);

// EnvironmentUint64()
//
// A whole-number knob (an iteration or task count, a seed): `default_value`
// when `name` is unset or empty, its value when it is a whole number in
// 0..2^64-1, and InvalidArgument naming the variable, the bad value and the
// accepted form otherwise (never a silent fallback).
//
//   absl::StatusOr<uint64_t> n = EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 2000);
//   ASSERT_TRUE(n.ok()) << n.status();
absl::StatusOr<uint64_t> EnvironmentUint64(const char* name, uint64_t default_value);

// SeedsFromEnvironment()
//
// The seeds a seeded torture or model test runs, from three variables named
// after `prefix`: `<prefix>_SEED` (one seed, to replay it),
// `<prefix>_SEEDS` (how many; `default_count` when unset) and
// `<prefix>_START_SEED` (the first; `default_start` when unset). Empty means
// unset. A malformed value, or zero seeds, is InvalidArgument naming the
// variable and what it accepts.
//
//   absl::StatusOr<std::vector<uint64_t>> seeds =
//       SeedsFromEnvironment("SIMSCHED_TORTURE", /*default_count=*/3000);
//   ASSERT_TRUE(seeds.ok()) << seeds.status();
absl::StatusOr<std::vector<uint64_t>> SeedsFromEnvironment(std::string_view prefix,
                                                           uint64_t default_count,
                                                           uint64_t default_start = 0);

// SweepConfigFromEnvironment()
//
// Builds the config from `default_iterations` and the SIMSCHED_* variables
// (and the gtest shard variables). Returns InvalidArgument naming the
// variable and its accepted form for any malformed value: not a number,
// trailing junk, overflow, zero iterations, a shard index out of range.
absl::StatusOr<SweepConfig> SweepConfigFromEnvironment(uint64_t default_iterations,
                                                       const EnvLookup& getenv);

// SweepSeeds()
//
// The seeds of the sweep proper that this shard runs, in order: seed
// `start_seed + i` for i in [0, iterations) with i % total_shards ==
// shard_index. With `single_seed`, that seed on shard 0 and nothing on the
// others. (Regression seeds are separate: every shard runs them.)
// Allocates one word per seed: for small sweeps and tests. The harness
// generates seeds one at a time with SweepSeedCount/SweepSeedAt instead.
std::vector<uint64_t> SweepSeeds(const SweepConfig& config);

// SweepSeedCount() / SweepSeedAt()
//
// The same seeds, generated: how many this shard runs, and the j-th of them
// (j < SweepSeedCount). Constant memory for any iteration count, up to
// 2^64-1; seeds wrap modulo 2^64 past the top.
uint64_t SweepSeedCount(const SweepConfig& config);
uint64_t SweepSeedAt(const SweepConfig& config, uint64_t j);

// ParseUint64()
//
// Strict decimal parse of a whole string into a uint64: no sign, no spaces,
// no trailing characters, no overflow.
std::optional<uint64_t> ParseUint64(std::string_view text);

}  // namespace simsched::testing

#endif  // SIMSCHED_TESTING_SWEEP_CONFIG_H_
