// File: scheduler/event.h
// -----------------------------------------------------------------------------
//
// `Event` is an awaitable flag (a "notify"): tasks `co_await event.Wait()`
// until another task calls `Set()`. It is built only on the public `Waker` API,
// so it runs unchanged on every scheduler, is deterministic under the
// TestScheduler, and shows up in deadlock reports as
// "waiting on Event 'name' at file.cc:line".
//
//   * `Set()` releases every waiter and keeps the event set: later waits
//     complete at once until `Reset()`.
//   * `NotifyOne()` releases the longest-waiting waiter without setting it.
//   * Waiters are released in the order they began waiting.
//   * A waiting task that is cancelled is removed from the waiters; nothing
//     wakes a dead task.
//   * Thread-safe: Set/Reset/NotifyOne may be called from any thread. The
//     lock is a spin lock held for a few instructions (never across a wake),
//     so on the single-threaded TestScheduler it costs one uncontended
//     atomic exchange, and `IsSet()` (every `Wait()` starts with it) takes
//     no lock at all.
//
// Destroying an Event while tasks wait on it leaves them waiting forever (a
// deadlock the TestScheduler reports), never touching freed memory.
//
// This header defines:
//   * `simsched::Event`
//
// Example:
//
//   simsched::Event ready("ready");
//   simsched::Spawn(s, [&]() -> simsched::Co<void> {
//     co_await ready.Wait();          // suspends until Set()
//     Serve();
//   }).Detach();
//   ...
//   ready.Set();

#ifndef SIMSCHED_SCHEDULER_EVENT_H_
#define SIMSCHED_SCHEDULER_EVENT_H_

#include <atomic>
#include <coroutine>
#include <string>
#include <string_view>

#include "scheduler/internal/spin_lock.h"
#include "scheduler/internal/wait_queue.h"
#include "scheduler/source_location.h"
#include "scheduler/waker.h"

namespace simsched {

// Event
//
// See the file comment. Not copyable or movable (waiters point at it).
class Event {
 public:
  explicit Event(std::string_view name = "");
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Set()
  //
  // Sets the event and releases every waiter, oldest first.
  void Set();

  // Reset()
  //
  // Clears the event; later waits suspend until the next Set().
  void Reset();

  // NotifyOne()
  //
  // Releases the oldest waiter, if any, without setting the event. Returns
  // whether a waiter was released.
  bool NotifyOne();

  // IsSet()
  bool IsSet() const { return set_.load(std::memory_order_acquire); }

  // WaiterCount()
  //
  // How many tasks wait right now.
  size_t WaiterCount() const;

  // The name given at construction.
  std::string_view name() const { return name_; }

  class Awaiter : private internal::WaitNode {
   public:
    Awaiter(Event& event, SourceLocation location) : event_(&event), site_(location) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter();

    bool await_ready() const { return event_->IsSet(); }
    bool await_suspend(std::coroutine_handle<>);
    void await_resume() const noexcept {}

   private:
    friend class Event;
    Event* event_;  // null once the event is destroyed
    // The wait record the task's header points at while it waits (the
    // event's description is set when it suspends).
    internal::PackedWaitSite site_;
    Waker waker_;
  };

  // Wait()
  //
  // An awaitable that completes once the event is set (at once if it is set
  // now) or this waiter is notified.
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
  Awaiter Wait(SourceLocation location) { return Awaiter(*this, location); }
  // The call site as scalars rather than a defaulted SourceLocation: g++
  // keeps a `co_await` expression's class-type temporaries in the frame,
  // across the suspension (16 bytes of every waiting frame; see Sleep()).
  Awaiter Wait(CallSiteRecord site = __builtin_source_location(),
               const char* function = __builtin_FUNCTION()) {
    return Awaiter(*this, SourceLocation::current(site, function));
  }
#else
  Awaiter Wait(SourceLocation location = SourceLocation::current()) {
    return Awaiter(*this, location);
  }
#endif

 private:
  // Takes the oldest waiter's waker and unlinks it (in that order: see
  // scheduler/internal/wait_queue.h). Requires the lock and a waiter.
  Waker ReleaseOldest();

  const std::string name_;
  const std::string description_;  // "Event 'name'", for wait sites
  // Guards waiters_ (and every queued awaiter's fields) and orders writes of
  // set_. Held only for list and flag updates: wakes happen after unlocking.
  mutable internal::SpinLock mu_;
  // Written under mu_; read without it by IsSet (acquire pairs with the
  // release in Set, so a waiter that sees it set sees what came before).
  std::atomic<bool> set_{false};
  internal::WaitQueue waiters_;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_EVENT_H_
