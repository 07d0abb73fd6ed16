// TestScheduler's timers and virtual time: starting and cancelling timers,
// firing the due ones, and moving the clock (to the next timer, by a
// duration, by a poll's simulated cost).

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/test_scheduler_parts.h"
#include "scheduler/test_scheduler.h"

namespace simsched {

using internal::TaskHeader;

[[gnu::always_inline]] inline TimerId TestScheduler::AddTimer(Instant deadline, Waker waker) {
  const TimerId id = timers_.Add(deadline, std::move(waker));
  next_timer_deadline_ = std::min(next_timer_deadline_, deadline);
  if (deadline <= now_) InvalidateFastSteps();  // due already: the general step fires it
  return id;
}

TimerId TestScheduler::StartTimer(Instant deadline, Waker waker) {
  return AddTimer(deadline, std::move(waker));
}

TimerId TestScheduler::StartTaskTimer(Instant deadline, TaskHeader& task) {
  return AddTimer(deadline, Waker::ForTask(&task));
}

void TestScheduler::CancelTimer(TimerId timer) {
  timers_.Cancel(timer);
  next_timer_deadline_exact_ = false;  // it may have been the earliest
}

void TestScheduler::FireDueTimers() {
  // One timer at a time, in (deadline, start order): the order in which the
  // tasks become queued. A wake only queues its task, so nothing runs between
  // two pops, and nothing holds on to the queue while a wake runs (a waker of
  // another scheduler's task may call back into this one's timers).
  const WakeCause previous = std::exchange(waking_from_, WakeCause::kTimer);
  Waker waker;
  // Consuming wakes: each waker's reference goes to the queue (or is dropped).
  while (timers_.PopNextDue(now_, waker)) std::move(waker).Wake();
  waking_from_ = previous;
  next_timer_deadline_ = timers_.NextDeadline();
  next_timer_deadline_exact_ = true;
  timers_.PrefetchNext();
  if (next_timer_deadline_ <= now_) InvalidateFastSteps();
}

void TestScheduler::AdvanceToNextTimer() {
  ReleaseIdleQueueStorage();
  // The cached deadline is never later than the true one, so when it lies
  // ahead nothing is due: refreshing it (a cancelled timer may linger there)
  // is all firing would do, and nothing at all when no timer was cancelled
  // since it was read from the queue (starting timers keeps it exact).
  if (next_timer_deadline_ <= now_) {
    FireDueTimers();
  } else if (!next_timer_deadline_exact_) {
    next_timer_deadline_ = timers_.NextDeadline();
    next_timer_deadline_exact_ = true;
  }
  if (next_timer_deadline_ == Instant::max()) return;
  AdvanceTimeTo(next_timer_deadline_);
}

void TestScheduler::AdvanceClock(Duration duration) {
  if (duration < Duration::zero()) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        "AdvanceClock(", duration.count(),
        "ns): virtual time only moves forward; pass a non-negative duration")));
    return;
  }
  const Instant target = DeadlineAfter(now_, duration);
  if (target == kEndOfTime) {
    RecordFailure(absl::InvalidArgumentError(absl::StrCat(
        "AdvanceClock(", duration.count(), "ns) at virtual time ", FormatDuration(Elapsed()),
        " would reach the end of time (Instant::max()), where nothing can happen; advance by "
        "a duration that fits (Duration::max() means forever, not a step of the clock)")));
    return;
  }
  AdvanceTimeTo(target);
}

void TestScheduler::ChargePollCost(TaskId task) {
  const Duration cost = poll_cost_model_->PollCost(task);
  if (cost > Duration::zero()) AdvanceTimeTo(DeadlineAfter(now_, cost));
}

}  // namespace simsched
