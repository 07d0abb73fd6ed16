// File: sim/mutex.h
// -----------------------------------------------------------------------------
//
// `Mutex` is an async mutual-exclusion lock for tasks: `co_await mu.Lock()`
// suspends the task (not the thread) until the lock is free and returns a
// `MutexGuard` that unlocks when it goes out of scope. Hold it across
// `co_await`s freely; that is what it is for. It is built only on the public
// `Waker` API, so it runs unchanged on every scheduler, is deterministic under
// the TestScheduler, and shows up in deadlock reports as
// "waiting on Mutex 'name'::Lock at file.cc:line".
//
//   * FIFO fair: waiters get the lock in the order they asked for it. An
//     unlock hands the lock straight to the oldest waiter, so nobody can
//     barge in between (`TryLock` fails while anyone waits).
//   * A waiting task that is cancelled leaves the queue. A task cancelled
//     after the lock was handed to it, but before it resumed, passes the lock
//     on to the next waiter: the lock is never lost.
//   * Not reentrant: a task that locks a Mutex it holds waits for itself (a
//     deadlock the TestScheduler reports).
//   * Thread-safe: lock and unlock from any thread; wakers are woken outside
//     the internal lock.
//
// Destroying a Mutex while tasks wait on it leaves them waiting forever (a
// deadlock the TestScheduler reports), never touching freed memory; a guard
// that outlives its Mutex unlocks harmlessly.
//
// This header defines:
//   * `simsched::Mutex`
//   * `simsched::MutexGuard`
//
// Example:
//
//   simsched::Mutex mu("accounts");
//   simsched::Co<void> Transfer(Account& from, Account& to, int amount) {
//     simsched::MutexGuard lock = co_await mu.Lock();
//     from.balance -= amount;
//     co_await simsched::Sleep(std::chrono::milliseconds(1));  // still held
//     to.balance += amount;
//   }                                                           // unlocked here

#ifndef SIMSCHED_SIM_MUTEX_H_
#define SIMSCHED_SIM_MUTEX_H_

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "scheduler/source_location.h"
#include "scheduler/waker.h"
#include "scheduler/internal/wait_queue.h"

namespace simsched {

class MutexGuard;

// Mutex
//
// See the file comment. Not copyable or movable (awaiters point at it).
class Mutex {
  struct State;

 public:
  class LockAwaiter;

  // Creates an unlocked mutex. `name` appears in reports ("Mutex 'name'").
  explicit Mutex(std::string_view name = "");
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  ~Mutex();

  // Lock()
  //
  // An awaitable that acquires the lock, suspending while another holder has
  // it, and gives the guard that owns it.
  //
  //   simsched::MutexGuard lock = co_await mu.Lock();
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  LockAwaiter Lock(SourceLocation location);
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the frame,
  // across the suspension (16 bytes of every waiting frame; see Sleep()).
  LockAwaiter Lock(CallSiteRecord site = __builtin_source_location(),
                   const char* function = __builtin_FUNCTION()) {
    return Lock(SourceLocation::current(site, function));
  }
#else
  LockAwaiter Lock(SourceLocation location = SourceLocation::current());
#endif

  // TryLock()
  //
  // Acquires the lock if it is free and nobody waits for it; never waits.
  // Callable from any thread, in a task or not.
  std::optional<MutexGuard> TryLock();

  // IsLocked()
  bool IsLocked() const;

  // WaiterCount()
  //
  // How many tasks wait for the lock right now.
  size_t WaiterCount() const;

  // name()
  //
  // The name given at construction.
  std::string_view name() const;

  // LockAwaiter
  //
  // What `Lock()` returns; await it once.
  class [[nodiscard]] LockAwaiter : private internal::WaitNode {
   public:
    LockAwaiter(std::shared_ptr<State> state, SourceLocation location);
    LockAwaiter(const LockAwaiter&) = delete;
    LockAwaiter& operator=(const LockAwaiter&) = delete;
    ~LockAwaiter();

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<>);
    MutexGuard await_resume();

   private:
    friend class Mutex;
    enum class Phase : uint8_t { kWaiting, kGranted, kDone };

    std::shared_ptr<State> state_;
    // The wait record the task's header points at while it waits here.
    internal::PackedWaitSite site_;
    // Guarded by the mutex's internal lock while suspended.
    Waker waker_;
    Phase phase_ = Phase::kDone;
    // Touched only by the awaiting task: suspended here, not yet resumed.
    bool suspended_ = false;
  };

 private:
  friend class MutexGuard;

  // Releases the lock held by the caller: hands it to the oldest waiter (whose
  // waker is returned, to be woken outside the lock) or marks it free.
  static Waker ReleaseLocked(State& state);
  static void Unlock(State& state);

  std::shared_ptr<State> state_;
};

// MutexGuard
//
// Owns a held `Mutex` and unlocks it when destroyed. Move-only; an empty
// (default-made or moved-from) guard owns nothing.
class [[nodiscard]] MutexGuard {
 public:
  MutexGuard() = default;
  MutexGuard(MutexGuard&& other) noexcept = default;
  MutexGuard& operator=(MutexGuard&& other) noexcept {
    if (this != &other) {
      Unlock();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() { Unlock(); }

  // Unlock()
  //
  // Releases the lock now; the guard becomes empty. No-op on an empty guard.
  void Unlock();

  // owns_lock()
  //
  // Whether this guard holds its mutex.
  bool owns_lock() const { return state_ != nullptr; }
  explicit operator bool() const { return owns_lock(); }

 private:
  friend class Mutex;
  explicit MutexGuard(std::shared_ptr<Mutex::State> state) : state_(std::move(state)) {}

  std::shared_ptr<Mutex::State> state_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_MUTEX_H_
