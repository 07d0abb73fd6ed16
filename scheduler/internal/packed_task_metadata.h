// Internal: a task's metadata as the task header stores it.
//
// `TaskMetadata` (task_metadata.h) is the public record: an id, an optional
// label, an optional session and the spawn location, 56 bytes with the two
// `std::optional` flags and their padding. Every task header carries one, and
// every `Co` frame reserves room for a header (co.h), so the header keeps the
// same facts in 24 bytes, storing nothing a task does not have:
//   * the spawn location as a pointer to an interned copy, one per call site
//     (InternLocation), so 8 bytes instead of 16 (24 under clang 14);
//   * the label as its interned name's address (null for none); a task with
//     a session and no label (most of the session layer's tasks) keeps the
//     session id in the same word, tagged; only a task with both holds them
//     in a small record of its own (an allocation besides the task's block).
// Hot paths read `id` directly; reports and `Task::metadata()` unpack the
// whole.
//
// Example:
//
//   header.metadata.set_label(TaskLabel("gc"));
//   if (std::optional<SessionId> s = header.metadata.session()) ...
//   TaskMetadata full = header.metadata.Unpack();

#ifndef SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_
#define SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"

namespace simsched::internal {

// InternLocation()
//
// A copy of `location` with static storage duration, the same one for every
// equal location (same file and function name strings, same line): there is
// one per call site, so the table is as large as the program's spawn sites.
// Thread-safe; a per-thread cache makes a repeated site a few compares.
const SourceLocation* InternLocation(const SourceLocation& location);

// The per-thread cache's key: the location's own words where they are its
// whole state (std::source_location's static record and the function name),
// else its fields. Equal keys are equal locations; equal locations with
// different keys only cost a second cache entry.
struct LocationKey {
  uintptr_t first = 0;
  uintptr_t second = 0;
  uint32_t line = 0;
  friend bool operator==(const LocationKey&, const LocationKey&) = default;
};
inline LocationKey LocationKeyOf(const SourceLocation& location) {
#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT
  static_assert(sizeof(SourceLocation) == 2 * sizeof(uintptr_t) &&
                std::is_trivially_copyable_v<SourceLocation>);
  uintptr_t words[2];
  std::memcpy(words, &location, sizeof(words));
  return LocationKey{words[0], words[1], 0};
#else
  return LocationKey{reinterpret_cast<uintptr_t>(location.file_name()),
                     reinterpret_cast<uintptr_t>(location.function_name()), location.line()};
#endif
}

struct LocationCacheEntry {
  LocationKey key;
  const SourceLocation* interned = nullptr;
};
inline constexpr size_t kLocationCacheSize = 64;
extern thread_local constinit LocationCacheEntry location_cache[kLocationCacheSize];
const SourceLocation* InternLocationSlow(const SourceLocation& location);

inline size_t LocationCacheIndex(const LocationKey& key) {
  return ((key.first >> 4) ^ (key.second >> 3) ^ key.line) % kLocationCacheSize;
}

inline const SourceLocation* InternLocation(const SourceLocation& location) {
  const LocationKey key = LocationKeyOf(location);
  const LocationCacheEntry& entry = location_cache[LocationCacheIndex(key)];
  if (entry.key == key && entry.interned != nullptr) [[likely]] return entry.interned;
  return InternLocationSlow(location);
}

class PackedTaskMetadata {
 public:
  PackedTaskMetadata() = default;
  PackedTaskMetadata(const PackedTaskMetadata&) = delete;
  PackedTaskMetadata& operator=(const PackedTaskMetadata&) = delete;
  ~PackedTaskMetadata() {
    if ((label_bits_ & kTagMask) == kRecord) delete record();
  }

  // `TaskId id;` is the last member (below): the task header puts the
  // words a poll reads at its end (task_header.h).

  // Where the spawning call was written.
  SourceLocation spawn_location() const {
    return spawn_location_ != nullptr ? *spawn_location_ : SourceLocation();
  }
  void set_spawn_location(const SourceLocation& location) {
    spawn_location_ = InternLocation(location);
  }

  std::optional<TaskLabel> label() const {
    const std::string* const name = label_name();
    if (name == nullptr) return std::nullopt;
    return TaskLabel::FromInterned(name);
  }
  bool has_label() const { return label_name() != nullptr; }
  void set_label(const std::optional<TaskLabel>& label) {
    const std::string* const name = label.has_value() ? label->name_ : nullptr;
    switch (label_bits_ & kTagMask) {
      case kRecord:
        record()->label = name;
        return;
      case kInlineSession:
        if (name != nullptr) {
          const SessionId session{label_bits_ >> kTagBits};
          label_bits_ = reinterpret_cast<uintptr_t>(new LabelAndSession{name, session}) | kRecord;
        }
        return;
      default:
        label_bits_ = reinterpret_cast<uintptr_t>(name);
    }
  }

  std::optional<SessionId> session() const {
    switch (label_bits_ & kTagMask) {
      case kRecord:
        return record()->session;
      case kInlineSession:
        return SessionId{label_bits_ >> kTagBits};
      default:
        return std::nullopt;
    }
  }
  void set_session(const std::optional<SessionId>& session) {
    const std::string* const name = label_name();
    if ((label_bits_ & kTagMask) == kRecord) {
      if (session.has_value()) {
        record()->session = *session;
        return;
      }
      delete record();
    }
    if (!session.has_value()) {
      label_bits_ = reinterpret_cast<uintptr_t>(name);
    } else if (name == nullptr && session->value <= kMaxInlineSession) {
      // The common case (the session layer's unlabeled tasks): no record.
      label_bits_ = (session->value << kTagBits) | kInlineSession;
    } else {
      label_bits_ = reinterpret_cast<uintptr_t>(new LabelAndSession{name, *session}) | kRecord;
    }
  }

  // The public record.
  TaskMetadata Unpack() const { return TaskMetadata{id, label(), session(), spawn_location()}; }
  // Same as Unpack().DebugString().
  std::string DebugString() const { return Unpack().DebugString(); }

 private:
  struct LabelAndSession {
    const std::string* label;
    SessionId session;
  };
  // The word's low two bits say what it holds: 0, an interned label name
  // or null; kRecord, a LabelAndSession; kInlineSession, a session id (in
  // the bits above) of a task with no label. Names and records are at least
  // 4-aligned.
  static constexpr int kTagBits = 2;
  static constexpr uintptr_t kTagMask = 3;
  static constexpr uintptr_t kRecord = 1;
  static constexpr uintptr_t kInlineSession = 2;
  static constexpr uint64_t kMaxInlineSession = UINTPTR_MAX >> kTagBits;
  static_assert(alignof(std::string) >= 4 && alignof(LabelAndSession) >= 4);

  LabelAndSession* record() const {
    return reinterpret_cast<LabelAndSession*>(label_bits_ & ~kTagMask);
  }
  const std::string* label_name() const {
    switch (label_bits_ & kTagMask) {
      case kRecord:
        return record()->label;
      case kInlineSession:
        return nullptr;
      default:
        return reinterpret_cast<const std::string*>(label_bits_);
    }
  }

  const SourceLocation* spawn_location_ = nullptr;
  uintptr_t label_bits_ = 0;

 public:
  // Last, so that it sits beside the task header's hot words.
  TaskId id;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_
