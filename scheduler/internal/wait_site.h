// Internal: what a suspended task waits on (WaitSite) and its packed record
// (PackedWaitSite), which lives outside the task header.
//
// The task header keeps one word for the wait: a pointer to a PackedWaitSite
// (in the awaiter, in the waiting frame, for as long as the task waits; or
// an interned one per call site, for `DescribeWait(what, where)`), or the id
// of an awaited task. See docs/performance.md, Memory, and
// scheduler/wait_record.h for the public side.
//
//   internal::PackedWaitSite site(location);   // in an awaiter
//   site.SetWhat(name);                        // before recording it
//   internal::current_task->SetWaitRecord(&site);

#ifndef SIMSCHED_SCHEDULER_INTERNAL_WAIT_SITE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_WAIT_SITE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "scheduler/source_location.h"
#include "scheduler/task_metadata.h"

namespace simsched {

class WaitTarget;  // scheduler/waker.h

// WaitSite
//
// What a suspended task waits on and where its `co_await` was written, for
// deadlock and leak reports. `what` must stay valid while the task is
// suspended (a string literal, or a name owned by the awaited object).
struct WaitSite {
  std::string_view what;
  SourceLocation where;
  // Set when the task waits for another task to finish (`co_await task`).
  TaskId awaited_task;
  // The object waited on, when it can say who holds it (a Mutex, a Channel);
  // alive while the task is suspended.
  const WaitTarget* target = nullptr;
};

namespace internal {

// PackedWaitSite
//
// A wait site in four words (three with a compact SourceLocation plus the
// target): the description's length rides in the top 16 bits of the
// location's function-name address, a string the compiler placed in the
// program's image (SourceLocation holds nothing else), and images are mapped
// below 2^47 on every 64-bit target we build for. A description of 65,535
// bytes or more is an interned copy: `what` then points at its
// `std::string`, and the length reads kWhatOutOfLine. Trivially copyable
// and destructible: interned ones live in a static table.
class PackedWaitSite {
 public:
  constexpr PackedWaitSite() = default;
  explicit PackedWaitSite(const SourceLocation& where) {
    std::memcpy(where_, &where, sizeof(where_));
  }
  PackedWaitSite(std::string_view what, const SourceLocation& where,
                 const WaitTarget* target = nullptr)
      : PackedWaitSite(where) {
    target_ = target;
    SetWhat(what);
  }

  // Sets the description (keeping the location and target).
  void SetWhat(std::string_view what) {
    const size_t length = what.size();
    where_[kWhereFunctionWord] = (where_[kWhereFunctionWord] & kAddressMask) |
                                 (uintptr_t{length < kWhatOutOfLine ? length : kWhatOutOfLine}
                                  << kWhatLengthShift);
    what_ = what.data();
    if (length >= kWhatOutOfLine) [[unlikely]] SetWhatOutOfLine(what);
  }
  void set_target(const WaitTarget* target) { target_ = target; }

  std::string_view what() const;
  SourceLocation where() const {
    uintptr_t where[kWhereWords];
    std::memcpy(where, where_, sizeof(where));
    where[kWhereFunctionWord] &= kAddressMask;
    SourceLocation location;
    // A site that never recorded a location holds zeros, not a SourceLocation.
    if (where[kWhereFunctionWord] != 0) std::memcpy(&location, where, sizeof(where));
    return location;
  }
  const WaitTarget* target() const { return target_; }
  WaitSite Unpack() const { return WaitSite{what(), where(), TaskId{}, target_}; }

  friend bool operator==(const PackedWaitSite&, const PackedWaitSite&) = default;
  // The per-thread cache's hash: where SourceLocation is compact, the call
  // site's line (one load from the compiler's static record of the site,
  // and no arithmetic but the slot's mask); otherwise of the description's
  // address and the location's first word (the file name).
  size_t Hash() const { return HashOf(what_, where()); }
  static size_t HashOf(const char* what, const SourceLocation& where) {
#if SIMSCHED_SOURCE_LOCATION_IS_COMPACT
    static_cast<void>(what);
    return where.line();
#else
    uintptr_t where0;
    std::memcpy(&where0, &where, sizeof(where0));
    return (reinterpret_cast<uintptr_t>(what) ^ where0) >> 3;
#endif
  }

  // A record no lookup matches (its description is an address no caller
  // passes): what an empty cache slot points at, so the lookup needs no
  // null check.
  struct NeverMatchesTag {};
  constexpr explicit PackedWaitSite(NeverMatchesTag, const char* unique_what)
      : what_(unique_what) {}

  static constexpr int kWhereWords = sizeof(SourceLocation) / sizeof(uintptr_t);

  static constexpr int kWhatLengthShift = 48;
  static constexpr uintptr_t kAddressMask = (uintptr_t{1} << kWhatLengthShift) - 1;
  static constexpr size_t kWhatOutOfLine = 0xffff;
  static constexpr int kWhereFunctionWord = 1;  // file or std::source_location first

