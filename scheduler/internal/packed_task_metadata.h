// Internal: a task's metadata as the task header stores it.
//
// `TaskMetadata` (task_metadata.h) is the public record: an id, an optional
// label, an optional session and the spawn location, 56 bytes with the two
// `std::optional` flags and their padding. Every task header carries one, and
// every `Co` frame reserves room for a header (co.h), so the header keeps the
// same facts in 40 bytes: the label is its interned name's address (null for
// none) and the "has a session" flag rides in that address's low bit. Hot
// paths read `id` directly; reports and `Task::metadata()` unpack the whole.
//
// Example:
//
//   header.metadata.set_label(TaskLabel("gc"));
//   if (std::optional<SessionId> s = header.metadata.session()) ...
//   TaskMetadata full = header.metadata.Unpack();

#ifndef SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_
#define SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_

#include <cstdint>
#include <optional>
#include <string>

#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"

namespace simsched::internal {

class PackedTaskMetadata {
 public:
  TaskId id;
  // Where the spawning call was written.
  SourceLocation spawn_location;

  std::optional<TaskLabel> label() const {
    const uintptr_t name = label_bits_ & ~kHasSession;
    if (name == 0) return std::nullopt;
    return TaskLabel::FromInterned(reinterpret_cast<const std::string*>(name));
  }
  bool has_label() const { return (label_bits_ & ~kHasSession) != 0; }
  void set_label(const std::optional<TaskLabel>& label) {
    const uintptr_t name = label.has_value() ? reinterpret_cast<uintptr_t>(label->name_) : 0;
    label_bits_ = name | (label_bits_ & kHasSession);
  }

  std::optional<SessionId> session() const {
    if ((label_bits_ & kHasSession) == 0) return std::nullopt;
    return session_;
  }
  void set_session(const std::optional<SessionId>& session) {
    if (session.has_value()) {
      session_ = *session;
      label_bits_ |= kHasSession;
    } else {
      session_ = SessionId{};
      label_bits_ &= ~kHasSession;
    }
  }

  // The public record.
  TaskMetadata Unpack() const { return TaskMetadata{id, label(), session(), spawn_location}; }
  // Same as Unpack().DebugString().
  std::string DebugString() const { return Unpack().DebugString(); }

 private:
  // Interned names are std::strings, so their addresses are even.
  static constexpr uintptr_t kHasSession = 1;
  static_assert(alignof(std::string) > 1);

  uintptr_t label_bits_ = 0;
  SessionId session_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_
