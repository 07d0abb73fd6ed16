#include "sim/internal/combinator_state.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/task_metadata.h"

namespace simsched::internal {

Task<void> SpawnSibling(Co<void> co, SourceLocation location) {
  TaskHeader& self = RequireCurrentTask("a combinator");
  // The same kind, label and lane as the awaiting task, so a combinator
  // awaited on a main thread (or a TestScheduler lane) keeps its inputs
  // there. The session is inherited by SpawnTask itself.
  return SpawnTask(*self.scheduler(), std::move(co), self.kind(), self.metadata.label(),
                   self.metadata.lane(), location);
}

void RequireTaskFor(const char* what) {
  if (!InTask()) ThrowNotInTask(what);
}

void ThrowEmptyInput(const char* what, SourceLocation location, size_t position) {
  throw std::invalid_argument(absl::StrCat(
      what, " at ", FormatLocation(location), ": input ", position,
      " is an empty Task or Co (moved from, detached or default-made)"));
}

void ThrowNoInputs(const char* what, SourceLocation location) {
  throw std::invalid_argument(absl::StrCat(what, " at ", FormatLocation(location),
                                           " was given no inputs; it needs at least one"));
}

absl::Status TimeoutError(Duration timeout, SourceLocation location) {
  return absl::DeadlineExceededError(
      absl::StrCat("WithTimeout(", FormatDuration(timeout, DurationStyle::kLength), ") at ", FormatLocation(location),
                   " expired before the task finished; the task was cancelled"));
}

CombinatorWait::~CombinatorWait() {
  // A wait recorded and then abandoned (StartTimer threw after the record):
  // the task must not point at this dead record.
  if (internal::TaskHeader* task = internal::current_task) task->ForgetWaitRecord(&site_);
  // Still registered only if the awaiting task was cancelled while here.
  if (suspended_) Unregister();
}

bool CombinatorWait::await_suspend(std::coroutine_handle<>) {
  RequireTaskFor("a combinator");
  Waker waker = CurrentWaker();
  // Decide to suspend before any copy of the waker leaves this function. A
  // waker belongs to the current poll, not to one co_await: a timer armed
  // here and then abandoned (the inputs finished meanwhile, so no suspension)
  // could still fire on the pool's timer thread before CancelTimer, and would
  // end the task's *next* suspension in this poll at once: a Channel receiver
  // or Mutex waiter resumed while still queued (the pool torture test's
  // seeds 13875 and 21).
  {
    std::lock_guard<std::mutex> lock(state_.mu_);
    if (state_.satisfied_) return false;  // satisfied between await_ready and now
    internal::current_task->SetWaitRecord(&site_);
    state_.waiter_ = waker;
    suspended_ = true;
  }
  // Committed: if an input finishes before the timer is armed, the wake is
  // for this suspension, and await_resume cancels the timer.
  if (deadline_.has_value()) {
    Scheduler* scheduler = CurrentScheduler();
    timer_ = scheduler->StartTimer(*deadline_, std::move(waker));
    scheduler_ = scheduler;  // after StartTimer: if that throws, nothing is armed
  }
  return true;
}

void CombinatorWait::await_resume() {
  if (suspended_) Unregister();
}

void CombinatorWait::Unregister() {
  suspended_ = false;
  Waker stale;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(state_.mu_);
    stale = std::move(state_.waiter_);
  }
  // Whichever of the timer and the inputs lost the race: cancel the timer.
  if (scheduler_ != nullptr) {
    std::exchange(scheduler_, nullptr)->CancelTimer(timer_);
  }
}

}  // namespace simsched::internal
