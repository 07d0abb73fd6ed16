#include "scheduler/internal/schedule_strategy.h"

#include <algorithm>

namespace simsched::internal {

void ScheduleStrategy::Init(const StrategySpec& concrete, Rng& rng) {
  spec_ = concrete;
  enqueue_counter_ = 1;
  change_points_.clear();
  next_change_ = 0;
  next_change_step_ = 0;
  fair_after_ = UINT64_MAX;
  background_top_.Reset();
  priority_until_ = spec_.kind == StrategyKind::kPos ? UINT64_MAX : 0;
  if (spec_.kind != StrategyKind::kPct) return;
  const uint64_t k =
      spec_.run_length != 0 ? spec_.run_length : StrategySpec::kDefaultRunLength;
  // D-1 change points k_1..k_{D-1}, each uniform in [1, k], k_i carrying
  // priority i (as in the paper; two may coincide, which demotes two tasks at
  // that step). Sorting must not tie the priorities to the time order: an
  // earlier version gave the i-th change point *in time* priority D-i, so a
  // task demoted later could never resume before one demoted earlier, and
  // bugs that need that order were out of PCT's reach.
  for (uint32_t i = 1; i < spec_.depth; ++i) {
    change_points_.push_back({1 + rng.Below(k), i});
  }
  std::sort(change_points_.begin(), change_points_.end(),
            [](const ChangePoint& a, const ChangePoint& b) {
              return a.step != b.step ? a.step < b.step : a.priority < b.priority;
            });
  // Strict priorities starve everything behind a task that spins (Yield in a
  // loop waiting for another task); PCT's guarantee assumes terminating
  // programs. Past ten times the expected length, pick uniformly instead.
  fair_after_ = 10 * k + 1000;
  priority_until_ = fair_after_;
  next_change_step_ = NextChangeStep();
}

}  // namespace simsched::internal
