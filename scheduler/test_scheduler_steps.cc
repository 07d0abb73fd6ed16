// TestScheduler's steps and run loops: the hot path. A step picks a task,
// polls it and re-queues it if it woke itself; the fast steps (FastSteps,
// UniformFastStepLoop) do that for the common case with the fewest checks,
// StepGeneral for every other. Run, RunUntilIdle, Step and BlockOn drive
// them. The general step's pick is test_scheduler_pick.cc, all but its
// common PCT/POS case (PickNextSlow), which stays here: with it in the same
// file g++ compiles the PCT and POS fast steps exactly as before the split.

#include <algorithm>
#include <coroutine>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/pick_lookahead.h"
#include "scheduler/internal/test_scheduler_parts.h"
#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::MixWord;
using internal::TaskHeader;

internal::DirectEnqueueTarget TestScheduler::DirectEnqueueTarget() {
  // Schedule() on the owner thread is exactly this push, after the
  // strategy's enqueue hook under FIFO, PCT and POS (the hook draws from
  // rng_ at the same point of the run either way), when nothing notes why a
  // task was queued (no trace recording); otherwise wakes keep going through
  // Schedule(). Only on the owner thread: a wake from any other must reach
  // Schedule()'s thread check.
  if (options_.record_trace || !OnOwnerThread()) return {};
  if (!uniform_pick_) return {this, nullptr, &TrackDirectEnqueue, this};
  return {this, &background_, nullptr, nullptr};
}

void TestScheduler::TrackDirectEnqueue(void* scheduler, TaskHeader& task) {
  TestScheduler& self = *static_cast<TestScheduler*>(scheduler);
  self.strategy_.OnEnqueue(task, self.rng_);
  self.background_.push_back(&task);
}

// Schedule/ScheduleLabeled/ScheduleForeground without the virtual call and
// the thread check: the task was woken during its own poll, on this thread.
// `kPlain`: a fast step (see StepInline): no trace, the strategy is `kPick`.
template <TestScheduler::FastPick kPick>
[[gnu::always_inline]] inline void TestScheduler::RequeueBackground(TaskHeader* task) {
  // What EnqueueHeader does under this strategy.
  if constexpr (kPick == FastPick::kPct) {
    strategy_.OnEnqueueAs<StrategyKind::kPct>(*task, rng_);
  } else if constexpr (kPick == FastPick::kPos) {
    strategy_.OnEnqueueAs<StrategyKind::kPos>(*task, rng_);
  }
  background_.push_back(task);
}

template <bool kPlain, TestScheduler::FastPick kPick>
[[gnu::always_inline]] inline void TestScheduler::Requeue(TaskHeader* task) {
  if (!kPlain && options_.record_trace) [[unlikely]] {
    wake_notes_.try_emplace(task->metadata.id.value, WakeNote{WakeCause::kItself, TaskId{}});
  }
  if (task->kind() == internal::ScheduleKind::kBackground) [[likely]] {
    if (kPlain) {
      RequeueBackground<kPick>(task);
    } else {
      EnqueueHeader(background_, task);
    }
  } else if (task->kind() == internal::ScheduleKind::kLabeled) {
    EnqueueLabeled(task, *task->metadata.label());
  } else {
    EnqueueOnLane(task);
  }
}

bool TestScheduler::PickNextSlow(TaskHeader*& next, LaneId& lane) {
  if (lane_queued_ == 0 && !background_.empty() && strategy_.ByPriority(steps_ + 1)) [[likely]] {
    // PCT and POS with only background work queued (the common case): what
    // PickByPriority does then, without its generality.
    internal::TopPriorities& top = strategy_.background_top();
    const size_t best = top.Best(background_);
    if (strategy_.DemoteAtChangePoint(steps_ + 1, *background_[best])) [[unlikely]] {
      top.Reset();
      PickByPriority(next, lane, /*main_work=*/true);  // picks again
      return true;
    }
    next = top.Take(background_, best);
    lane = kNoLane;
    return true;
  }
  return PickNextGeneral(next, lane);
}

