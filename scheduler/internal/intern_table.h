// Internal: the process-wide tables that intern call-site records (spawn
// sites, wait sites) and long strings (label names, long wait descriptions).
//
// An interned record or string lives at one address for the life of the
// process (never freed: a task header may point at one after main returns),
// and equal keys give the same address, so records compare by pointer and
// the tables grow with the program's distinct call sites, not with its tasks.
//
//   constinit InternTable<SpawnSite, 4096, SpawnSiteHash, SpawnSiteEq> table;
//   const SpawnSite* site = table.Intern(SpawnSite{location, label, lane});
//   const std::string* name = InternString("checkout");

#ifndef SIMSCHED_SCHEDULER_INTERNAL_INTERN_TABLE_H_
#define SIMSCHED_SCHEDULER_INTERNAL_INTERN_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/node_hash_set.h"

namespace simsched {
namespace internal {

// InternString()
//
// The interned copy of `text`: one std::string per distinct text, never
// freed. Thread-safe.
const std::string* InternString(std::string_view text);

// InternTable
//
// A static open-addressing table of `kSize` records (a power of two), kept at
// most 3/4 full so that probes stay short, and for a program with more
// distinct records than that, a heap set beyond it. Interning into the static
// part allocates nothing. `Hash` maps a record to a word whose high bits pick
// the first probe; `Eq` says whether two records are the same site.
//
// Under a std::mutex, not absl::Mutex: ThreadSanitizer sees through pthreads,
// not through the uninstrumented system Abseil (it reported an absl::Mutex's
// critical sections here as racing in the pool torture test). Callers keep a
// per-thread cache in front, so the lock is taken once per site and thread.
//
// Declared `constinit` at namespace scope: `Record` must be constexpr
// default-constructible and copy-assignable.
template <typename Record, size_t kSize, typename Hash, typename Eq>
class InternTable {
  static_assert(kSize != 0 && (kSize & (kSize - 1)) == 0, "kSize must be a power of two");

 public:
  constexpr InternTable() = default;
  InternTable(const InternTable&) = delete;
  InternTable& operator=(const InternTable&) = delete;

  // The interned record equal to `key`, added if there is none.
  const Record* Intern(const Record& key) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = Hash{}(key) >> 20;; ++i) {
      i &= kSize - 1;
      if (!used_[i]) {
        if (count_ >= kSize / 4 * 3) break;
        slots_[i] = key;
        used_[i] = true;
        ++count_;
        return &slots_[i];
      }
      if (Eq{}(slots_[i], key)) return &slots_[i];
    }
    // Leaked on purpose, like the records in the static part.
    static auto* overflow = new absl::node_hash_set<Record, Hash, Eq>;
    return &*overflow->insert(key).first;
  }

  // The static part's records are numbered, for callers that store a small
  // index instead of a pointer: IndexOf is a record's place there, or -1 for
  // one on the heap; At(IndexOf(r)) == r.
  ptrdiff_t IndexOf(const Record* record) const {
    const uintptr_t offset =
        reinterpret_cast<uintptr_t>(record) - reinterpret_cast<uintptr_t>(&slots_[0]);
    return offset < sizeof(slots_) ? static_cast<ptrdiff_t>(offset / sizeof(Record)) : -1;
  }
  const Record* At(size_t index) const { return &slots_[index]; }

 private:
  std::mutex mu_;
  Record slots_[kSize] = {};
  bool used_[kSize] = {};
  size_t count_ = 0;
};

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_INTERNAL_INTERN_TABLE_H_
