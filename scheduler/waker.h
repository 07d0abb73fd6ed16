// File: scheduler/waker.h
// -----------------------------------------------------------------------------
//
// `Waker` is the one way a suspended task is resumed. Every awaitable that
// suspends a task (simsched's own Yield, Sleep, task joins and primitives, and
// any a user writes) takes the current task's waker in `await_suspend` and
// hands it to whatever will complete the wait: a timer, a queue, a callback.
// `Wake()` puts the task back on its scheduler. Because resumption always goes
// through the scheduler, user awaitables stay deterministic under the
// TestScheduler and run unchanged on production schedulers.
//
// Guarantees:
//   * Waking twice before the task runs schedules it once.
//   * A waker belongs to the suspension it was taken for. Once the task has
//     been resumed, waking an old copy does nothing (it cannot resume the task
//     at some later, unrelated `co_await`).
//   * Waking a finished or cancelled task does nothing and touches only the
//     task header, never its freed frame. A waker may outlive its task and
//     its scheduler.
//
// `DescribeWait()` tells the scheduler what the task waits on, so deadlock and
// leak reports can say "waiting on Event 'ready' at foo.cc:42". (An awaiter
// whose description is per object holds a `WaitRecord` instead: see
// scheduler/wait_record.h.)
//
// This header defines:
//   * `simsched::Waker`
//   * `simsched::CurrentWaker()`
//   * `simsched::DescribeWait()`
//   * `simsched::WaitTarget`
//   * `simsched::InTask()`
//
// Example: an awaitable over a callback API (see docs/writing-awaitables.md).
//
//   struct ReadAwaitable {
//     Device& device;
//     std::optional<Bytes> result;
//     bool await_ready() { return false; }
//     void await_suspend(std::coroutine_handle<>) {
//       simsched::DescribeWait("Device::Read");
//       device.StartRead([this, waker = simsched::CurrentWaker()](Bytes b) {
//         result = std::move(b);
//         waker.Wake();
//       });
//     }
//     Bytes await_resume() { return std::move(*result); }
//   };

#ifndef SIMSCHED_SCHEDULER_WAKER_H_
#define SIMSCHED_SCHEDULER_WAKER_H_

#include "scheduler/source_location.h"
#include <string>
#include <string_view>
#include <utility>

#include "scheduler/internal/task_header.h"
#include "scheduler/internal/wait_site.h"
#include "scheduler/task_metadata.h"
#include "scheduler/wait_record.h"

namespace simsched {

namespace internal {

// Why the wake running on this thread happens ("a channel send"), or null.
// Set by `Waker::Wake(reason)` for the length of the call; the TestScheduler
// records it in the trace. A pointer to a literal: nothing is allocated.
inline thread_local constinit const char* current_wake_reason = nullptr;

}  // namespace internal

// Waker
//
// A copyable handle that wakes one task. An empty (default) waker does
// nothing when woken.
class Waker {
 public:
  Waker() = default;
  Waker(const Waker& other) : task_(other.task_), seq_(other.seq_) {
    if (task_ != nullptr) task_->AddRef();
  }
  Waker(Waker&& other) noexcept
      : task_(std::exchange(other.task_, nullptr)), seq_(other.seq_) {}
  Waker& operator=(Waker other) noexcept {
    std::swap(task_, other.task_);
    std::swap(seq_, other.seq_);
    return *this;
  }
  ~Waker() {
    if (task_ != nullptr) task_->Release();
  }

  // Wake()
  //
  // Schedules the task if it is still suspended at the point this waker was
  // made for. Idempotent; safe after the task or its scheduler is gone.
  void Wake() const& {
    if (task_ != nullptr) task_->Wake(seq_);
  }

  // Wake() on an rvalue: `std::move(waker).Wake()`
  //
  // The same wake, consuming the waker (it is left empty): the reference it
  // holds goes to the scheduler's queue instead of being taken again and
  // dropped. Cheaper; use it when the waker is not needed afterwards (a
  // primitive handing its stored waiter its turn).
  void Wake() && {
    if (task_ != nullptr) std::exchange(task_, nullptr)->WakeAndRelease(seq_);
  }