// One step: polls `task` (picked from `lane`'s queue, or background work for
// kNoLane) and re-queues it if it was woken during the poll. `kPlain`: the
// caller knows the step is a fast one (`fast_pick_` is `kPick`: no trace, no
// cost model) and background work, and the checks for those are left out.
template <bool kPlain, TestScheduler::FastPick kPick, bool kTopLevel>
[[gnu::always_inline]] inline void TestScheduler::RunPicked(TaskHeader* task, LaneId lane) {
  static_assert(kPlain || !kTopLevel);
  ++steps_;
  const uint64_t lane_code = kPlain || lane == kNoLane ? 0 : uint64_t{lane} + 1;
  trace_state_ = MixWord(trace_state_, (task->metadata.id.value << 20) ^ lane_code);
  if (!kPlain && options_.record_trace) [[unlikely]] RecordTraceEntry(*task, lane);
  const LaneId previous_lane =
      kTopLevel ? kNoLane : std::exchange(current_lane_, kPlain ? kNoLane : lane);
  if constexpr (kPlain) {
    // A confined background task (the common case): one state test, and a
    // re-queue that needs no kind check. Any other task returns kNotFast.
    const TaskHeader::PollResult fast = task->PollOnceFast<kTopLevel>();
    if (fast != TaskHeader::PollResult::kNotFast) [[likely]] {
      if (!kTopLevel) current_lane_ = previous_lane;
      if (fast == TaskHeader::PollResult::kRequeue) RequeueBackground<kPick>(task);
      return;
    }
    if (kTopLevel) TaskHeader::EndFastPolls();  // the general poll below sets its own
  }
  const TaskId polled = task->metadata.id;  // the header may be gone after the poll
  // Tasks of this scheduler are confined to its thread unless it allows
  // parking (or a decorator in front of it says otherwise).
  const TaskHeader::PollResult result =
      task->confined() ? task->PollOnceConfined<kTopLevel>() : task->PollOnce();
  if (!kTopLevel) current_lane_ = previous_lane;
  if (result == TaskHeader::PollResult::kRequeue) Requeue<kPlain, kPick>(task);
  if (!kPlain && poll_cost_model_ != nullptr) [[unlikely]] ChargePollCost(polled);
}

// The fast step, the common case kept short: only background work is
// queued, no timer is due, nothing records or charges the step, and the pick
// is uniform or (PCT, POS) the background queue's best entry on a step that
// is no change point. It picks exactly what StepGeneral() would.
template <TestScheduler::FastPick kPick, bool kTopLevel, bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::FastStep() {
  TaskHeader* next;
  if constexpr (kPick == FastPick::kUniform) {
    const size_t size = background_.size();
    const size_t index = rng_.Below(size);
    if (index >= size) __builtin_unreachable();  // Below's contract: SwapRemove need not check
    next = background_.SwapRemove(index);
    // The next step's likely task, while this one polls (pick_lookahead.h):
    // the queue has the same size then if this task re-queues.
    if constexpr (kPrefetch) {
      internal::PrefetchForPoll(background_.Guess(internal::PeekBelow(rng_, size)));
    }
  } else {
    internal::TopPriorities& top = strategy_.background_top();
    next = top.TakeNewestIfBest(background_);
    if (next == nullptr) [[unlikely]] next = top.Take(background_, top.Best(background_));
  }
  RunPicked</*kPlain=*/true, kPick, kTopLevel>(next, kNoLane);
}

template <TestScheduler::FastPick kPick, bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::FastStepLoop() {
  while (steps_ < fast_step_limit_.load(std::memory_order_relaxed) && !background_.empty())
      [[likely]] {
    FastStep<kPick, /*kTopLevel=*/true, kPrefetch>();
  }
}

// A uniform fast step's poll of the task it picked, from a run loop.
[[gnu::always_inline]] inline TaskHeader::PollResult TestScheduler::UniformFastPoll(
    TaskHeader* task, std::coroutine_handle<>& trampoline_next) {
  ++steps_;
  trace_state_ = MixWord(trace_state_, task->metadata.id.value << 20);  // as RunPicked's
  return task->PollOnceFast</*kOutsideTasks=*/true>(trampoline_next);
}

