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
  // A hash of the description's address and the location's first word (the
  // compiler's static record of the call site, or the file name).
  size_t Hash() const {
    return (reinterpret_cast<uintptr_t>(what_) >> 3) ^ (where_[0] >> 4);
  }

  static constexpr int kWhereWords = sizeof(SourceLocation) / sizeof(uintptr_t);

  static constexpr int kWhatLengthShift = 48;
  static constexpr uintptr_t kAddressMask = (uintptr_t{1} << kWhatLengthShift) - 1;
  static constexpr size_t kWhatOutOfLine = 0xffff;
  static constexpr int kWhereFunctionWord = 1;  // file or std::source_location first

 private:
  friend const PackedWaitSite* InternWaitSite(std::string_view what, const SourceLocation& where,
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

// The per-thread cache: pointers to interned records, compared against the
// records' own words (no key copy), indexed by PackedWaitSite::Hash().
inline constexpr size_t kWaitSiteCacheSize = 64;
extern thread_local constinit const PackedWaitSite* wait_site_cache[kWaitSiteCacheSize];
// Out of line, with the wait's words as scalars (no key is built on the
// caller's stack, so the inline fast path needs no frame).
[[gnu::noinline]] const PackedWaitSite* InternWaitSiteSlow(std::string_view what,
                                                           SourceLocation where,
                                                           const WaitTarget* target);

inline const PackedWaitSite* InternWaitSite(std::string_view what, const SourceLocation& where,
                                            const WaitTarget* target) {
  // Compared word by word in registers (W3's mailbox and every Sleep come
  // here once a wait).
  uintptr_t words[PackedWaitSite::kWhereWords];
  std::memcpy(words, &where, sizeof(words));
  const size_t length = what.size();
  const PackedWaitSite* cached =
      wait_site_cache[((reinterpret_cast<uintptr_t>(what.data()) >> 3) ^ (words[0] >> 4)) %
                      kWaitSiteCacheSize];
  if (cached != nullptr && length < PackedWaitSite::kWhatOutOfLine) [[likely]] {
    const uintptr_t function_word = words[PackedWaitSite::kWhereFunctionWord] |
                                    (uintptr_t{length} << PackedWaitSite::kWhatLengthShift);
    bool same = cached->what_ == what.data() && cached->target_ == target;
    for (int i = 0; i < PackedWaitSite::kWhereWords; ++i) {
      same = same && cached->where_[i] ==
                         (i == PackedWaitSite::kWhereFunctionWord ? function_word : words[i]);
    }
    if (same) [[likely]] return cached;
  }
  return InternWaitSiteSlow(what, where, target);
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_WAIT_SITE_H_
