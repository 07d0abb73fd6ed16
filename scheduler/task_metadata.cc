#include "scheduler/task_metadata.h"

#include <string>

#include "absl/container/node_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

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
