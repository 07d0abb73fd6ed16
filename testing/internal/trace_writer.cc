#include "testing/internal/trace_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace simsched::sim_test_internal {
namespace {

std::string Quoted(std::string_view s) { return absl::StrCat("\"", JsonEscape(s), "\""); }

std::string IdOrNull(TaskId id) { return id.value == 0 ? "null" : absl::StrCat(id.value); }

std::string Site(const SourceLocation& where) {
  if (where.line() == 0 && std::string_view(where.file_name()).empty()) return "null";
  return Quoted(FormatLocation(where));
}

// The fields every task-related line shares.
std::string TaskFields(TaskId id, const std::optional<TaskLabel>& label,
                       const std::optional<SessionId>& session) {
  return absl::StrCat("\"task\": ", id.value, ", \"label\": ",
                      label.has_value() ? Quoted(label->name()) : "null", ", \"session\": ",
                      session.has_value() ? absl::StrCat(session->value) : "null");
}

const char* CauseName(WakeCause cause) {
  switch (cause) {
    case WakeCause::kSpawned: return "spawned";
    case WakeCause::kTask: return "task";
    case WakeCause::kItself: return "itself";
    case WakeCause::kTimer: return "timer";
    case WakeCause::kOutsideTask: return "outside";
    case WakeCause::kForeignThread: return "foreign_thread";
    case WakeCause::kUnknown: break;
  }
  return "unknown";
}

std::string PollLine(const TraceEntry& e) {
  return absl::StrCat(
      "{\"event\": \"poll\", \"step\": ", e.step, ", \"t_ns\": ", e.time.count(), ", ",
      TaskFields(e.task, e.label, e.session),
      ", \"lane\": ", e.lane.has_value() ? absl::StrCat(*e.lane) : "null",
      ", \"internal\": ", e.internal ? "true" : "false", ", \"cause\": \"", CauseName(e.cause),
      "\", \"woken_by\": ", IdOrNull(e.woken_by),
      ", \"wake_reason\": ", e.wake_reason.empty() ? "null" : Quoted(e.wake_reason),
      ", \"resumed_what\": ", e.resumed_what.empty() ? "null" : Quoted(e.resumed_what),
      ", \"resumed_at\": ", e.resumed_what.empty() ? "null" : Site(e.resumed_at),
      ", \"resumed_after_task\": ", IdOrNull(e.resumed_after_task),
      ", \"spawned_at\": ", Site(e.spawn_location), "}");
}

std::string TaskEventLine(const TaskEvent& e) {
  const char* kind = e.kind == TaskEvent::Kind::kSpawned     ? "spawn"
                     : e.kind == TaskEvent::Kind::kCompleted ? "complete"
                                                             : "cancel";
  std::string out = absl::StrCat("{\"event\": \"", kind, "\", \"step\": ", e.step,
                                 ", \"t_ns\": ", e.time.count(), ", ",
                                 TaskFields(e.task.id, e.task.label, e.task.session));
  if (e.kind == TaskEvent::Kind::kSpawned) {
    absl::StrAppend(&out, ", \"parent\": ", IdOrNull(e.parent),
                    ", \"spawned_at\": ", Site(e.task.spawn_location));
  }
  absl::StrAppend(&out, "}");
  return out;
}

std::string NoteLine(const TraceNote& n) {
  return absl::StrCat("{\"event\": \"fault\", \"step\": ", n.step, ", \"t_ns\": ", n.time.count(),
                      ", \"kind\": ", Quoted(n.kind), ", \"task\": ", IdOrNull(n.task),
                      ", \"text\": ", Quoted(n.text), "}");
}

std::string FailureLine(const TracedFailure& f) {
  return absl::StrCat("{\"event\": \"failure\", \"step\": ", f.step, ", \"t_ns\": ", f.time.count(),
                      ", \"task\": ", IdOrNull(f.task), ", \"task_text\": ",
                      f.task_text.empty() ? "null" : Quoted(f.task_text),
                      ", \"file\": ", f.file.empty() ? "null" : Quoted(f.file),
                      ", \"line\": ", f.line, ", \"fatal\": ", f.fatal ? "true" : "false",
                      ", \"message\": ", Quoted(f.message), "}");
}

}  // namespace

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string FormatTraceLines(const TracedRun& run) {
  std::string lanes;
  for (size_t i = 0; i < run.lanes.size(); ++i) {
    absl::StrAppend(&lanes, i ? ", " : "", Quoted(run.lanes[i]));
  }
  std::string out = absl::StrCat(
      "{\"event\": \"run\", \"format\": 1, \"test\": ", Quoted(run.test), ", \"seed\": ", run.seed,
      ", \"strategy\": ", Quoted(run.strategy), ", \"steps\": ", run.steps,
      ", \"virtual_time_ns\": ", run.elapsed.count(), ", \"trace_hash\": \"",
      absl::StrFormat("0x%016x", run.trace_hash), "\", \"failed\": ",
      run.failures.empty() ? "false" : "true", ", \"lanes\": [", lanes, "]}\n");
  // Each step's poll first, then what happened during it: spawns, faults,
  // failures in tasks, then ends (a task ends as its last poll does), then
  // failures outside any task; each kind in the order it was recorded. Events before the first step (spawns from the
  // test body) have step 0.
  struct Line {
    uint64_t step;
    int order;  // poll, spawn, fault, failure, end
    std::string text;
  };
  std::vector<Line> lines;
  lines.reserve(run.trace.size() + run.task_events.size() + run.notes.size() +
                run.failures.size());
  for (size_t i = 0; i < run.trace.size(); ++i) {
    lines.push_back({run.trace[i].step, 0, PollLine(run.trace[i])});
  }
  for (size_t i = 0; i < run.task_events.size(); ++i) {
    const bool spawn = run.task_events[i].kind == TaskEvent::Kind::kSpawned;
    lines.push_back({run.task_events[i].step, spawn ? 1 : 4, TaskEventLine(run.task_events[i])});
  }
  for (size_t i = 0; i < run.notes.size(); ++i) {
    lines.push_back({run.notes[i].step, 2, NoteLine(run.notes[i])});
  }
  for (size_t i = 0; i < run.failures.size(); ++i) {
    // One raised outside any task (the body, after the run) comes after the
    // step's ends.
    lines.push_back({run.failures[i].step, run.failures[i].task.value != 0 ? 3 : 5,
                     FailureLine(run.failures[i])});
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return a.step != b.step ? a.step < b.step : a.order < b.order;
  });
  for (const Line& line : lines) absl::StrAppend(&out, line.text, "\n");
  return out;
}

absl::Status WriteTraceFile(const std::string& path, const TracedRun& run) {
  static bool written_before = false;  // harness thread only
  std::ofstream file(path, written_before ? std::ios::app : std::ios::trunc);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SIMSCHED_TRACE_FILE=", path, " cannot be opened for writing (", std::strerror(errno),
        "); give a path in a folder that exists and is writable"));
  }
  file << FormatTraceLines(run);
  file.close();
  if (!file) {
    return absl::DataLossError(absl::StrCat("writing the trace to ", path, " failed (",
                                            std::strerror(errno), ")"));
  }
  written_before = true;
  return absl::OkStatus();
}

}  // namespace simsched::sim_test_internal
