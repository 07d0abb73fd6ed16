#include "scheduler/task_metadata.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/intern_table.h"
#include "scheduler/internal/packed_task_metadata.h"

namespace simsched {
namespace internal {

thread_local constinit SpawnSiteCacheEntry spawn_site_cache[kSpawnSiteCacheSize];
constinit SpawnSiteTable spawn_site_table;

const SpawnSite* InternSpawnSiteSlow(const SourceLocation& location, const std::string* label,
                                     uint32_t lane) {
  const SpawnSite* const interned = spawn_site_table.Intern(SpawnSite{location, label, lane});
  const SpawnSiteKey key = SpawnSiteKeyOf(location, label, lane);
  spawn_site_cache[SpawnSiteCacheIndex(key)] = SpawnSiteCacheEntry{key, interned};
  return interned;
}

}  // namespace internal

TaskLabel::TaskLabel(std::string_view name) : name_(internal::InternString(name)) {}

std::string FormatLocation(const SourceLocation& location) {
  if (location.line() == 0) return "<unknown location>";
  return absl::StrCat(location.file_name(), ":", location.line(), " (", location.function_name(),
                      ")");
}

std::string TaskMetadata::DebugString() const {
  std::string out = absl::StrCat("task ", id.value);
  if (label.has_value()) absl::StrAppend(&out, " \"", std::string(label->name()), "\"");
  if (session.has_value()) absl::StrAppend(&out, " (session ", session->value, ")");
  absl::StrAppend(&out, " spawned at ", FormatLocation(spawn_location));
  return out;
}

}  // namespace simsched
