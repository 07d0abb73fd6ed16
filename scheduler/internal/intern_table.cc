#include "scheduler/internal/intern_table.h"

#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/node_hash_set.h"

namespace simsched {
namespace internal {

const std::string* InternString(std::string_view text) {
  // Leaked on purpose: label names are often namespace-scope constants whose
  // destruction order we do not control, and reports read interned strings
  // after their tasks are gone.
  static std::mutex* mu = new std::mutex;
  static auto* strings = new absl::node_hash_set<std::string>;
  std::lock_guard<std::mutex> lock(*mu);
  return &*strings->emplace(text).first;
}

}  // namespace internal
}  // namespace simsched