 private:
  friend const PackedWaitSite* FindCachedWaitSite(std::string_view what,
                                                  const SourceLocation& where,
                                                  const WaitTarget* target);
  static_assert(sizeof(uintptr_t) == 8 && sizeof(SourceLocation) % sizeof(uintptr_t) == 0 &&
                    std::is_trivially_copyable_v<SourceLocation>,
                "the wait site packing assumes 64-bit addresses");
  [[gnu::cold, gnu::noinline]] void SetWhatOutOfLine(std::string_view what);

  const char* what_ = nullptr;
  uintptr_t where_[kWhereWords] = {};  // a SourceLocation, packed as above
  const WaitTarget* target_ = nullptr;
};
static_assert(std::is_trivially_copyable_v<PackedWaitSite> &&
              std::is_trivially_destructible_v<PackedWaitSite>);

inline std::string_view PackedWaitSite::what() const {
  const size_t length = where_[kWhereFunctionWord] >> kWhatLengthShift;
  if (length == kWhatOutOfLine) [[unlikely]] {
    return *reinterpret_cast<const std::string*>(what_);
  }
  return std::string_view(what_ == nullptr ? "" : what_, length);
}

// InternWaitSite()
//
// The interned record for (`what`, `where`, `target`): the same one for
// equal arguments (same string addresses and length, same location words,
// same target), so the table grows with the program's distinct sites, like
// the spawn sites (internal/packed_task_metadata.h). Thread-safe; a
// per-thread cache makes a repeated site a few compares. The first
// kInternedWaitSites live in a static table, the rest on the heap. Never
// freed: a task's header may point at one at any time.
const PackedWaitSite* InternWaitSite(std::string_view what, const SourceLocation& where,
                                     const WaitTarget* target);
inline constexpr size_t kInternedWaitSites = 4096;  // a power of two

// The per-thread caches: pointers to interned records, compared against the
// records' own words (no key copy), indexed by PackedWaitSite::Hash(); one
// for sites without a target (so their lookup compares no target) and one
// for sites with one. An empty slot points at kNeverMatchingWaitSite.
inline constexpr size_t kWaitSiteCacheSize = 64;
inline constexpr char kNeverMatchingWhat[1] = {};
inline constexpr PackedWaitSite kNeverMatchingWaitSite(PackedWaitSite::NeverMatchesTag{},
                                                       kNeverMatchingWhat);
using WaitSiteCache = std::array<const PackedWaitSite*, kWaitSiteCacheSize>;
constexpr WaitSiteCache EmptyWaitSiteCache() {
  WaitSiteCache cache{};
  for (const PackedWaitSite*& slot : cache) slot = &kNeverMatchingWaitSite;
  return cache;
}
extern thread_local constinit WaitSiteCache wait_site_cache;
extern thread_local constinit WaitSiteCache wait_site_target_cache;
// Out of line, with the wait's words as scalars (no key is built on the
// caller's stack).
[[gnu::noinline]] const PackedWaitSite* InternWaitSiteSlow(std::string_view what,
                                                           SourceLocation where,
                                                           const WaitTarget* target);

// FindCachedWaitSite()
//
// The interned record for (`what`, `where`, `target`) if this thread's cache
// holds it, else null: the slot from the location's line, then three
// compares (four with a target), no call. `DescribeWait` (scheduler/waker.h) runs this inline and leaves the
// miss to a cold function it tail-calls, so a custom awaitable's
// `await_suspend` that ends with it needs no stack frame (W3's mailbox:
// docs/performance.md).
inline const PackedWaitSite* FindCachedWaitSite(std::string_view what,
                                                const SourceLocation& where,
                                                const WaitTarget* target) {
  uintptr_t words[PackedWaitSite::kWhereWords];
  std::memcpy(words, &where, sizeof(words));
  const size_t length = what.size();
  const size_t slot = PackedWaitSite::HashOf(what.data(), where) % kWaitSiteCacheSize;
  // Without a target (known at compile time for DescribeWait(what, where)),
  // the target-less cache holds only records whose target is null.
  const PackedWaitSite* cached =
      target == nullptr ? wait_site_cache[slot] : wait_site_target_cache[slot];
  // A description of kWhatOutOfLine bytes or more is never cached (its
  // record points at a copy), and a length that large would carry into the
  // compared word: such a site always misses.
  if (length >= PackedWaitSite::kWhatOutOfLine) [[unlikely]] return nullptr;
  const uintptr_t function_word = words[PackedWaitSite::kWhereFunctionWord] |
                                  (uintptr_t{length} << PackedWaitSite::kWhatLengthShift);
  bool same = cached->what_ == what.data() && (target == nullptr || cached->target_ == target);
  for (int i = 0; i < PackedWaitSite::kWhereWords; ++i) {
    same = same && cached->where_[i] ==
                       (i == PackedWaitSite::kWhereFunctionWord ? function_word : words[i]);
  }
  return same ? cached : nullptr;
}

inline const PackedWaitSite* InternWaitSite(std::string_view what, const SourceLocation& where,
                                            const WaitTarget* target) {
  if (const PackedWaitSite* cached = FindCachedWaitSite(what, where, target)) [[likely]] {
    return cached;
  }
  return InternWaitSiteSlow(what, where, target);
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_WAIT_SITE_H_
