// Internal: a task's metadata as the task header stores it.
//
// `TaskMetadata` (task_metadata.h) is the public record: an id, an optional
// label, an optional session and the spawn location, 56 bytes with the two
// `std::optional` flags and their padding. Every task header carries one, and
// every `Co` frame reserves room for a header (co.h), so the header keeps the
// same facts (and the lane a foreground task runs on) in 16 bytes, the id and
// one word, storing nothing a task does not have:
//   * what is fixed per spawn site (the location, the label, the lane) is one
//     interned `SpawnSite` record, one per distinct combination
//     (InternSpawnSite), so a pointer or a 12-bit table index instead of
//     three fields;
//   * a session (most of the session layer's tasks have one) shares the word
//     with the site's table index; only a session too large for it (2^49 and
//     up) or a site beyond the static table (past 3,072 distinct sites) makes
//     a small record of its own (an allocation besides the task's block).
// Hot paths read `id` directly; reports, labeled and foreground scheduling
// and `Task::metadata()` decode the word.
//
// Example:
//
//   header.metadata.set_spawn(location, TaskLabel("gc"), /*lane=*/0);
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

#include "scheduler/internal/intern_table.h"
#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"

namespace simsched::internal {

// SpawnSite
//
// What tasks spawned at one call site share: where the spawn was written, the
// label (an interned name, null for none) and the lane (foreground tasks; 0
// otherwise). Interned: equal sites are one record for the process lifetime.
struct SpawnSite {
  SourceLocation location;
  const std::string* label = nullptr;
  uint32_t lane = 0;
};

// InternSpawnSite()
//
// The interned record for (`location`, `label`, `lane`): the same one for
// equal arguments (same file and function name strings, same line), so the
// table is as large as the program's distinct spawn sites. Thread-safe; a
// per-thread cache makes a repeated site a few compares. The first
// kInternedSpawnSites sites live in a static table (interning one allocates
// nothing), the rest on the heap.
const SpawnSite* InternSpawnSite(const SourceLocation& location, const std::string* label,
                                 uint32_t lane);
inline constexpr size_t kInternedSpawnSites = 4096;  // a power of two

// The table's hash and equality: the same file and function name strings (by
// address), line, label and lane.
struct SpawnSiteHash {
  size_t operator()(const SpawnSite& site) const {
    return reinterpret_cast<uintptr_t>(site.location.file_name()) * 0x9E3779B97F4A7C15ULL ^
           reinterpret_cast<uintptr_t>(site.location.function_name()) ^ site.location.line() ^
           (reinterpret_cast<uintptr_t>(site.label) >> 4) ^ site.lane;
  }
};
struct SpawnSiteEq {
  bool operator()(const SpawnSite& a, const SpawnSite& b) const {
    return a.location.file_name() == b.location.file_name() &&
           a.location.function_name() == b.location.function_name() &&
           a.location.line() == b.location.line() && a.label == b.label && a.lane == b.lane;
  }
};
using SpawnSiteTable = InternTable<SpawnSite, kInternedSpawnSites, SpawnSiteHash, SpawnSiteEq>;
// The table: `SpawnSiteIndex` is a site's place in its static part, or -1.
extern constinit SpawnSiteTable spawn_site_table;
inline ptrdiff_t SpawnSiteIndex(const SpawnSite* site) { return spawn_site_table.IndexOf(site); }

// InternLocation()
//
// The interned copy of `location` (the location of its spawn site with no
// label on lane 0).
inline const SourceLocation* InternLocation(const SourceLocation& location);

// The per-thread cache's key: the location's own words where they are its
// whole state (std::source_location's static record and the function name),
// else its fields; and the label and lane. Equal keys are equal sites; equal
// sites with different keys only cost a second cache entry.
struct SpawnSiteKey {
  uintptr_t first = 0;
  uintptr_t second = 0;
  uint32_t line = 0;
  uint32_t lane = 0;
  const std::string* label = nullptr;
  friend bool operator==(const SpawnSiteKey&, const SpawnSiteKey&) = default;
};
inline SpawnSiteKey SpawnSiteKeyOf(const SourceLocation& location, const std::string* label,
                                   uint32_t lane) {
#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT
  static_assert(sizeof(SourceLocation) == 2 * sizeof(uintptr_t) &&
                std::is_trivially_copyable_v<SourceLocation>);
  uintptr_t words[2];
  std::memcpy(words, &location, sizeof(words));
  return SpawnSiteKey{words[0], words[1], 0, lane, label};
#else
  return SpawnSiteKey{reinterpret_cast<uintptr_t>(location.file_name()),
                      reinterpret_cast<uintptr_t>(location.function_name()), location.line(),
                      lane, label};
#endif
}

struct SpawnSiteCacheEntry {
  SpawnSiteKey key;
  const SpawnSite* interned = nullptr;
};
inline constexpr size_t kSpawnSiteCacheSize = 64;
extern thread_local constinit SpawnSiteCacheEntry spawn_site_cache[kSpawnSiteCacheSize];
const SpawnSite* InternSpawnSiteSlow(const SourceLocation& location, const std::string* label,
                                     uint32_t lane);

inline size_t SpawnSiteCacheIndex(const SpawnSiteKey& key) {
  return ((key.first >> 4) ^ (key.second >> 3) ^ key.line ^ key.lane ^
          (reinterpret_cast<uintptr_t>(key.label) >> 4)) %
         kSpawnSiteCacheSize;
}

inline const SpawnSite* InternSpawnSite(const SourceLocation& location, const std::string* label,
                                        uint32_t lane) {
  const SpawnSiteKey key = SpawnSiteKeyOf(location, label, lane);
  const SpawnSiteCacheEntry& entry = spawn_site_cache[SpawnSiteCacheIndex(key)];
  if (entry.key == key && entry.interned != nullptr) [[likely]] return entry.interned;
  return InternSpawnSiteSlow(location, label, lane);
}

inline const SourceLocation* InternLocation(const SourceLocation& location) {
  return &InternSpawnSite(location, nullptr, 0)->location;
}

class PackedTaskMetadata {
 public:
  PackedTaskMetadata() = default;
  PackedTaskMetadata(const PackedTaskMetadata&) = delete;
  PackedTaskMetadata& operator=(const PackedTaskMetadata&) = delete;
  ~PackedTaskMetadata() {
    if ((bits_ & kTagMask) == kRecord) delete record();
  }

