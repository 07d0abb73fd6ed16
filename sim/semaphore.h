// File: sim/semaphore.h
// -----------------------------------------------------------------------------
//
// `Semaphore` is an async counting semaphore for tasks: `co_await
// sem.Acquire(n)` suspends the task until `n` permits are free and takes
// them; `Release(n)` gives permits back. Use it to bound concurrency (at most
// N requests in flight) or to model a pool of resources. It is built only on
// the public `Waker` API, so it runs unchanged on every scheduler, is
// deterministic under the TestScheduler, and shows up in deadlock reports as
// "waiting on Semaphore 'name'::Acquire at file.cc:line".
//
//   * Strictly FIFO: waiters are served in the order they asked. A waiter
//     that wants more permits than are free blocks the ones behind it, even
//     if they want fewer (no starvation of large requests). `TryAcquire`
//     fails while anyone waits.
//   * `Release` grants permits straight to the oldest waiters that fit, so
//     nobody can barge in before they resume.
//   * A waiting task that is cancelled leaves the queue (which may let the
//     waiters behind it go). A task cancelled after permits were granted to
//     it, but before it resumed, gives them back: permits are never lost.
//   * `Acquire(0)` completes at once.
//   * Thread-safe: acquire and release from any thread; wakers are woken
//     outside the internal lock.
//
// Permits are not owned: any code may `Release`, as with any counting
// semaphore. `Release` that would overflow `size_t` throws std::overflow_error.
//
// Destroying a Semaphore while tasks wait on it leaves them waiting forever
// (a deadlock the TestScheduler reports), never touching freed memory.
//
// This header defines:
//   * `simsched::Semaphore`
//
// Example:
//
//   simsched::Semaphore connections(/*permits=*/4, "connections");
//   simsched::Co<Response> Fetch(Request request) {
//     co_await connections.Acquire();            // at most 4 in flight
//     Response response = co_await Send(request);
//     connections.Release();
//     co_return response;
//   }

#ifndef SIMSCHED_SIM_SEMAPHORE_H_
#define SIMSCHED_SIM_SEMAPHORE_H_

#include <coroutine>
#include <cstddef>
#include <memory>
#include <string_view>

#include "scheduler/source_location.h"
#include "scheduler/waker.h"
#include "scheduler/internal/wait_queue.h"

namespace simsched {

// Semaphore
//
// See the file comment. Not copyable or movable (awaiters point at it).
class Semaphore {
  struct State;

 public:
  class AcquireAwaiter;

  // Creates a semaphore with `permits` free permits. `name` appears in
  // reports ("Semaphore 'name'").
  explicit Semaphore(size_t permits, std::string_view name = "");
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore();

  // Acquire()
  //
  // An awaitable that takes `n` permits, suspending until they are free and
  // every earlier waiter has been served.
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  AcquireAwaiter Acquire(size_t n, SourceLocation location);
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the frame,
  // across the suspension (16 bytes of every waiting frame; see Sleep()).
  AcquireAwaiter Acquire(size_t n = 1, CallSiteRecord site = __builtin_source_location(),
                         const char* function = __builtin_FUNCTION()) {
    return Acquire(n, SourceLocation::current(site, function));
  }
#else
  AcquireAwaiter Acquire(size_t n = 1, SourceLocation location = SourceLocation::current());
#endif

  // TryAcquire()
  //
  // Takes `n` permits if they are free and nobody waits; never waits.
  // Callable from any thread, in a task or not.
  bool TryAcquire(size_t n = 1);

  // Release()
  //
  // Returns `n` permits and grants them to waiters, oldest first. Throws
  // std::overflow_error (changing nothing) if the count would overflow.
  void Release(size_t n = 1);

  // available()
  //
  // Free permits right now.
  size_t available() const;

  // WaiterCount()
  //
  // How many tasks wait right now.
  size_t WaiterCount() const;

  // name()
  //
  // The name given at construction.
  std::string_view name() const;

  // AcquireAwaiter
  //
  // What `Acquire()` returns; await it once.
  class [[nodiscard]] AcquireAwaiter : private internal::WaitNode {
   public:
    AcquireAwaiter(std::shared_ptr<State> state, size_t n, SourceLocation location);
    AcquireAwaiter(const AcquireAwaiter&) = delete;
    AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
    ~AcquireAwaiter();

    bool await_ready() const noexcept { return n_ == 0; }
    bool await_suspend(std::coroutine_handle<>);
    void await_resume();

   private:
    friend class Semaphore;
    enum class Phase : uint8_t { kWaiting, kGranted, kDone };

    std::shared_ptr<State> state_;
    const size_t n_;
    // The wait record the task's header points at while it waits here.
    internal::PackedWaitSite site_;
    // Guarded by the semaphore's internal lock while suspended.
    Waker waker_;
    Phase phase_ = Phase::kDone;
    // Touched only by the awaiting task: suspended here, not yet resumed.
    bool suspended_ = false;
  };

 private:
  template <typename WakeList>
  static void GrantLocked(State& state, WakeList& wake);
  template <typename WakeList>
  static void AddPermitsLocked(State& state, size_t n, WakeList& wake);

  std::shared_ptr<State> state_;
};

}  // namespace simsched

#endif  // SIMSCHED_SIM_SEMAPHORE_H_
