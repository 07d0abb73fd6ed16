// ThreadPoolScheduler: the timer thread, StartTimer/CancelTimer, and parking.

#include "scheduler/thread_pool_scheduler.h"

#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "scheduler/internal/parker.h"
#include "scheduler/internal/pool_parts.h"

namespace simsched {

using internal::PoolBlockWaiter;
using internal::PoolIdBlock;
using internal::PoolWorker;
using internal::TaskHeader;

// -----------------------------------------------------------------------------
// Timers
// -----------------------------------------------------------------------------

void ThreadPoolScheduler::TimerMain() {
  internal::tls_timer_of = this;
  internal::SetThreadName(absl::StrCat(options_.thread_name_prefix, "-timer"));
  std::vector<Waker> due;
  std::unique_lock<std::mutex> lock(timer_mu_);
  while (!timer_stop_) {
    // A copy: the heap may change while this thread waits.
    const Instant next_deadline = timers_.NextDeadline();
    if (next_deadline == Instant::max()) {
      timer_cv_.wait(lock);
      continue;
    }
    const Instant now = Clock::now();
    if (next_deadline > now) {
      timer_cv_.wait_until(lock, next_deadline);
      continue;
    }
    timers_.PopDue(now, due);
    // Woken (and released) outside the lock: a wake runs scheduler code and
    // a release may destroy a task header.
    lock.unlock();
    for (const Waker& waker : due) waker.Wake();
    due.clear();
    lock.lock();
  }
  internal::tls_timer_of = nullptr;
}

TimerId ThreadPoolScheduler::StartTimer(Instant deadline, Waker waker) {
  if (!waker || !accepting_.load(std::memory_order_acquire)) return TimerId{};
  if (deadline == kEndOfTime) return TimerId{};  // never fires (the waker drops here, unlocked)
  if (deadline <= Clock::now()) {
    waker.Wake();
    return TimerId{};  // already fired; cancelling it is a no-op
  }
  std::lock_guard<std::mutex> lock(timer_mu_);
  // Only a new earliest deadline changes what the timer thread waits for (an
  // equal deadline fires after the earlier timer, so it changes nothing).
  const bool earliest = deadline < timers_.NextDeadline();
  const TimerId id = timers_.Add(deadline, std::move(waker));
  if (earliest) timer_cv_.notify_one();
  return id;
}

void ThreadPoolScheduler::CancelTimer(TimerId timer) {
  Waker dropped;  // released after the lock: a release may destroy a task header
  std::lock_guard<std::mutex> lock(timer_mu_);
  dropped = timers_.Cancel(timer);
}

// -----------------------------------------------------------------------------
// Parking
// -----------------------------------------------------------------------------

bool ThreadPoolScheduler::Park(std::optional<Duration> timeout) { return parker_->Park(timeout); }

Unparker ThreadPoolScheduler::GetUnparker() { return Unparker(parker_); }

}  // namespace simsched
