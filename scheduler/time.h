// File: scheduler/time.h
// -----------------------------------------------------------------------------
//
// simsched's time types and the one place where time arithmetic is done.
// A deadline is `now + duration`; at the edges of `Instant`'s range that sum
// overflows (undefined behaviour for the signed count underneath), and a
// "sleep forever" written as `Sleep(Duration::max())` would wrap into the
// past and return at once. `DeadlineAfter` saturates instead: forever means
// forever. `Instant::max()` is the end of time, and a timer set for it never
// fires on any simsched scheduler.
//
// This header defines:
//   * `simsched::Clock`, `Instant`, `Duration`
//   * `simsched::DeadlineAfter(now, duration)`   saturating `now + duration`
//   * `simsched::kEndOfTime`                     `Instant::max()`
//
// Example:
//
//   const simsched::Instant deadline =
//       simsched::DeadlineAfter(scheduler.Now(), simsched::Duration::max());
//   // deadline == simsched::kEndOfTime, never a wrapped, past instant.

#ifndef SIMSCHED_SCHEDULER_TIME_H_
#define SIMSCHED_SCHEDULER_TIME_H_

#include <chrono>
#include <cstdint>

namespace simsched {

using Clock = std::chrono::steady_clock;
using Instant = Clock::time_point;
using Duration = std::chrono::nanoseconds;

// The end of time: a deadline that is never reached.
inline constexpr Instant kEndOfTime = Instant::max();

// DeadlineAfter()
//
// `now + duration`, clamped to [Instant::min(), Instant::max()].
constexpr Instant DeadlineAfter(Instant now, Duration duration) {
  if (duration > Duration::zero() && now > Instant::max() - duration) return Instant::max();
  if (duration < Duration::zero() && now < Instant::min() - duration) return Instant::min();
  return now + duration;
}

namespace internal {

// `a + b`, clamped to UINT64_MAX (step counts and budgets).
constexpr uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace internal
}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_TIME_H_
