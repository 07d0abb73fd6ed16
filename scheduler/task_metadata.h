// File: scheduler/task_metadata.h
// -----------------------------------------------------------------------------
//
// What every task carries: its id, an optional label, an optional session and
// the source location of the call that spawned it. Schedulers use the id for
// tracking and the trace; the label for prioritization in tests; the session
// for the request/session layer (session/); the location for every report a
// person reads (deadlocks, leaks, exceptions).
//
// This header defines:
//   * `simsched::TaskId`       a per-scheduler sequence number, never an address
//   * `simsched::TaskLabel`    a named class of tasks ("gc", "network-io")
//   * `simsched::SessionId`    a request/session a task belongs to
//   * `simsched::TaskMetadata` the bundle of the above plus the spawn site
//
// Example:
//
//   const simsched::TaskLabel kFlush("flush");
//   simsched::Task<void> t = simsched::SpawnLabeled(*scheduler, kFlush, Flush());
//   LOG(INFO) << t.metadata().DebugString();
//   // task 7 "flush" spawned at store.cc:42 (Store::Sync)

#ifndef SIMSCHED_SCHEDULER_TASK_METADATA_H_
#define SIMSCHED_SCHEDULER_TASK_METADATA_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <ostream>
#include "scheduler/source_location.h"
#include <string>
#include <string_view>

namespace simsched {
namespace internal {
class PackedTaskMetadata;
}  // namespace internal

// TaskId
//
// Identifies a task within one scheduler. Ids come from a per-scheduler
// counter starting at 1 in spawn order, so they are the same in every run of a
// deterministic program. The zero id means "no task".
struct TaskId {
  uint64_t value = 0;

  friend auto operator<=>(const TaskId&, const TaskId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, TaskId id) {
    return H::combine(std::move(h), id.value);
  }
  friend std::ostream& operator<<(std::ostream& os, TaskId id) {
    return os << "task " << id.value;
  }
};

// TaskLabel
//
// A named class of tasks. Labels with the same name are equal, whoever made
// them: names are interned, so a label is one pointer and compares in O(1).
// The TestScheduler can deprioritize a label (its tasks run only when nothing
// else can); production schedulers accept labels and ignore them.
class TaskLabel {
 public:
  // Creates (or finds) the label called `name`. Thread-safe.
  explicit TaskLabel(std::string_view name);

  // name()
  //
  // Returns the label's name. The view stays valid for the process lifetime.
  std::string_view name() const { return *name_; }

  friend bool operator==(const TaskLabel& a, const TaskLabel& b) {
    return a.name_ == b.name_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TaskLabel& label) {
    // Hashing the interned pointer is fine for membership; nothing ever
    // iterates a container of labels to make a decision.
    return H::combine(std::move(h), label.name_);
  }
  friend std::ostream& operator<<(std::ostream& os, const TaskLabel& label) {
    return os << '"' << label.name() << '"';
  }

 private:
  // The task header stores a label as its interned name's address.
  friend class internal::PackedTaskMetadata;
  static TaskLabel FromInterned(const std::string* name) {
    TaskLabel label;
    label.name_ = name;
    return label;
  }
  TaskLabel() = default;

  const std::string* name_ = nullptr;
};

// SessionId
//
// Identifies a request/session of the session layer (session/). Zero means
// "no session".
struct SessionId {
  uint64_t value = 0;

  friend auto operator<=>(const SessionId&, const SessionId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, SessionId id) {
    return H::combine(std::move(h), id.value);
  }
  friend std::ostream& operator<<(std::ostream& os, SessionId id) {
    return os << "session " << id.value;
  }
};

// TaskMetadata
//
// Everything known about a task that does not change while it runs.
struct TaskMetadata {
  TaskId id;
  std::optional<TaskLabel> label;
  std::optional<SessionId> session;
  // Where the spawning call was written (captured by a defaulted argument).
  SourceLocation spawn_location;

  // DebugString()
  //
  // Returns a one-line description for reports, for example
  // `task 7 "flush" (session 3) spawned at store.cc:42 (Store::Sync)`.
  std::string DebugString() const;
};

// FormatLocation()
//
// Returns `file:line (function)` for a source location, with the file path
// kept as the compiler gave it. Used by every report.
std::string FormatLocation(const SourceLocation& location);

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_TASK_METADATA_H_
