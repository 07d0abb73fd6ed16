#include "scheduler/task_metadata.h"

#include <cstdint>

#include <string>

#include <tuple>

#include "absl/container/node_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "scheduler/internal/packed_task_metadata.h"

namespace simsched {
namespace {

// Interned label names. Leaked on purpose: labels are often namespace-scope
// constants whose destruction order we do not control.
const std::string* InternLabel(std::string_view name) {
  static absl::Mutex* mu = new absl::Mutex;
  static auto* names = new absl::node_hash_set<std::string>;
  absl::MutexLock lock(mu);
  return &*names->emplace(name).first;
}

}  // namespace

namespace internal {

thread_local constinit LocationCacheEntry location_cache[kLocationCacheSize];

const SourceLocation* InternLocationSlow(const SourceLocation& location) {
  // Leaked on purpose, like the label names: headers may outlive main.
  using Key = std::tuple<const char*, const char*, uint32_t>;
  static absl::Mutex* mu = new absl::Mutex;
  static auto* locations = new absl::node_hash_map<Key, SourceLocation>;
  const Key key(location.file_name(), location.function_name(), location.line());
  const SourceLocation* interned;
  {
    absl::MutexLock lock(mu);
    interned = &locations->try_emplace(key, location).first->second;
  }
  const auto [file, function, line] = key;
  location_cache[LocationCacheIndex(file, function, line)] =
      LocationCacheEntry{file, function, line, interned};
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
