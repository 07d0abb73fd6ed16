#include "sim/semaphore.h"

#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "scheduler/internal/check.h"
#include "scheduler/internal/not_in_task.h"

namespace simsched {
namespace {

using WakeList = absl::InlinedVector<Waker, 2>;

// Woken outside the lock: a wake may run scheduler code. Consumes the
// wakers (their references go to the scheduler's queue).
void WakeAll(WakeList& wake) {
  for (Waker& waker : wake) std::move(waker).Wake("a semaphore release");
}

}  // namespace

struct Semaphore::State {
  State(size_t permits_in, std::string_view name_in)
      : name(name_in),
        description(name_in.empty() ? std::string("Semaphore")
                                    : "Semaphore '" + std::string(name_in) + "'"),
        acquire_what(description + "::Acquire"),
        permits(permits_in) {}

  const std::string name;
  const std::string description;
  const std::string acquire_what;  // the DescribeWait string

  std::mutex mu;
  size_t permits;
  internal::WaitQueue waiters;  // of AcquireAwaiter, oldest first
};

Semaphore::Semaphore(size_t permits, std::string_view name)
    : state_(std::make_shared<State>(permits, name)) {}

// Waiters keep the state alive and stay queued: they wait forever, as the
// file comment says. Nothing to do.
Semaphore::~Semaphore() = default;

Semaphore::AcquireAwaiter Semaphore::Acquire(size_t n, SourceLocation location) {
  return AcquireAwaiter(state_, n, location);
}

bool Semaphore::TryAcquire(size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (n == 0) return true;
  if (!state_->waiters.empty() || state_->permits < n) return false;
  state_->permits -= n;
  return true;
}

void Semaphore::Release(size_t n) {
  WakeList wake;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (n > std::numeric_limits<size_t>::max() - state_->permits) {
      throw std::overflow_error(absl::StrCat(state_->description, "::Release(", n,
                                             ") would overflow its count of ",
                                             state_->permits, " free permits"));
    }
    AddPermitsLocked(*state_, n, wake);
  }
  WakeAll(wake);
}

size_t Semaphore::available() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->permits;
}

size_t Semaphore::WaiterCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->waiters.size();
}

std::string_view Semaphore::name() const { return state_->name; }

template <typename WakeListT>
void Semaphore::GrantLocked(State& state, WakeListT& wake) {
  while (!state.waiters.empty()) {
    auto* next = static_cast<AcquireAwaiter*>(state.waiters.front());
    if (next->n_ > state.permits) break;  // strict FIFO: the head blocks the rest
    state.waiters.PopFront();
    state.permits -= next->n_;
    next->phase_ = AcquireAwaiter::Phase::kGranted;
    wake.push_back(std::move(next->waker_));
  }
}

template <typename WakeListT>
void Semaphore::AddPermitsLocked(State& state, size_t n, WakeListT& wake) {
  state.permits += n;
  GrantLocked(state, wake);
}

Semaphore::AcquireAwaiter::AcquireAwaiter(std::shared_ptr<State> state, size_t n,
                                          SourceLocation location)
    : state_(std::move(state)), n_(n), site_(location) {}

Semaphore::AcquireAwaiter::~AcquireAwaiter() {
  if (!suspended_) return;  // never suspended, or resumed normally
  // The task was cancelled while suspended here.
  WakeList wake;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (phase_ == Phase::kWaiting) {
      state_->waiters.Remove(this);
      GrantLocked(*state_, wake);  // it may have been blocking smaller requests
    } else if (phase_ == Phase::kGranted) {
      // Granted but never used: give the permits back. They were taken from
      // the count under this lock, so adding them back cannot overflow.
      AddPermitsLocked(*state_, n_, wake);
    }
  }
  WakeAll(wake);
}

bool Semaphore::AcquireAwaiter::await_suspend(std::coroutine_handle<>) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->waiters.empty() && state_->permits >= n_) {
    state_->permits -= n_;
    return false;
  }
  if (!InTask()) internal::ThrowNotInTask("Semaphore::Acquire()", "use TryAcquire");
  waker_ = CurrentWaker();
  site_.SetWhat(state_->acquire_what);
  internal::current_task->SetWaitRecord(&site_);
  state_->waiters.PushBack(this);
  phase_ = Phase::kWaiting;
  suspended_ = true;
  return true;
}

void Semaphore::AcquireAwaiter::await_resume() {
  if (!suspended_) return;
  suspended_ = false;
  // Taking the lock orders this task after the releaser on every scheduler.
  std::lock_guard<std::mutex> lock(state_->mu);
  SIMSCHED_CHECK(phase_ == Phase::kGranted, "a Semaphore waiter resumed without its permits");
  phase_ = Phase::kDone;
}

}  // namespace simsched
