#include "scheduler/event.h"

#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"

#include "scheduler/scheduler.h"

namespace simsched {

Event::Event(std::string_view name)
    : name_(name), description_(name.empty() ? "Event" : "Event '" + std::string(name) + "'") {}

Event::~Event() {
  std::lock_guard<internal::SpinLock> lock(mu_);
  while (!waiters_.empty()) {
    auto* awaiter = static_cast<Awaiter*>(waiters_.front());
    awaiter->event_ = nullptr;  // before the removal, which is the last access
    // The waiter's record (in its frame, alive) described the wait with
    // description_, which dies with this Event: reports may read the record
    // later (a deadlock report), so it gets a static description.
    awaiter->site_.SetWhat("a destroyed Event");
    waiters_.Remove(awaiter);
  }
}

Waker Event::ReleaseOldest() {
  auto* awaiter = static_cast<Awaiter*>(waiters_.front());
  Waker waker = std::move(awaiter->waker_);
  waiters_.Remove(awaiter);  // the last access: the awaiter may be freed from here on
  return waker;
}

void Event::Set() {
  // Inline room for the common few waiters: no allocation under the lock.
  absl::InlinedVector<Waker, 8> released;
  {
    std::lock_guard<internal::SpinLock> lock(mu_);
    set_.store(true, std::memory_order_release);
    while (!waiters_.empty()) released.push_back(ReleaseOldest());
  }
  // Woken outside the lock: a wake may run scheduler code.
  for (Waker& waker : released) std::move(waker).Wake("an event set");
}

void Event::Reset() {
  std::lock_guard<internal::SpinLock> lock(mu_);
  set_.store(false, std::memory_order_relaxed);
}

bool Event::NotifyOne() {
  Waker waker;
  {
    std::lock_guard<internal::SpinLock> lock(mu_);
    if (waiters_.empty()) return false;
    waker = ReleaseOldest();
  }
  std::move(waker).Wake("an event notify");
  return true;
}

size_t Event::WaiterCount() const {
  std::lock_guard<internal::SpinLock> lock(mu_);
  return waiters_.size();
}

bool Event::Awaiter::await_suspend(std::coroutine_handle<>) {
  internal::RequireCurrentTask("Event::Wait()");
  std::lock_guard<internal::SpinLock> lock(event_->mu_);
  if (event_->set_.load(std::memory_order_relaxed)) return false;  // set between await_ready and now
  waker_ = CurrentWaker();
  site_.SetWhat(event_->description_);
  internal::current_task->SetWaitRecord(&site_);
  event_->waiters_.PushBack(this);
  return true;
}

Event::Awaiter::~Awaiter() {
  // Still linked only if the waiting task was cancelled while waiting. Once
  // Set/NotifyOne (or ~Event) removed it, the event may already be destroyed:
  // do not touch it (regression tests cover both races).
  if (!linked()) return;
  std::lock_guard<internal::SpinLock> lock(event_->mu_);
  if (linked()) event_->waiters_.Remove(this);
}

}  // namespace simsched
