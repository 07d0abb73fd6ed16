#include "scheduler/task_metadata.h"

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <tuple>

#include "absl/container/node_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/packed_task_metadata.h"

namespace simsched {
namespace {

// Interned label names. Leaked on purpose: labels are often namespace-scope
// constants whose destruction order we do not control. Under a std::mutex
// for the reason given at interned_mu below (ThreadSanitizer reported this
// lock's critical sections as racing in the pool torture test).
const std::string* InternLabel(std::string_view name) {
  static std::mutex* mu = new std::mutex;
  static auto* names = new absl::node_hash_set<std::string>;
  std::lock_guard<std::mutex> lock(*mu);
  return &*names->emplace(name).first;
}

}  // namespace

namespace internal {

thread_local constinit SpawnSiteCacheEntry spawn_site_cache[kSpawnSiteCacheSize];
constinit SpawnSite interned_spawn_sites[kInternedSpawnSites];

namespace {

// The interned spawn sites: a static open-addressing table (no allocation,
// so spawning from a new call site allocates nothing but the task's block),
// and for a program with more distinct sites than it holds, a heap map
// beyond it.
// A std::mutex, not absl::Mutex: ThreadSanitizer sees through pthreads, not
// through the uninstrumented system Abseil.
constinit std::mutex interned_mu;
constinit bool interned_used[kInternedSpawnSites] = {};
size_t interned_count = 0;

bool SameSite(const SpawnSite& a, const char* file, const char* function, uint32_t line,
              const std::string* label, uint32_t lane) {
  return a.location.file_name() == file && a.location.function_name() == function &&
         a.location.line() == line && a.label == label && a.lane == lane;
}

}  // namespace

const SpawnSite* InternSpawnSiteSlow(const SourceLocation& location, const std::string* label,
                                     uint32_t lane) {
  const char* const file = location.file_name();
  const char* const function = location.function_name();
  const uint32_t line = location.line();
  const SpawnSite* interned = nullptr;
  {
    std::lock_guard<std::mutex> lock(interned_mu);
    size_t i = (reinterpret_cast<uintptr_t>(file) * 0x9E3779B97F4A7C15ULL ^
                reinterpret_cast<uintptr_t>(function) ^ line ^
                (reinterpret_cast<uintptr_t>(label) >> 4) ^ lane) >>
               20;
    for (;; ++i) {
      i &= kInternedSpawnSites - 1;
      if (!interned_used[i]) {
        // Kept at most 3/4 full so that probes stay short.
        if (interned_count < kInternedSpawnSites / 4 * 3) {
          interned_spawn_sites[i] = SpawnSite{location, label, lane};
          interned_used[i] = true;
          ++interned_count;
          interned = &interned_spawn_sites[i];
        }
        break;
      }
      if (SameSite(interned_spawn_sites[i], file, function, line, label, lane)) {
        interned = &interned_spawn_sites[i];
        break;
      }
    }
    if (interned == nullptr) {
      // Leaked on purpose, like the label names: headers may outlive main.
      using Key = std::tuple<const char*, const char*, uint32_t, const std::string*, uint32_t>;
      static auto* overflow = new absl::node_hash_map<Key, SpawnSite>;
      interned = &overflow
                      ->try_emplace(Key(file, function, line, label, lane),
                                    SpawnSite{location, label, lane})
                      .first->second;
    }
  }
  const SpawnSiteKey key = SpawnSiteKeyOf(location, label, lane);
  spawn_site_cache[SpawnSiteCacheIndex(key)] = SpawnSiteCacheEntry{key, interned};
  return interned;
}

}  // namespace internal

TaskLabel::TaskLabel(std::string_view name) : name_(InternLabel(name)) {}

std::string FormatLocation(const SourceLocation& location) {
  if (location.line() == 0) return "<unknown location>";
  return absl::StrCat(location.file_name(), ":", location.line(), " (",
                      location.function_name(), ")");
}

std::string TaskMetadata::DebugString() const {
  std::string out = absl::StrCat("task ", id.value);
  if (label.has_value()) absl::StrAppend(&out, " \"", std::string(label->name()), "\"");
  if (session.has_value()) absl::StrAppend(&out, " (session ", session->value, ")");
  absl::StrAppend(&out, " spawned at ", FormatLocation(spawn_location));
  return out;
}

}  // namespace simsched
