#include "sim/mutex.h"

#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

#include "scheduler/internal/check.h"
#include "scheduler/internal/not_in_task.h"

namespace simsched {

// The WaitTarget lets deadlock reports name the holder.
struct Mutex::State final : WaitTarget {
  explicit State(std::string_view name_in)
      : name(name_in),
        lock_what(name_in.empty() ? std::string("Mutex::Lock")
                                  : "Mutex '" + std::string(name_in) + "'::Lock") {}

  const std::string name;
  const std::string lock_what;  // the DescribeWait string

  TaskId BlockingTask() const override {
    std::lock_guard<std::mutex> lock(mu);
    return locked ? holder : TaskId{};
  }
  std::string DescribeBlocker() const override {
    std::lock_guard<std::mutex> lock(mu);
    if (!locked) return "free";
    if (holder.value == 0) return "held by code outside any simsched task (a TryLock)";
    return absl::StrCat("held by task ", holder.value);
  }

  mutable std::mutex mu;
  bool locked = false;
  // The task that holds (or was handed) the lock; TaskId{} outside a task.
  TaskId holder;
  // Of LockAwaiter, oldest first. Non-empty only while locked: an unlock
  // with waiters hands the lock over instead of freeing it.
  internal::WaitQueue waiters;
};

Mutex::Mutex(std::string_view name) : state_(std::make_shared<State>(name)) {}

// Waiters keep the state alive and stay queued: they wait forever, as the
// file comment says. Nothing to do.
Mutex::~Mutex() = default;

Mutex::LockAwaiter Mutex::Lock(SourceLocation location) {
  return LockAwaiter(state_, location);
}

std::optional<MutexGuard> Mutex::TryLock() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->locked) return std::nullopt;
  state_->locked = true;
  state_->holder = InTask() ? internal::current_task->metadata.id : TaskId{};
  return MutexGuard(state_);
}

bool Mutex::IsLocked() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->locked;
}

size_t Mutex::WaiterCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->waiters.size();
}

std::string_view Mutex::name() const { return state_->name; }

Waker Mutex::ReleaseLocked(State& state) {
  SIMSCHED_CHECK(state.locked, "unlocked a Mutex that is not locked");
  if (internal::WaitNode* node = state.waiters.PopFront()) {
    auto* next = static_cast<LockAwaiter*>(node);
    next->phase_ = LockAwaiter::Phase::kGranted;  // the lock stays held, by it
    state.holder = next->waker_.task_id();
    return std::move(next->waker_);
  }
  state.locked = false;
  state.holder = TaskId{};
  return Waker();
}

void Mutex::Unlock(State& state) {
  Waker next;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    next = ReleaseLocked(state);
  }
  std::move(next).Wake("a mutex unlock");  // outside the lock: a wake may run scheduler code
}

Mutex::LockAwaiter::LockAwaiter(std::shared_ptr<State> state, SourceLocation location)
    : state_(std::move(state)), site_(location) {}

Mutex::LockAwaiter::~LockAwaiter() {
  if (!suspended_) return;  // never suspended, or resumed normally
  // The task was cancelled while suspended here.
  Waker next;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (phase_ == Phase::kWaiting) {
      state_->waiters.Remove(this);
    } else if (phase_ == Phase::kGranted) {
      next = ReleaseLocked(*state_);  // handed to us, never used: pass it on
    }
  }
  std::move(next).Wake("a mutex unlock");
}

bool Mutex::LockAwaiter::await_suspend(std::coroutine_handle<>) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->locked) {
    state_->locked = true;
    state_->holder = InTask() ? internal::current_task->metadata.id : TaskId{};
    return false;
  }
  if (!InTask()) internal::ThrowNotInTask("Mutex::Lock()", "use TryLock");
  waker_ = CurrentWaker();
  site_.SetWhat(state_->lock_what);
  site_.set_target(state_.get());
  internal::current_task->SetWaitRecord(&site_);
  state_->waiters.PushBack(this);
  phase_ = Phase::kWaiting;
  suspended_ = true;
  return true;
}

MutexGuard Mutex::LockAwaiter::await_resume() {
  if (suspended_) {
    suspended_ = false;
    // Taking the lock orders this task after the unlocker on every scheduler.
    std::lock_guard<std::mutex> lock(state_->mu);
    SIMSCHED_CHECK(phase_ == Phase::kGranted, "a Mutex waiter resumed without the lock");
    phase_ = Phase::kDone;
  }
  return MutexGuard(state_);
}

void MutexGuard::Unlock() {
  if (state_ == nullptr) return;
  std::shared_ptr<Mutex::State> state = std::move(state_);
  state_ = nullptr;
  Mutex::Unlock(*state);
}

}  // namespace simsched
