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

thread_local constinit LocationCacheEntry location_cache[kLocationCacheSize];

namespace {

// The interned locations: a static open-addressing table (no allocation, so
// spawning from a new call site allocates nothing but the task's block), and
// for a program with more call sites than it holds, a heap map beyond it.
constexpr size_t kInternedSlots = 4096;  // a power of two
// A std::mutex, not absl::Mutex: ThreadSanitizer sees through pthreads, not
// through the uninstrumented system Abseil.
constinit std::mutex interned_mu;
constinit SourceLocation interned_slots[kInternedSlots];
constinit bool interned_used[kInternedSlots] = {};
size_t interned_count = 0;

bool SameLocation(const SourceLocation& a, const char* file, const char* function,
                  uint32_t line) {
  return a.file_name() == file && a.function_name() == function && a.line() == line;
}

}  // namespace

const SourceLocation* InternLocationSlow(const SourceLocation& location) {
  const char* const file = location.file_name();
  const char* const function = location.function_name();
  const uint32_t line = location.line();
  const SourceLocation* interned = nullptr;
  {
    std::lock_guard<std::mutex> lock(interned_mu);
    size_t i = (reinterpret_cast<uintptr_t>(file) * 0x9E3779B97F4A7C15ULL ^
                reinterpret_cast<uintptr_t>(function) ^ line) >>
               20;
    for (;; ++i) {
      i &= kInternedSlots - 1;
      if (!interned_used[i]) {
        // Kept at most 3/4 full so that probes stay short.
        if (interned_count < kInternedSlots / 4 * 3) {
          interned_slots[i] = location;
          interned_used[i] = true;
          ++interned_count;
          interned = &interned_slots[i];
        }
        break;
      }
      if (SameLocation(interned_slots[i], file, function, line)) {
        interned = &interned_slots[i];
        break;
      }
    }
    if (interned == nullptr) {
      // Leaked on purpose, like the label names: headers may outlive main.
      using Key = std::tuple<const char*, const char*, uint32_t>;
      static auto* overflow = new absl::node_hash_map<Key, SourceLocation>;
      interned = &overflow->try_emplace(Key(file, function, line), location).first->second;
    }
  }
  const LocationKey key = LocationKeyOf(location);
  location_cache[LocationCacheIndex(key)] = LocationCacheEntry{key, interned};
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