  // `TaskId id;` is the last member (below): the task header puts the
  // words a poll reads at its end (task_header.h).

  // Sets the spawn site's three facts at once (one intern): what spawn
  // functions call.
  void set_spawn(const SourceLocation& location, const std::optional<TaskLabel>& label,
                 uint32_t lane) {
    set_site(InternSpawnSite(location, label.has_value() ? label->name_ : nullptr, lane));
  }

  // Where the spawning call was written.
  SourceLocation spawn_location() const {
    const SpawnSite* const s = site();
    return s != nullptr ? s->location : SourceLocation();
  }
  void set_spawn_location(const SourceLocation& location) {
    const SpawnSite* const s = site();
    set_site(InternSpawnSite(location, s != nullptr ? s->label : nullptr,
                             s != nullptr ? s->lane : 0));
  }

  std::optional<TaskLabel> label() const {
    const std::string* const name = label_name();
    if (name == nullptr) return std::nullopt;
    return TaskLabel::FromInterned(name);
  }
  bool has_label() const { return label_name() != nullptr; }
  void set_label(const std::optional<TaskLabel>& label) {
    const SpawnSite* const s = site();
    set_site(InternSpawnSite(s != nullptr ? s->location : SourceLocation(),
                             label.has_value() ? label->name_ : nullptr,
                             s != nullptr ? s->lane : 0));
  }