// The uniform fast steps of a run loop: FastStepLoop<kUniform> written out,
// so that the compiler keeps to the few loads and stores each step needs.
// Under the uniform strategy nothing rotates the background queue (its
// general pick takes the front in place, and no other pick applies), so a
// pick is a swap-remove and a re-queue a push on a plain array. A task that
// re-queues leaves the queue as large as it was: the loop goes straight on
// to the next step's limit check. With one task queued (a chain of wakes:
// a ping-pong, a pipeline, a task waking the next) the pick is index 0,
// which is what `Below(1)` returns after one draw whatever the draw, so
// those steps take the generator's step without its output and the
// queue's only slot without the swap: the same picks, the same sequence
// for the picks after, no multiply. The loops move between the two only
// when a step ends without a re-queue, so a run of re-queues (W1) pays
// nothing for the split.
template <bool kPrefetch>
[[gnu::always_inline]] inline void TestScheduler::UniformFastStepLoop() {
  std::coroutine_handle<>& trampoline_next = internal::resume_next;  // its address, once
  size_t size = background_.size();
  for (;;) {
    while (size == 1) {
      if (steps_ >= fast_step_limit_.load(std::memory_order_relaxed)) return;
      static_cast<void>(rng_.Next64());  // Below(1)'s draw: the output is not needed
      TaskHeader* const task = background_.TakeOnlyUnrotated();
      const TaskHeader::PollResult result = UniformFastPoll(task, trampoline_next);
      if (result == TaskHeader::PollResult::kRequeue) [[likely]] {
        background_.PushBackUnrotated(task);
      } else if (result == TaskHeader::PollResult::kNotFast) [[unlikely]] {
        PollNotFast(task);
      }
      size = background_.size();
    }
    if (size == 0) return;
    for (;;) {  // two tasks or more queued
      if (steps_ >= fast_step_limit_.load(std::memory_order_relaxed)) return;
      const size_t index = internal::UniformPick(rng_, size);
      if (index >= size) __builtin_unreachable();  // Below's contract
      TaskHeader* const task = background_.SwapRemoveUnrotated(index);
      if constexpr (kPrefetch) {
        internal::PrefetchForPoll(background_.Guess(internal::PeekBelow(rng_, size)));
      }
      const TaskHeader::PollResult result = UniformFastPoll(task, trampoline_next);
      if (result == TaskHeader::PollResult::kRequeue) [[likely]] {
        background_.PushBackUnrotated(task);
        size = background_.size();  // not empty: the task is back
        continue;
      }
      if (result == TaskHeader::PollResult::kNotFast) [[unlikely]] PollNotFast(task);
      size = background_.size();
      if (size <= 1) break;
    }
  }
}

void TestScheduler::PollNotFast(TaskHeader* task) {
  // What RunPicked<kPlain, kUniform, kTopLevel> does after PollOnceFast.
  TaskHeader::EndFastPolls();  // the general poll below sets its own
  const TaskHeader::PollResult result =
      task->confined() ? task->PollOnceConfined</*kOutsideTasks=*/true>() : task->PollOnce();
  if (result == TaskHeader::PollResult::kRequeue) {
    Requeue</*kPlain=*/true, FastPick::kUniform>(task);
  }
}

template <TestScheduler::FastPick kPick>
void TestScheduler::FastSteps() {
  // Prefetching pays only when the tasks' blocks do not all fit in the L1
  // cache; the queue's size when the loop starts decides, so that a step
  // of a small run (the seed sweep's) pays no test for it.
  if constexpr (kPick == FastPick::kUniform) {
    if (background_.rotated()) [[unlikely]] {
      FastStepLoop<kPick, /*kPrefetch=*/false>();  // (no pick under it rotates the queue)
    } else if (background_.size() >= internal::kPrefetchFromQueueSize) {
      UniformFastStepLoop</*kPrefetch=*/true>();
    } else {
      UniformFastStepLoop</*kPrefetch=*/false>();
    }
  } else {
    FastStepLoop<kPick, /*kPrefetch=*/false>();
  }
  TaskHeader::EndFastPolls();  // the last poll left its task current
}

[[gnu::always_inline]] inline void TestScheduler::RunFastSteps() {
  // Run loops are called from plain code, but a frame's destructor that
  // runs when a lane task ends could call one: then the general steps,
  // which keep the lane, do the work.
  if (current_lane_ != kNoLane || internal::current_task != nullptr) [[unlikely]] return;
  switch (fast_pick_) {
    case FastPick::kUniform: return FastSteps<FastPick::kUniform>();
    case FastPick::kPct: return FastSteps<FastPick::kPct>();
    case FastPick::kPos: return FastSteps<FastPick::kPos>();
    case FastPick::kNone: return;
  }
}

