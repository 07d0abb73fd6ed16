// Internal (tests only): which seeds a torture test runs, and how a failing
// seed is reported so that it can be replayed.
//
//   SIMSCHED_TORTURE_SEED=N         run exactly seed N (replay)
//   SIMSCHED_TORTURE_SEEDS=N        run N seeds (default: the target's count)
//   SIMSCHED_TORTURE_START_SEED=N   first seed of the sweep (default 0)
//
// A malformed value is an InvalidArgument naming the variable, never a
// silent default. `SetTortureCrashNote` remembers the seed under way so that
// a crash (a segfault, an abort, a sanitizer's fatal report) or a hang that
// Bazel ends with SIGTERM at the test timeout still prints
// which seed to replay.
//
// Example:
//
//   absl::StatusOr<std::vector<uint64_t>> seeds =
//       TortureSeedsFromEnvironment(/*default_count=*/3000);
//   for (uint64_t seed : *seeds) {
//     SetTortureCrashNote("//scheduler:task_torture_test", seed);
//     ...
//   }

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_SWEEP_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_SWEEP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "scheduler/internal/testing/torture_plan.h"

namespace simsched::internal {

absl::StatusOr<std::vector<uint64_t>> TortureSeedsFromEnvironment(uint64_t default_count);

// The text shown for a failing seed: what failed, the generated plan, and
// the command that replays it.
std::string TortureFailureReport(const char* target, const TorturePlan& plan,
                                 const std::vector<std::string>& violations);

// Remembers `seed` as the one under way; a fatal signal or sanitizer report
// then prints the replay command for it before the process dies.
void SetTortureCrashNote(const char* target, uint64_t seed);

// RunTortureSweep()
//
// The seed loop both torture tests share: for every seed the environment asks
// for, generates the plan (printing it when only one seed runs), notes the
// seed for a crash, calls `run` and reports its violations, if any, as a
// GoogleTest failure with the replay command; stops after five failing seeds.
void RunTortureSweep(const char* target, uint64_t default_count,
                     const TorturePlanOptions& options,
                     absl::FunctionRef<std::vector<std::string>(const TorturePlan&)> run);

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_SWEEP_H_
