// File: testing/model_sweep.h
// -----------------------------------------------------------------------------
//
// The loop of a seeded model test (a torture test), for tests written as
// plain gtest TESTs: each seed generates a case, runs it and checks what
// happened against a model, returning what was wrong ("" if nothing).
// `SweepModelSeeds` runs the seeds `<prefix>_SEED`, `<prefix>_SEEDS` and
// `<prefix>_START_SEED` name (testing::SeedsFromEnvironment, so a malformed
// value is an error, never a silent default), reports each failing seed as
// a test failure with its one-seed replay line, and stops after
// `max_failures` of them.
//
// This header defines:
//   * `simsched::testing::ModelSweepOptions`
//   * `simsched::testing::SweepModelSeeds()`
//
// Example:
//
//   TEST(KvModelTest, HoldsOverManySeeds) {
//     simsched::testing::SweepModelSeeds("KV_MODEL", {.default_count = 5000},
//                                        [](uint64_t seed) { return RunKvSeed(seed); });
//   }
//   // a failure: "seed 812 (replay: KV_MODEL_SEED=812): key 3 read 7, the model 9"

#ifndef SIMSCHED_TESTING_MODEL_SWEEP_H_
#define SIMSCHED_TESTING_MODEL_SWEEP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace simsched::testing {

// ModelSweepOptions
struct ModelSweepOptions {
  // Seeds run when `<prefix>_SEEDS` is unset, from `<prefix>_START_SEED` or
  // this first one.
  uint64_t default_count = 1000;
  uint64_t default_start = 1;
  // Failing seeds reported before the sweep stops.
  int max_failures = 5;
};

// SweepModelSeeds()
//
// Calls `run_seed` for each seed (see the file comment) and returns how many
// failed; a malformed variable is one failure, reported with its status.
int SweepModelSeeds(std::string_view prefix, const ModelSweepOptions& options,
                    const std::function<std::string(uint64_t seed)>& run_seed);

}  // namespace simsched::testing

#endif  // SIMSCHED_TESTING_MODEL_SWEEP_H_