[[gnu::always_inline]] inline void TestScheduler::UpdateFastStepLimit() {
  uint64_t limit = 0;
  if (fast_pick_ != FastPick::kNone && !failed_ && lane_queued_ == 0 &&
      next_timer_deadline_ > now_) {
    limit = step_limit_;
    if (fast_pick_ != FastPick::kUniform) {
      limit = std::min(limit, strategy_.FastPriorityStepLimit(steps_));
    }
  }
  // Work or a failure that another thread put in the inbox must end fast
  // steps (see ScheduleFromForeignThread). With allow_parking, sequentially
  // consistent store and load make sure of it (that work may be what a task
  // waits for). Without, such a wake is only a failure to report, and the
  // ordering (tens of cycles whenever the loops return to fast steps) is
  // left out: a foreign store racing this one could be overwritten, and the
  // failure is then reported when the fast steps end (the queue empties, the
  // budget).
  if (limit != 0 && options_.allow_parking) [[unlikely]] {
    fast_step_limit_.store(limit, std::memory_order_seq_cst);
    if (inbox_pending_.load(std::memory_order_seq_cst)) InvalidateFastSteps();
    return;
  }
  fast_step_limit_.store(limit, std::memory_order_relaxed);
  if (limit != 0 && inbox_pending_.load(std::memory_order_relaxed)) InvalidateFastSteps();
}

// One step, fast if it can be. The run loops check FailurePending() (which
// covers the inbox) before every step; Step() checks the inbox itself.
[[gnu::always_inline]] inline bool TestScheduler::StepInline() {
  if (steps_ < fast_step_limit_.load(std::memory_order_relaxed) && !background_.empty())
      [[likely]] {
    switch (fast_pick_) {
      case FastPick::kUniform: FastStep<FastPick::kUniform, false>(); return true;
      case FastPick::kPct: FastStep<FastPick::kPct, false>(); return true;
      case FastPick::kPos: FastStep<FastPick::kPos, false>(); return true;
      case FastPick::kNone: break;  // (its limit is zero)
    }
  }
  const bool stepped = StepGeneral();
  UpdateFastStepLimit();
  return stepped;
}

bool TestScheduler::StepGeneral() {
  if (next_timer_deadline_ <= now_) [[unlikely]] FireDueTimers();
  TaskHeader* next;
  LaneId lane;
  if (lane_queued_ == 0 && uniform_pick_ && !background_.empty()) {
    next = background_.SwapRemove(rng_.Below(background_.size()));
    lane = kNoLane;
  } else if (!PickNextSlow(next, lane)) {
    return false;
  }
  RunPicked</*kPlain=*/false>(next, lane);
  return true;
}

bool TestScheduler::Step() {
  if (!OnOwnerThread()) [[unlikely]] return StepFromForeignThread();
  if (inbox_pending_.load(std::memory_order_relaxed)) [[unlikely]] DrainInbox();
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  return StepInline();
}

bool TestScheduler::TakeQueued(TaskHeader& task, LaneId& lane) {
  if ((task.state() & TaskHeader::kScheduled) == 0 || task.running()) return false;
  auto take = [&](Queue& queue, LaneId queue_lane) {
    for (size_t i = 0; i < queue.size(); ++i) {
      if (queue[i] == &task) {
        queue.Erase(i);
        lane = queue_lane;
        return true;
      }
    }
    return false;
  };
  if (take(background_, kNoLane)) {
    strategy_.background_top().Reset();  // an entry left the middle of the queue
    return true;
  }
  if (take(deprioritized_, kNoLane)) return true;
  for (LaneId id = 0; id < lanes_.size(); ++id) {
    if (take(lanes_[id].queue, id)) {
      --lane_queued_;
      return true;
    }
  }
  return false;
}

absl::Status TestScheduler::RunUntilIdle() {
  if (absl::Status status = CheckCanRun("RunUntilIdle()"); !status.ok()) return status;
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  for (;;) {
    UpdateFastStepLimit();
    RunFastSteps();
    // The general path: what the fast steps left (or could not see).
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] return BudgetFailure("RunUntilIdle()");
    if (NothingToStep() || !StepGeneral()) {
      ReleaseIdleQueueStorage();
      return PendingFailure();
    }
  }
}

absl::Status TestScheduler::Run() {
  if (absl::Status status = CheckCanRun("Run()"); !status.ok()) return status;
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());
  for (;;) {
    UpdateFastStepLimit();
    RunFastSteps();
    // The general path: what the fast steps left (or could not see).
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] return BudgetFailure("Run()");
    if (!NothingToStep() && StepGeneral()) continue;
    if (timers_.live() > 0) {
      AdvanceToNextTimer();
      continue;
    }
    if (absl::Status status = PendingFailure(); !status.ok()) return status;
    if (StuckTaskCount() == 0) return absl::OkStatus();
    if (options_.allow_parking) {
      // A real thread may still wake one of them.
      if (parker_->Park(options_.park_timeout)) continue;
      if (inbox_pending_.load(std::memory_order_acquire)) continue;
    }
    return DeadlockFailure("Run()");
  }
}

