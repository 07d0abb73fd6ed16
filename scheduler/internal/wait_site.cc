#include "scheduler/internal/wait_site.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/container/node_hash_map.h"
#include "absl/container/node_hash_set.h"

namespace simsched {
namespace internal {

thread_local constinit WaitSiteCache wait_site_cache = EmptyWaitSiteCache();
thread_local constinit WaitSiteCache wait_site_target_cache = EmptyWaitSiteCache();

namespace {

// The interned wait sites: a static open-addressing table (no allocation, so
// a new call site allocates nothing), and for a program with more distinct
// sites than it holds, a heap map beyond it. Under a std::mutex, not
// absl::Mutex: ThreadSanitizer sees through pthreads, not through the
// uninstrumented system Abseil (see task_metadata.cc).
constinit std::mutex interned_mu;
constinit PackedWaitSite interned_sites[kInternedWaitSites];
constinit bool interned_used[kInternedWaitSites] = {};
size_t interned_count = 0;

// The table's hash mixes the addresses in too: the per-thread cache's hash
// (the line) alone would put every file's site on line 12 together.
size_t TableHash(const PackedWaitSite& site) {
  uintptr_t where0;
  const SourceLocation where = site.where();
  std::memcpy(&where0, &where, sizeof(where0));
  const std::string_view what = site.what();
  return (site.Hash() ^ (where0 >> 3) ^ (reinterpret_cast<uintptr_t>(what.data()) >> 3)) *
         0x9E3779B97F4A7C15ULL;
}

struct PackedWaitSiteHash {
  size_t operator()(const PackedWaitSite& site) const { return TableHash(site); }
};

}  // namespace

void PackedWaitSite::SetWhatOutOfLine(std::string_view what) {
  // Interned copies, leaked on purpose like label names (a report may read
  // one after its task is gone). Only descriptions of 65,535 bytes or more
  // come here.
  static std::mutex* mu = new std::mutex;
  static auto* copies = new absl::node_hash_set<std::string>;
  std::lock_guard<std::mutex> lock(*mu);
  what_ = reinterpret_cast<const char*>(&*copies->emplace(what).first);
}

const PackedWaitSite* InternWaitSiteSlow(std::string_view what, SourceLocation where,
                                         const WaitTarget* target) {
  const PackedWaitSite key(what, where, target);
  const PackedWaitSite* interned = nullptr;
  {
    std::lock_guard<std::mutex> lock(interned_mu);
    size_t i = TableHash(key) >> 20;
    for (;; ++i) {
      i &= kInternedWaitSites - 1;
      if (!interned_used[i]) {
        // Kept at most 3/4 full so that probes stay short.
        if (interned_count < kInternedWaitSites / 4 * 3) {
          interned_sites[i] = key;
          interned_used[i] = true;
          ++interned_count;
          interned = &interned_sites[i];
        }
        break;
      }
      if (interned_sites[i] == key) {
        interned = &interned_sites[i];
        break;
      }
    }
    if (interned == nullptr) {
      // Leaked on purpose: headers may point at a record after main returns.
      static auto* overflow = new absl::node_hash_set<PackedWaitSite, PackedWaitSiteHash>;
      interned = &*overflow->insert(key).first;
    }
  }
  // Cached only where the inline lookup looks: at the hash of the caller's
  // description address (an out-of-line description's copy is found here,
  // under the lock, every time).
  if (what.size() < PackedWaitSite::kWhatOutOfLine) {
    (target == nullptr ? wait_site_cache : wait_site_target_cache)[key.Hash() % kWaitSiteCacheSize] =
        interned;
  }
  return interned;
}

}  // namespace internal
}  // namespace simsched
