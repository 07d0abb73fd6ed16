#include "testing/internal/seed_report.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "testing/internal/trace_writer.h"

namespace simsched::sim_test_internal {

std::string FailureSite(const CapturedFailure& failure) {
  return failure.file.empty() ? std::string() : absl::StrCat(failure.file, ":", failure.line);
}

std::string BinaryPath(std::string_view bazel_target) {
  if (const char* binary = std::getenv("TEST_BINARY")) return absl::StrCat("bazel-bin/", binary);
  if (bazel_target.size() > 2 && bazel_target.substr(0, 2) == "//") {
    std::string path(bazel_target.substr(2));
    if (const size_t colon = path.find(':'); colon != std::string::npos) path[colon] = '/';
    return absl::StrCat("bazel-bin/", path);
  }
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "<test binary>";
  exe[n] = '\0';
  return exe;
}

ReplayCommands Replay(const char* test_name, std::string_view bazel_target,
                      const std::string& binary, uint64_t seed, const std::string& strategy) {
  ReplayCommands commands;
  if (!bazel_target.empty()) {
    commands.bazel = absl::StrCat("bazel test ", std::string(bazel_target), " --test_filter=",
                                  test_name, " --test_env=SIMSCHED_SEED=", seed,
                                  " --test_env=SIMSCHED_STRATEGY=", strategy,
                                  " --test_output=all");
  }
  commands.binary = absl::StrCat("SIMSCHED_SEED=", seed, " SIMSCHED_STRATEGY=", strategy, " ",
                                 binary, " --gtest_filter=", test_name);
  return commands;
}

namespace {

// The trace part of a failure report. In full: every step. Otherwise the
// story around the failure: the steps just before and after the first
// failure, the failing task's own last steps, and the tail of the run;
// framework-internal steps (session grace timers) are left out.
void AppendTrace(std::string& out, const SeedRun& run, const std::vector<TraceEntry>& trace,
                 bool full_log) {
  if (full_log) {
    absl::StrAppend(&out, "  trace (all ", trace.size(), " steps):\n");
    for (const TraceEntry& entry : trace) absl::StrAppend(&out, "    ", entry.DebugString(), "\n");
    return;
  }
  std::vector<const TraceEntry*> visible;
  for (const TraceEntry& entry : trace) {
    if (!entry.internal) visible.push_back(&entry);
  }
  const size_t hidden = trace.size() - visible.size();
  auto print = [&](const char* title, const std::vector<const TraceEntry*>& entries) {
    absl::StrAppend(&out, "  ", title, ":\n");
    for (const TraceEntry* entry : entries) absl::StrAppend(&out, "    ", entry->DebugString(), "\n");
  };
  const uint64_t failure_step = run.first_failure_step;
  const bool failed_mid_run = !run.failures.empty() && failure_step > 0 && failure_step < run.steps;
  if (failed_mid_run) {
    std::vector<const TraceEntry*> around;
    for (const TraceEntry* entry : visible) {
      if (entry->step + 5 >= failure_step && entry->step <= failure_step + 5) around.push_back(entry);
    }
    print(absl::StrCat("steps around the failure (step ", failure_step, ")").c_str(), around);
  }
  TaskId failing_task;
  for (const CapturedFailure& failure : run.failures) {
    if (failure.task_id.value != 0) {
      failing_task = failure.task_id;
      break;
    }
  }
  if (failing_task.value != 0) {
    std::vector<const TraceEntry*> own;
    for (const TraceEntry* entry : visible) {
      if (entry->task == failing_task) own.push_back(entry);
    }
    if (own.size() > 10) own.erase(own.begin(), own.end() - 10);
    print(absl::StrCat("last ", own.size(), " steps of task ", failing_task.value,
                       " (the task the first failure happened in)")
              .c_str(),
          own);
  }
  const size_t shown = std::min<size_t>(visible.size(), 20);
  std::vector<const TraceEntry*> tail(visible.end() - shown, visible.end());
  print(absl::StrCat("trace (", shown < visible.size() ? "last " : "all ", shown, " of ",
                     trace.size(), " steps",
                     hidden > 0 ? absl::StrCat("; ", hidden, " framework-internal steps hidden")
                                : std::string(),
                     shown < visible.size() || hidden > 0 ? "; SIMSCHED_LOG=full shows all" : "",
                     ")")
            .c_str(),
        tail);
}

}  // namespace

std::string DescribeFailedSeed(const char* test_name, const SeedRun& run, const SeedRun& traced,
                               std::string_view origin, const testing::SweepConfig& config,
                               const ReplayCommands& replay, const std::string& strategy) {
  std::string out = absl::StrCat(
      "simsched: ", test_name, " failed on seed ", run.seed, " (", std::string(origin),
      ") under strategy ", strategy, "\n",
      "  at step ", run.first_failure_step, ", virtual time ",
      FormatDuration(run.first_failure_time), "; the run ended at step ", run.steps,
      " with trace hash ", absl::StrFormat("0x%016x", run.trace_hash), "\n");
  for (size_t i = 0; i < run.failures.size(); ++i) {
    const CapturedFailure& f = run.failures[i];
    absl::StrAppend(&out, "  failure ", i + 1);
    if (!f.task.empty()) absl::StrAppend(&out, ", in ", f.task);
    absl::StrAppend(&out, ":\n");
    std::string where = f.file.empty() ? "" : absl::StrCat(f.file, ":", f.line, ": ");
    std::string message = absl::StrCat(where, f.message);
    size_t start = 0;
    while (start <= message.size()) {
      size_t end = message.find('\n', start);
      if (end == std::string::npos) end = message.size();
      absl::StrAppend(&out, "    ", message.substr(start, end - start), "\n");
      start = end + 1;
    }
  }
  if (!run.log.empty()) {
    absl::StrAppend(&out, "  log:\n");
    for (const std::string& line : run.log) absl::StrAppend(&out, "    ", line, "\n");
  }
  if (!traced.trace.empty()) AppendTrace(out, run, traced.trace, config.full_log);
  if (traced.trace_hash != run.trace_hash) {
    absl::StrAppend(&out, "  WARNING: re-running the seed to record its trace gave trace hash ",
                    absl::StrFormat("0x%016x", traced.trace_hash),
                    ": the test is not deterministic (try SIMSCHED_CHECK_DETERMINISM=1)\n");
  }
  absl::StrAppend(&out, "replay this seed:\n");
  if (!replay.bazel.empty()) absl::StrAppend(&out, "  ", replay.bazel, "\n");
  absl::StrAppend(&out, "  ", replay.binary, "\n");
  return out;
}

absl::Status WriteRunTrace(const std::string& path, const char* test_name,
                           const std::string& strategy, const SeedRun& run) {
  TracedRun traced{.test = test_name,
                                      .seed = run.seed,
                                      .strategy = strategy,
                                      .steps = run.steps,
                                      .elapsed = run.elapsed,
                                      .trace_hash = run.trace_hash,
                                      .lanes = run.lanes,
                                      .trace = run.trace,
                                      .task_events = run.task_events,
                                      .notes = run.notes,
                                      .failures = {}};
  for (const CapturedFailure& failure : run.failures) {
    traced.failures.push_back({failure.step, failure.time, failure.task_id, failure.task,
                               failure.file, failure.line, failure.message, failure.fatal});
  }
  return WriteTraceFile(path, traced);
}

std::optional<std::string> CompareRuns(const SeedRun& a, const SeedRun& b) {
  const size_t n = std::min(a.trace.size(), b.trace.size());
  for (size_t i = 0; i < n; ++i) {
    if (!(a.trace[i] == b.trace[i])) {
      return absl::StrCat("the runs diverge at step ", i + 1, ":\n    first run:  ",
                          a.trace[i].DebugString(), "\n    second run: ",
                          b.trace[i].DebugString());
    }
  }
  if (a.trace.size() != b.trace.size()) {
    return absl::StrCat("the first run took ", a.trace.size(), " steps, the second ",
                        b.trace.size(), "; they agree on the first ", n);
  }
  if (a.trace_hash != b.trace_hash) {
    return absl::StrCat("the traces agree step by step but the virtual times differ (hashes ",
                        absl::StrFormat("0x%016x vs 0x%016x", a.trace_hash, b.trace_hash), ")");
  }
  if (a.failed() != b.failed()) {
    return absl::StrCat("the first run ", a.failed() ? "failed" : "passed", ", the second ",
                        b.failed() ? "failed" : "passed", " with the same schedule");
  }
  return std::nullopt;
}

}  // namespace simsched::sim_test_internal