absl::Status TestScheduler::BlockOnTask(TaskHeader& task) {
  return BlockOnTaskWithBudget(task, BlockOnBudget{});
}

absl::Status TestScheduler::BlockOnTaskWithBudget(TaskHeader& task, BlockOnBudget budget) {
  LaneId blocked_lane;
  if (absl::Status status = CheckCanBlock(blocked_lane); !status.ok()) return status;
  if (&task == internal::current_task) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") was called from that same task: it would "
        "wait for itself forever"));
  }
  // A real main thread blocked on a future runs none of its other work.
  struct LaneBlock {
    TestScheduler* scheduler;
    LaneId lane;
    explicit LaneBlock(TestScheduler* s, LaneId l) : scheduler(s), lane(l) {
      if (lane != kNoLane) ++scheduler->lanes_[lane].blocked;
    }
    ~LaneBlock() {
      if (lane != kNoLane) --scheduler->lanes_[lane].blocked;
    }
  } lane_block(this, blocked_lane);
  internal::DirectEnqueueScope direct(DirectEnqueueTarget());

  const bool budgeted = budget.max_steps.has_value() || budget.max_time.has_value();
  const uint64_t step_limit = budget.max_steps.has_value()
                                  ? internal::SaturatingAdd(steps_, *budget.max_steps)
                                  : UINT64_MAX;
  const Instant time_limit =
      budget.max_time.has_value() ? DeadlineAfter(now_, *budget.max_time) : kEndOfTime;
  auto budget_spent = [&](Outcome outcome) -> absl::Status {
    return WithOutcome(absl::DeadlineExceededError(absl::StrCat(
        "BlockOn(", task.metadata.DebugString(), ") used up its budget (",
        budget.max_steps.has_value() ? absl::StrCat(*budget.max_steps, " steps") : "",
        budget.max_steps.has_value() && budget.max_time.has_value() ? ", " : "",
        budget.max_time.has_value() ? FormatDuration(*budget.max_time) : "",
        ") before the task finished; the task is still running and was not cancelled: call "
        "BlockOn again to continue.\n",
        RunSummary())), outcome);
  };

  if (budgeted && !task.finished()) {
    // Like a real blocking call, poll the awaited task first if it is ready
    // to run: a zero budget still polls it once.
    LaneId lane;
    if (TakeQueued(task, lane)) RunPicked</*kPlain=*/false>(&task, lane);
  }
  for (;;) {
    if (task.finished()) return absl::OkStatus();
    if (FailurePending()) [[unlikely]] {
      if (absl::Status status = PendingFailure(); !status.ok()) return status;
    }
    if (BudgetExhausted()) [[unlikely]] {
      return BudgetFailure(absl::StrCat("BlockOn(", task.metadata.DebugString(), ")"));
    }
    if (steps_ >= step_limit) return budget_spent(Outcome::kStepBudgetExhausted);
    if (StepInline()) continue;
    if (timers_.live() > 0 && next_timer_deadline_ <= time_limit) {
      AdvanceToNextTimer();
      continue;
    }
    if (time_limit != kEndOfTime) {
      // A finite time budget: nothing happens before it runs out.
      AdvanceTimeTo(time_limit);
      if (Step()) continue;
      if (task.finished()) return absl::OkStatus();
      return budget_spent(Outcome::kTimeBudgetExhausted);
    }
    if (options_.allow_parking) {
      // Work may still arrive from a real thread.
      if (parker_->Park(options_.park_timeout)) continue;
      if (inbox_pending_.load(std::memory_order_acquire)) continue;
    }
    return WithOutcome(absl::FailedPreconditionError(absl::StrCat(
        "deadlock: BlockOn(", task.metadata.DebugString(),
        ") can never finish: no task is runnable and no timer is pending",
        options_.allow_parking
            ? absl::StrCat(", and no other thread woke it within the park timeout of ",
                           FormatDuration(options_.park_timeout))
            : "",
        blocked_lane != kNoLane
            ? absl::StrCat(" (lane ", blocked_lane, " \"", lanes_[blocked_lane].name,
                           "\" is blocked in this BlockOn)")
            : "",
        ".\n", RunSummary(), "\n", DescribeWaitFor())), Outcome::kDeadlock);
  }
}

}  // namespace simsched
