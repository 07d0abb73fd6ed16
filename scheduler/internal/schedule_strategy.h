// File: scheduler/internal/schedule_strategy.h
// -----------------------------------------------------------------------------
//
// Internal to the TestScheduler: the per-run state of its strategy
// (scheduler/strategy.h) and the two hooks the scheduler calls, one when a
// task is queued and one when a step picks. Uniform random picking never
// reaches this class (the scheduler's hot path checks `uniform()` once).
//
// Task priorities live in the header's scheduler-owned `enqueue_seq`:
//   * fifo: the enqueue counter (the smallest runs first);
//   * pct:  a random priority, drawn the first time the task is queued and
//           kept; a change point rewrites it to a value below every initial
//           one (the largest runs first);
//   * pos:  a random priority drawn every time the task is queued (every new
//           event), kept while it waits (the largest runs first).
// Zero means "not drawn yet"; drawn priorities are never zero.
//
// Example (inside TestScheduler):
//
//   strategy_.Init(spec, seed);
//   if (!strategy_.uniform()) strategy_.OnEnqueue(*task, rng_);

#ifndef SIMSCHED_SCHEDULER_INTERNAL_SCHEDULE_STRATEGY_H_
#define SIMSCHED_SCHEDULER_INTERNAL_SCHEDULE_STRATEGY_H_

#include <cstdint>
#include <vector>

#include "scheduler/internal/task_header.h"
#include "scheduler/internal/top_priorities.h"
#include "scheduler/strategy.h"
#include "sim/random.h"

namespace simsched::internal {

class ScheduleStrategy {
 public:
  // Sets up a concrete (resolved, not mix) strategy, from scratch (a reused
  // scheduler calls it again). PCT draws its change points from `rng` here,
  // before any task runs.
  void Init(const StrategySpec& concrete, Rng& rng);

  const StrategySpec& spec() const { return spec_; }
  bool uniform() const { return spec_.kind == StrategyKind::kRandom; }
  bool fifo() const { return spec_.kind == StrategyKind::kFifo; }

  // Priority strategies pick the candidate with the largest priority, until
  // a PCT run outlives `fair_after_` steps (a spin loop under strict
  // priorities would never end); from then on they pick uniformly.
  bool ByPriority(uint64_t step) const { return step <= priority_until_; }

  [[gnu::always_inline]] void OnEnqueue(TaskHeader& task, Rng& rng) {
    switch (spec_.kind) {
      case StrategyKind::kFifo: task.enqueue_seq = enqueue_counter_++; break;
      case StrategyKind::kPct: OnEnqueueAs<StrategyKind::kPct>(task, rng); break;
      case StrategyKind::kPos: OnEnqueueAs<StrategyKind::kPos>(task, rng); break;
      default: break;
    }
  }
  // OnEnqueue() for a caller that knows the strategy is `kKind` (PCT or POS):
  // the scheduler's fast step.
  template <StrategyKind kKind>
  [[gnu::always_inline]] void OnEnqueueAs(TaskHeader& task, Rng& rng) {
    static_assert(kKind == StrategyKind::kPct || kKind == StrategyKind::kPos);
    // PCT keeps a task's priority once drawn; POS draws on every enqueue.
    if (kKind == StrategyKind::kPos || task.enqueue_seq == 0) task.enqueue_seq = DrawPriority(rng);
  }

  // PCT and POS: the scheduler may pick the background queue's best entry
  // without checking change points or the end of priority picks while its
  // step count (steps taken) is below this: the step it takes, steps + 1,
  // is then a priority step and no change point. A change point already
  // passed (on a step that picked nothing, BlockOn's own poll) never comes.
  uint64_t FastPriorityStepLimit(uint64_t steps) const {
    uint64_t limit = priority_until_;
    if (next_change_step_ > steps && next_change_step_ - 1 < limit) limit = next_change_step_ - 1;
    return limit;
  }

  // PCT: if `step` is a change point, demotes `task` (the one about to run
  // it) to that change point's low priority and returns true: the scheduler
  // then picks again. Several change points on one step demote in turn.
  bool DemoteAtChangePoint(uint64_t step, TaskHeader& task) {
    if (step != next_change_step_) [[likely]] return false;
    // As in the paper, change point k_i carries priority i (1..D-1, all below
    // the initial priorities), and the k_i are drawn independently: which
    // demoted task ranks higher is random, not fixed by the time order.
    task.enqueue_seq = change_points_[next_change_].priority;
    ++next_change_;
    next_change_step_ = NextChangeStep();
    return true;
  }

  // PCT and POS: the background queue's largest priorities, kept between
  // picks (reset by Init, so a reused scheduler starts from nothing).
  TopPriorities& background_top() { return background_top_; }

  struct ChangePoint {
    uint64_t step;      // 1-based
    uint64_t priority;  // 1..D-1
  };
  // Sorted by step (ties: by priority, lower first).
  const std::vector<ChangePoint>& change_points() const { return change_points_; }

 private:
  // The step of the next change point not yet used; 0 (never a step) when
  // none is left.
  uint64_t NextChangeStep() const {
    return next_change_ < change_points_.size() ? change_points_[next_change_].step : 0;
  }

  uint64_t DrawPriority(Rng& rng) const {
    // Above every demoted priority (1..D-1) and never zero.
    return spec_.depth + (rng.Next64() >> 2);
  }

  StrategySpec spec_;
  uint64_t enqueue_counter_ = 1;
  std::vector<ChangePoint> change_points_;
  size_t next_change_ = 0;
  uint64_t next_change_step_ = 0;  // NextChangeStep(), checked on every priority pick
  uint64_t fair_after_ = UINT64_MAX;
  // The last step picked by priority: fair_after_ under PCT and POS, 0
  // (none) otherwise.
  uint64_t priority_until_ = 0;
  TopPriorities background_top_;
};

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_SCHEDULE_STRATEGY_H_
