#include "scheduler/internal/schedule_strategy.h"

#include <algorithm>

namespace simsched::internal {

void ScheduleStrategy::Init(const StrategySpec& concrete, Rng& rng) {
  spec_ = concrete;
  change_points_.clear();
  next_change_ = 0;
  fair_after_ = UINT64_MAX;
  if (spec_.kind != StrategyKind::kPct) return;
  const uint64_t k =
      spec_.run_length != 0 ? spec_.run_length : StrategySpec::kDefaultRunLength;
  // D-1 change points, each uniform in [1, k] (as in the paper; two may
  // coincide, which demotes two tasks at that step).
  for (uint32_t i = 1; i < spec_.depth; ++i) change_points_.push_back(1 + rng.Below(k));
  std::sort(change_points_.begin(), change_points_.end());
  // Strict priorities starve everything behind a task that spins (Yield in a
  // loop waiting for another task); PCT's guarantee assumes terminating
  // programs. Past ten times the expected length, pick uniformly instead.
  fair_after_ = 10 * k + 1000;
}

}  // namespace simsched::internal