  // Wake(reason)
  //
  // As `Wake()`, saying why, in a few words the TestScheduler's trace prints
  // ("woken by a channel send from task 3"). `reason` must be a string
  // literal (or otherwise live for the program): only the pointer is kept.
  // `std::move(waker).Wake(reason)` consumes the waker as above.
  void Wake(const char* reason) const& {
    if (task_ == nullptr) return;
    const char* const previous = std::exchange(internal::current_wake_reason, reason);
    task_->Wake(seq_);
    internal::current_wake_reason = previous;
  }
  void Wake(const char* reason) && {
    if (task_ == nullptr) return;
    const char* const previous = std::exchange(internal::current_wake_reason, reason);
    std::exchange(task_, nullptr)->WakeAndRelease(seq_);
    internal::current_wake_reason = previous;
  }

  // Whether this waker refers to a task.
  explicit operator bool() const { return task_ != nullptr; }

  // task_id()
  //
  // The id of the task this waker wakes (zero for an empty waker).
  TaskId task_id() const { return task_ == nullptr ? TaskId{} : task_->metadata.id; }

  // For the task core: a waker for `task`'s current suspension.
  static Waker ForTask(internal::TaskHeader* task) {
    Waker waker;
    if (task != nullptr) {
      task->AddRef();
      waker.task_ = task;
      waker.seq_ = task->seq();
    }
    return waker;
  }

  friend bool operator==(const Waker& a, const Waker& b) {
    return a.task_ == b.task_ && a.seq_ == b.seq_;
  }

 private:
  internal::TaskHeader* task_ = nullptr;
  uint32_t seq_ = 0;
};

// InTask()
//
// True while a simsched task is being polled on this thread (that is, inside
// a coroutine run by a scheduler).
inline bool InTask() { return internal::current_task != nullptr; }

// CurrentWaker()
//
// Returns the waker of the task being polled on this thread, whichever `Co`
// child of it is running. Call it from `await_suspend`. Outside a task it
// returns an empty waker.
inline Waker CurrentWaker() { return Waker::ForTask(internal::current_task); }

// DescribeWait()
//
// Records what the current task is about to wait on and where, for deadlock
// and leak reports. Call it from `await_suspend`. `what` must stay valid while
// the task is suspended (a literal, or a name owned by the awaited object).
// The record is cleared each time the task is resumed. No-op outside a task.
// Each distinct (what's address and length, where) is interned once for the
// process's lifetime (a per-thread cache makes a repeated one a few
// compares): pass a literal or a long-lived name. For a name owned by a
// per-object state, hold a `WaitRecord` in the awaiter instead
// (scheduler/wait_record.h), which interns nothing.
inline void DescribeWait(std::string_view what,
                         SourceLocation where = SourceLocation::current()) {
  if (internal::TaskHeader* task = internal::current_task) {
    task->RecordWaitSite(what, where, nullptr);
  }
}

// WaitTarget
//
// Implemented by a primitive that can say who is in the way of a waiter, for
// the TestScheduler's wait-for report: a Mutex names the task holding it, a
// Channel says it is empty and open with nobody sending. Pass it to
// `DescribeWait(what, target, where)`; it must stay alive while the task
// waits (primitives keep their shared state alive through the awaiter).
class WaitTarget {
 public:
  // The task holding what the waiter needs, or TaskId{} when none or unknown.
  // Used to follow wait-for chains ("task 1 -> Mutex 'a' -> task 2").
  virtual TaskId BlockingTask() const { return TaskId{}; }
  // A phrase for reports: "held by task 4", "empty and open; no task is
  // sending and nobody closed it". Empty when there is nothing to add.
  virtual std::string DescribeBlocker() const = 0;

 protected:
  ~WaitTarget() = default;
};

// DescribeWait() with a WaitTarget
//
// As above, and reports can ask `target` who holds what the task waits on.
// The target is part of the interned key, so each distinct target adds a
// record for the process's lifetime: an awaitable over many objects should
// hold a `WaitRecord` (scheduler/wait_record.h) instead.
inline void DescribeWait(std::string_view what, const WaitTarget* target,
                         SourceLocation where = SourceLocation::current()) {
  if (internal::TaskHeader* task = internal::current_task) {
    task->RecordWaitSite(what, where, target);
  }
}

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_WAKER_H_
