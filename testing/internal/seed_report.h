// Internal to the SIM_TEST harness (testing/sim_test.cc): what one run of one
// seed produced, and how a failing seed is reported (the report, its replay
// commands, its trace file) and a determinism check's difference described.
//
//   SeedRun run = RunSeed(...);  // sim_test.cc
//   if (run.failed()) fail(DescribeFailedSeed(test, run, traced, origin, config, replay, strategy));

#ifndef SIMSCHED_TESTING_INTERNAL_SEED_REPORT_H_
#define SIMSCHED_TESTING_INTERNAL_SEED_REPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/test_scheduler.h"
#include "testing/internal/property_tally.h"
#include "testing/sweep_config.h"

namespace simsched::sim_test_internal {

// One failure seen while a seed ran.
struct CapturedFailure {
  bool fatal = false;
  std::string file;
  int line = 0;
  std::string message;
  std::string task;  // the task it happened in, if any
  TaskId task_id;
  uint64_t step = 0;  // when it happened (SIMSCHED_TRACE_FILE)
  Duration time{};
};

// Everything one run of one seed produced.
struct SeedRun {
  uint64_t seed = 0;
  std::vector<CapturedFailure> failures;
  uint64_t first_failure_step = 0;
  Duration first_failure_time{};
  uint64_t steps = 0;
  Duration elapsed{};
  uint64_t trace_hash = 0;
  std::vector<TraceEntry> trace;
  // With the trace on: spawns and ends, world notes, lane names.
  std::vector<TaskEvent> task_events;
  std::vector<TraceNote> notes;
  std::vector<std::string> lanes;
  std::vector<std::string> log;
  // What the seed did with SIMSCHED_* properties (sim/properties.h).
  std::map<std::string, testing::properties_internal::SeedProperty> properties;
  bool failed() const { return !failures.empty(); }
};

// Where a failure was raised ("file:line"), or "" for one with no site (a
// deadlock, an exception from the body).
std::string FailureSite(const CapturedFailure& failure);

// The test binary as a replay line names it: bazel-bin/<target path> under
// Bazel, else this process's executable.
std::string BinaryPath(std::string_view bazel_target);

struct ReplayCommands {
  std::string bazel;
  std::string binary;
};

// How to replay `seed` of `test_name` under `strategy`, with Bazel (when the
// target is known) and with the binary itself. `binary` is
// BinaryPath(bazel_target), found once per sweep.
ReplayCommands Replay(const char* test_name, std::string_view bazel_target,
                      const std::string& binary, uint64_t seed, const std::string& strategy);

// The failure report of one seed: where and when it failed, each failure, the
// seed's log, the trace around the failure (from `traced`, the run re-made
// with its trace on) and the replay commands.
std::string DescribeFailedSeed(const char* test_name, const SeedRun& run, const SeedRun& traced,
                               std::string_view origin, const testing::SweepConfig& config,
                               const ReplayCommands& replay, const std::string& strategy);

// Writes a traced run to SIMSCHED_TRACE_FILE (testing/internal/trace_writer.h).
absl::Status WriteRunTrace(const std::string& path, const char* test_name,
                           const std::string& strategy, const SeedRun& run);

// Returns a description of the first difference between two runs of one
// seed, or nothing if they agree.
std::optional<std::string> CompareRuns(const SeedRun& a, const SeedRun& b);

}  // namespace simsched::sim_test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_SEED_REPORT_H_