  // The lane a foreground task runs on (0 for other tasks).
  uint32_t lane() const {
    const SpawnSite* const s = site();
    return s != nullptr ? s->lane : 0;
  }
  void set_lane(uint32_t lane) {
    const SpawnSite* const s = site();
    set_site(InternSpawnSite(s != nullptr ? s->location : SourceLocation(),
                             s != nullptr ? s->label : nullptr, lane));
  }

  std::optional<SessionId> session() const {
    switch (bits_ & kTagMask) {
      case kRecord:
        return record()->session;
      case kInline:
        return SessionId{bits_ >> kSessionShift};
      default:
        return std::nullopt;
    }
  }
  void set_session(const std::optional<SessionId>& session) { Encode(site(), session); }

  // The public record.
  TaskMetadata Unpack() const { return TaskMetadata{id, label(), session(), spawn_location()}; }
  // Same as Unpack().DebugString().
  std::string DebugString() const { return Unpack().DebugString(); }

 private:
  struct SiteAndSession {
    const SpawnSite* site;
    SessionId session;
  };
  // The word's low two bits say what it holds: kSite, a SpawnSite pointer
  // (or null) and no session; kInline, a session (in the bits from
  // kSessionShift) and the site's place in the static table plus one (0:
  // none); kRecord, a SiteAndSession. Sites and records are 8-aligned.
  static constexpr uintptr_t kTagMask = 3;
  static constexpr uintptr_t kSite = 0;
  static constexpr uintptr_t kRecord = 1;
  static constexpr uintptr_t kInline = 2;
  static constexpr int kIndexShift = 2;
  static constexpr int kIndexBits = 13;  // kInternedSpawnSites + 1 values
  static constexpr int kSessionShift = kIndexShift + kIndexBits;
  static constexpr uint64_t kMaxInlineSession = UINT64_MAX >> kSessionShift;
  static_assert(kInternedSpawnSites < (size_t{1} << kIndexBits));
  static_assert(alignof(SpawnSite) >= 4 && alignof(SiteAndSession) >= 4);

  SiteAndSession* record() const { return reinterpret_cast<SiteAndSession*>(bits_ & ~kTagMask); }
  const SpawnSite* site() const {
    switch (bits_ & kTagMask) {
      case kRecord:
        return record()->site;
      case kInline: {
        const uintptr_t index = (bits_ >> kIndexShift) & ((uintptr_t{1} << kIndexBits) - 1);
        return index == 0 ? nullptr : spawn_site_table.At(index - 1);
      }
      default:
        return reinterpret_cast<const SpawnSite*>(bits_);
    }
  }
  const std::string* label_name() const {
    const SpawnSite* const s = site();
    return s != nullptr ? s->label : nullptr;
  }
  void set_site(const SpawnSite* site) {
    if ((bits_ & kTagMask) == kSite) {
      bits_ = reinterpret_cast<uintptr_t>(site);  // the common case: no session
      return;
    }
    Encode(site, session());
  }
  void Encode(const SpawnSite* site, std::optional<SessionId> session) {
    if ((bits_ & kTagMask) == kRecord) {
      SiteAndSession* const r = record();
      if (session.has_value()) {
        r->site = site;
        r->session = *session;
        return;
      }
      delete r;
    }
    const ptrdiff_t index = site == nullptr ? -1 : SpawnSiteIndex(site);
    if (!session.has_value()) {
      bits_ = reinterpret_cast<uintptr_t>(site);
    } else if ((site == nullptr || index >= 0) && session->value <= kMaxInlineSession) {
      // The session layer's common case: no record.
      bits_ = (session->value << kSessionShift) |
              (static_cast<uintptr_t>(index + 1) << kIndexShift) | kInline;
    } else {
      bits_ = reinterpret_cast<uintptr_t>(new SiteAndSession{site, *session}) | kRecord;
    }
  }

  uintptr_t bits_ = 0;

 public:
  // Last, so that it sits beside the task header's hot words.
  TaskId id;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_PACKED_TASK_METADATA_H_
