// Test-only: helpers the Channel tests share.
//
// Example:
//
//   std::optional<int> v = TryRecvValue(ch);  // nullopt when empty or closed
//   EXPECT_EQ(v, 7);

#ifndef SIMSCHED_SIM_INTERNAL_TESTING_CHANNEL_TEST_UTIL_H_
#define SIMSCHED_SIM_INTERNAL_TESTING_CHANNEL_TEST_UTIL_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "sim/channel.h"

namespace simsched::internal {

// Seeds a Channel test repeats its scenario over.
inline constexpr uint64_t kChannelTestSeeds = 20;

// The value TryRecv gives, or nullopt on any error (a failing test reports
// instead of crashing on a non-OK StatusOr).
template <typename T>
std::optional<T> TryRecvValue(Channel<T>& ch) {
  absl::StatusOr<T> v = ch.TryRecv();
  if (!v.ok()) return std::nullopt;
  return std::move(*v);
}

}  // namespace simsched::internal

#endif  // SIMSCHED_SIM_INTERNAL_TESTING_CHANNEL_TEST_UTIL_H_
