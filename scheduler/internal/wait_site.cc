#include "scheduler/internal/wait_site.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>

#include "scheduler/internal/intern_table.h"

namespace simsched {
namespace internal {

thread_local constinit WaitSiteCache wait_site_cache = EmptyWaitSiteCache();
thread_local constinit WaitSiteCache wait_site_target_cache = EmptyWaitSiteCache();

namespace {

// The table's hash mixes the addresses in too: the per-thread cache's hash
// (the line) alone would put every file's site on line 12 together.
struct WaitSiteHash {
  size_t operator()(const PackedWaitSite& site) const {
    uintptr_t where0;
    const SourceLocation where = site.where();
    std::memcpy(&where0, &where, sizeof(where0));
    const std::string_view what = site.what();
    return (site.Hash() ^ (where0 >> 3) ^ (reinterpret_cast<uintptr_t>(what.data()) >> 3)) *
           0x9E3779B97F4A7C15ULL;
  }
};

constinit InternTable<PackedWaitSite, kInternedWaitSites, WaitSiteHash,
                      std::equal_to<PackedWaitSite>>
    wait_site_table;

}  // namespace

void PackedWaitSite::SetWhatOutOfLine(std::string_view what) {
  // Only descriptions of 65,535 bytes or more come here; interned, since a
  // report may read one after its task is gone.
  what_ = reinterpret_cast<const char*>(InternString(what));
}

const PackedWaitSite* InternWaitSiteSlow(std::string_view what, SourceLocation where,
                                         const WaitTarget* target) {
  const PackedWaitSite key(what, where, target);
  const PackedWaitSite* const interned = wait_site_table.Intern(key);
  // Cached only where the inline lookup looks: at the hash of the caller's
  // description address (an out-of-line description's copy is found here,
  // under the lock, every time).
  if (what.size() < PackedWaitSite::kWhatOutOfLine) {
    (target == nullptr ? wait_site_cache
                       : wait_site_target_cache)[key.Hash() % kWaitSiteCacheSize] = interned;
  }
  return interned;
}

}  // namespace internal
}  // namespace simsched
