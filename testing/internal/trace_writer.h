// Internal: writes one run's events as JSON lines (SIMSCHED_TRACE_FILE).
//
// The SIM_TEST harness records a replayed seed (SIMSCHED_SEED) with the
// scheduler's trace on, then hands this writer the run: its steps
// (`TraceEntry`), task spawns and ends (`TaskEvent`), world notes (faults,
// buggify firings) and the failures it saw. The output is a pure function of
// the run, so the same seed gives the same file, byte for byte. The schema
// is documented in docs/trace-format.md; `tools/simctl replay`, `trace` and
// `report` read it.
//
//   TracedRun run{.test = "BankTest.Overdraw", .seed = 7, ...};
//   absl::Status written = WriteTraceFile("/tmp/seed7.jsonl", run);

#ifndef SIMSCHED_TESTING_INTERNAL_TRACE_WRITER_H_
#define SIMSCHED_TESTING_INTERNAL_TRACE_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "scheduler/test_scheduler.h"

namespace simsched::sim_test_internal {

// A failure the harness captured while the seed ran.
struct TracedFailure {
  uint64_t step = 0;
  Duration time{};
  TaskId task;           // zero: outside any task (the test body)
  std::string task_text;  // "task 3 "io" spawned at ..." or empty
  std::string file;
  int line = 0;
  std::string message;
  bool fatal = false;
};

// Everything the trace file says about one run.
struct TracedRun {
  std::string test;
  uint64_t seed = 0;
  std::string strategy;
  uint64_t steps = 0;
  Duration elapsed{};
  uint64_t trace_hash = 0;
  std::vector<std::string> lanes;  // lane names by id
  std::vector<TraceEntry> trace;
  std::vector<TaskEvent> task_events;
  std::vector<TraceNote> notes;
  std::vector<TracedFailure> failures;
};

// The run as JSON lines: a "run" header, then every event in step order.
std::string FormatTraceLines(const TracedRun& run);

// Writes `FormatTraceLines(run)` to `path`: the first write of a process
// truncates the file, later ones (another test in the same binary) append.
// A clear error if the file cannot be written.
absl::Status WriteTraceFile(const std::string& path, const TracedRun& run);

// `s` as the inside of a JSON string literal.
std::string JsonEscape(std::string_view s);

}  // namespace simsched::sim_test_internal

#endif  // SIMSCHED_TESTING_INTERNAL_TRACE_WRITER_H_
