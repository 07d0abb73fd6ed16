// File: scheduler/scheduler.h
// -----------------------------------------------------------------------------
//
// The `Scheduler` interface every simsched program is written against, and the
// spawn functions and awaitables built on it. In production a thread pool
// implements it; in tests a seeded `TestScheduler` (test_scheduler.h) runs
// every task on one thread in a seed-chosen order under virtual time. Code
// that only uses this header runs unchanged on both.
//
// The interface is object-safe: only non-template virtual functions, so
// `std::shared_ptr<Scheduler>` is the currency passed around an application.
// Everything generic (spawning a `Co<T>`, sleeping, yielding, blocking) is a
// non-virtual template on top.
//
// This header defines:
//   * `simsched::Scheduler`           the interface
//   * `simsched::Unparker`            wakes a thread blocked in `Park()`
//   * `simsched::Spawn()`, `SpawnLabeled()`, `SpawnForeground()`
//   * `simsched::Yield()`, `Sleep()`, `SleepUntil()`, `SimulateRandomDelay()`
//   * `simsched::BlockOn()`           run a task to completion from plain code
//   * `simsched::CurrentScheduler()`  the scheduler of the running task
//   * `simsched::Instant`, `Duration`, `TimerId`
//
// Example:
//
//   simsched::Co<int> Work(int x) {
//     co_await simsched::Sleep(std::chrono::milliseconds(10));
//     co_await simsched::Yield();
//     co_return x * 2;
//   }
//
//   void Run(std::shared_ptr<simsched::Scheduler> scheduler) {
//     simsched::Task<int> task = simsched::Spawn(*scheduler, Work(21));
//     absl::StatusOr<int> result = simsched::BlockOn(*scheduler, task);  // 42
//   }

#ifndef SIMSCHED_SCHEDULER_SCHEDULER_H_
#define SIMSCHED_SCHEDULER_SCHEDULER_H_

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include "scheduler/source_location.h"
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scheduler/co.h"
#include "scheduler/internal/not_in_task.h"
#include "scheduler/internal/task_header.h"
#include "scheduler/runnable.h"
#include "scheduler/task.h"
#include "scheduler/task_metadata.h"
#include "scheduler/time.h"
#include "scheduler/waker.h"

namespace simsched {

// Time. Production schedulers read `std::chrono::steady_clock`; the
// TestScheduler's virtual clock uses the same types, starting at `Instant{}`.

// FormatDuration()
//
// How every report prints a duration, in the largest unit that divides it
// exactly. `kElapsed` (the default) is a point in virtual time or time gone
// by: "+1500ms", "+2s", "+0s". `kLength` is a length of time on its own, such
// as a timeout or a grace period: "1500ms", "30s", "0s".
enum class DurationStyle { kElapsed, kLength };
std::string FormatDuration(Duration duration, DurationStyle style = DurationStyle::kElapsed);

// TimerId
//
// Names a timer started with `Scheduler::StartTimer`, for cancelling it.
struct TimerId {
  uint64_t value = 0;
  friend bool operator==(const TimerId&, const TimerId&) = default;
};

namespace internal {
class Parker;
class TaskCoreAccess;
}  // namespace internal

// Unparker
//
// Wakes the thread blocked in the `Park()` of the scheduler it came from.
// Copyable and thread-safe; an unpark that arrives before the park is not
// lost (the next park returns at once).
class Unparker {
 public:
  Unparker() = default;
  explicit Unparker(std::shared_ptr<internal::Parker> parker) : parker_(std::move(parker)) {}

  // Unpark()
  //
  // Wakes the parked thread (or makes its next park return at once).
  void Unpark() const;

 private:
  std::shared_ptr<internal::Parker> parker_;
};

// Scheduler
//
// Runs tasks. Implementations: `TestScheduler` (test_scheduler.h), and the
// production thread pool. All functions are thread-safe unless the
// implementation says otherwise (the TestScheduler is confined to one thread).
class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Schedule()
  //
  // Queues a background task's Runnable: it may run on any thread.
  virtual void Schedule(Runnable runnable) = 0;

  // ScheduleLabeled()
  //
  // As `Schedule`, for a task spawned with a label. Schedulers may use the
  // label for prioritization (the TestScheduler does); others ignore it.
  virtual void ScheduleLabeled(Runnable runnable, TaskLabel label) = 0;

  // ScheduleForeground()
  //
  // Queues a Runnable that must run on the main thread (the thread that owns
  // the scheduler's run loop), in FIFO order with other foreground work.
  virtual void ScheduleForeground(Runnable runnable) = 0;

  // IsMainThread()
  //
  // True when called from the scheduler's main thread (in the TestScheduler:
  // while a foreground task runs).
  virtual bool IsMainThread() const = 0;

  // Now()
  //
  // The scheduler's current time: real monotonic time in production, virtual
  // time in the TestScheduler.
  virtual Instant Now() const = 0;

  // Park()
  //
  // Blocks the calling thread until unparked or until `timeout` passes.
  // Returns true if unparked, false on timeout (or when parking is refused,
  // as the TestScheduler does by default; see its options).
  virtual bool Park(std::optional<Duration> timeout) = 0;

  // GetUnparker()
  //
  // Returns the handle that unparks threads parked on this scheduler.
  virtual Unparker GetUnparker() = 0;

  // StartTimer()
  //
  // Wakes `waker` at `deadline` (at once if the deadline has passed). Timers
  // with equal deadlines fire in the order they were started. A deadline of
  // `kEndOfTime` (scheduler/time.h) never fires: forever means forever.
  virtual TimerId StartTimer(Instant deadline, Waker waker) = 0;

  // CancelTimer()
  //
  // Stops a timer that has not fired. Unknown or already fired ids are
  // ignored.
  virtual void CancelTimer(TimerId timer) = 0;

  // IsTaskRunning()
  //
  // True from a task's spawn until its coroutine completes or it is
  // cancelled; false before, after, and for ids this scheduler never issued.
  virtual bool IsTaskRunning(TaskId id) const = 0;

  // BlockOnTask()
  //
  // Runs (or waits) until `task` has finished. Returns a non-OK status when
  // the scheduler cannot get there: a deadlock, an exhausted step budget, or
  // an earlier failure of the run. Use the typed `BlockOn()` below instead.
  virtual absl::Status BlockOnTask(internal::TaskHeader& task) = 0;

  // WrappedScheduler()
  //
  // The scheduler a decorator forwards to (a CloudSimulatedScheduler's inner
  // scheduler), or null for one that runs its tasks itself (the default). A
  // scheduler recognizes a task spawned through a decorator of it as its own
  // by following this chain (see `Runs()`), e.g. for `BlockOn`.
  virtual Scheduler* WrappedScheduler() const { return nullptr; }

  // Runs()
  //
  // True if `task` runs on this scheduler: it was spawned on it or through a
  // chain of decorators wrapping it.
  bool Runs(const internal::TaskHeader& task) const;

  // True if all tasks of this scheduler run on one thread, so their state
  // needs no atomic read-modify-write operations.
  virtual bool IsThreadConfined() const { return false; }

  // Deprioritize()
  //
  // Asks the scheduler to run tasks labeled `label` only when nothing else
  // can. The TestScheduler does (to explore schedules where that work comes
  // last); production schedulers ignore it (the default); decorators forward
  // it to the scheduler they wrap.
  virtual void Deprioritize(TaskLabel label) { (void)label; }

  // AddSimulatedLane()
  //
  // Adds a simulated main thread (a lane) named `name` and returns its id,
  // for `ForegroundExecutor::ForNewLane`. The TestScheduler does; production
  // schedulers have one main thread and return nothing (the default);
  // decorators forward it to the scheduler they wrap, so lanes are explored
  // through them too.
  virtual std::optional<uint32_t> AddSimulatedLane(std::string_view name) {
    (void)name;
    return std::nullopt;
  }

  // How many times `SimulateRandomDelay(max_yields)` should yield: a
  // seed-chosen number in [0, max_yields] under the TestScheduler, zero on
  // schedulers that do not explore schedules.
  virtual uint32_t RandomDelayYields(uint32_t max_yields) {
    (void)max_yields;
    return 0;
  }

  // Logs an unobserved task exception through the "simsched" logger, with
  // the task's spawn location. Production schedulers use it; so does a task
  // detached after it already failed.
  static void LogUnhandledTaskException(const TaskMetadata& task,
                                        const std::exception_ptr& exception);

  // Returns the exception's message ("unknown exception" if not a
  // std::exception).
  static std::string DescribeException(const std::exception_ptr& exception);

 protected:
  // -- The task core's seam: spawn functions and task headers call these
  // through `internal::TaskCoreAccess`, never user code. An implementation
  // overrides them; a decorator forwards them to the scheduler it wraps with
  // `internal::TaskCoreAccess` (see docs/architecture.md). --

  // Assigns the task its id and starts tracking it.
  virtual void OnTaskSpawned(internal::TaskHeader& task) = 0;
  // Starts a task just spawned: OnTaskSpawned(task), then queues its first
  // poll (adopting the reference the task's Runnable would hold). The
  // default does exactly that through `task.ScheduleSelf()`; a scheduler may
  // do both in one step (the TestScheduler queues background work directly),
  // as long as the effect is the same.
  virtual void StartSpawnedTask(internal::TaskHeader& task);
  // Stops tracking a task that completed or was cancelled.
  virtual void OnTaskFinished(internal::TaskHeader& task) = 0;
  // Starts a timer that wakes `task` (Sleep's). The default is exactly
  // `StartTimer(deadline, Waker::ForTask(&task))`; a scheduler may build the
  // waker itself to the same effect (the task then passes in a register,
  // where a Waker argument goes through memory). A decorator need not
  // forward it: the default reaches the decorator's own StartTimer.
  virtual TimerId StartTaskTimer(Instant deadline, internal::TaskHeader& task);
  // A detached task ended with an exception nobody will observe.
  virtual void OnUnhandledTaskException(const TaskMetadata& task,
                                        const std::exception_ptr& exception) = 0;

 private:
  friend class internal::TaskCoreAccess;
};

namespace internal {

// TaskCoreAccess
//
// The one door to a scheduler's task-core hooks, for the task core itself and
// for decorators forwarding to the scheduler they wrap.
class TaskCoreAccess {
 public:
  static void OnTaskSpawned(Scheduler& scheduler, TaskHeader& task) {
    scheduler.OnTaskSpawned(task);
  }
  static void StartSpawnedTask(Scheduler& scheduler, TaskHeader& task) {
    scheduler.StartSpawnedTask(task);
  }
  static void OnTaskFinished(Scheduler& scheduler, TaskHeader& task) {
    scheduler.OnTaskFinished(task);
  }
  static TimerId StartTaskTimer(Scheduler& scheduler, Instant deadline, TaskHeader& task) {
    return scheduler.StartTaskTimer(deadline, task);
  }
  static void OnUnhandledTaskException(Scheduler& scheduler, const TaskMetadata& task,
                                       const std::exception_ptr& exception) {
    scheduler.OnUnhandledTaskException(task, exception);
  }
};

}  // namespace internal

namespace internal {

template <typename T>
struct IsCo : std::false_type {};
template <typename T>
struct IsCo<Co<T>> : std::true_type {};

// No label (a spawn without one passes this rather than a temporary).
inline const std::optional<TaskLabel> kNoTaskLabel;

// Makes `root` (a Co's frame, released from it) a task and starts it.
template <typename T>
Task<T> SpawnRoot(Scheduler& scheduler, std::coroutine_handle<CoPromise<T>> root,
                  ScheduleKind kind, const std::optional<TaskLabel>& label, uint32_t lane,
                  const SourceLocation& location) {
  if (!root) {
    throw std::invalid_argument(
        "simsched: Spawn was given an empty Co (moved from or default-constructed); "
        "pass the result of calling a coroutine function");
  }
  auto* state =
      TaskState<T>::CreateInFrameRoom(scheduler, kind, root, scheduler.IsThreadConfined());
  state->metadata.set_spawn(location, label, lane);
  // A task spawned by a task belongs to the same session.
  if (TaskHeader* parent = current_task) state->metadata.set_session(parent->metadata.session());
  Task<T> task = Task<T>::Adopt(state);
  // OnTaskSpawned, then the first ScheduleSelf, in one call.
  internal::TaskCoreAccess::StartSpawnedTask(scheduler, *state);
  return task;
}

template <typename T>
Task<T> SpawnTask(Scheduler& scheduler, Co<T> co, ScheduleKind kind,
                  std::optional<TaskLabel> label, uint32_t lane,
                  const SourceLocation& location) {
  return SpawnRoot(scheduler, co.Release(), kind, label, lane, location);
}

// Runs a callable that returns a Co, keeping the callable (and so a lambda's
// captures) alive in this frame for as long as the coroutine runs.
template <typename F>
auto InvokeOwned(F f) -> std::invoke_result_t<F&> {
  using R = typename std::invoke_result_t<F&>::value_type;
  if constexpr (std::is_void_v<R>) {
    co_await std::invoke(f);
  } else {
    co_return co_await std::invoke(f);
  }
}

template <typename F>
concept CoFactory = std::invocable<F&> && IsCo<std::invoke_result_t<F&>>::value;

template <typename F>
using CoFactoryResult = typename std::invoke_result_t<F&>::value_type;

// A Co as is, or a callable returning a Co wrapped so the callable lives in
// the task (see Spawn).
template <typename T>
Co<T> AsCo(Co<T> co) {
  return co;
}
template <CoFactory F>
auto AsCo(F&& factory) {
  return InvokeOwned(std::decay_t<F>(std::forward<F>(factory)));
}

}  // namespace internal

// Spawn()
//
// Starts `co` as a new background task and returns its handle. The task
// inherits the session of the task that spawns it. `location` is captured
// automatically.
//
// A callable returning a Co may be passed instead; it is moved into the task
// and kept alive until the task ends, so lambda captures stay valid:
//   Spawn(s, [state]() -> Co<void> { co_await state->Flush(); })
template <typename T>
Task<T> Spawn(Scheduler& scheduler, Co<T> co,
              SourceLocation location = SourceLocation::current()) {
  // The frame straight from `co`, no label object: the most common spawn.
  return internal::SpawnRoot(scheduler, co.Release(), internal::ScheduleKind::kBackground,
                             internal::kNoTaskLabel, 0, location);
}
template <internal::CoFactory F>
Task<internal::CoFactoryResult<F>> Spawn(
    Scheduler& scheduler, F&& factory,
    SourceLocation location = SourceLocation::current()) {
  return Spawn(scheduler, internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))),
               location);
}

// SpawnLabeled()
//
// As `Spawn`, with a label the scheduler may use for prioritization.
template <typename T>
Task<T> SpawnLabeled(Scheduler& scheduler, TaskLabel label, Co<T> co,
                     SourceLocation location = SourceLocation::current()) {
  return internal::SpawnTask(scheduler, std::move(co), internal::ScheduleKind::kLabeled,
                             std::move(label), 0, location);
}
template <internal::CoFactory F>
Task<internal::CoFactoryResult<F>> SpawnLabeled(
    Scheduler& scheduler, TaskLabel label, F&& factory,
    SourceLocation location = SourceLocation::current()) {
  return SpawnLabeled(scheduler, std::move(label),
                      internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))),
                      location);
}
// With the label written as a string literal: `SpawnLabeled(s, "io", co)`
// is `SpawnLabeled(s, TaskLabel("io"), co)`. Making a TaskLabel looks its
// name up under a lock; on a hot path, make it once (a static) and pass it.
template <size_t N, typename C>
auto SpawnLabeled(Scheduler& scheduler, const char (&label)[N], C&& co,
                  SourceLocation location = SourceLocation::current()) {
  return SpawnLabeled(scheduler, TaskLabel(label), std::forward<C>(co), location);
}

// SpawnForeground()
//
// As `Spawn`, but every poll of the task runs on the main thread, in FIFO
// order with other foreground work.
template <typename T>
Task<T> SpawnForeground(Scheduler& scheduler, Co<T> co,
                        SourceLocation location = SourceLocation::current()) {
  return internal::SpawnTask(scheduler, std::move(co), internal::ScheduleKind::kForeground,
                             std::nullopt, 0, location);
}
template <internal::CoFactory F>
Task<internal::CoFactoryResult<F>> SpawnForeground(
    Scheduler& scheduler, F&& factory,
    SourceLocation location = SourceLocation::current()) {
  return SpawnForeground(scheduler,
                         internal::InvokeOwned(std::decay_t<F>(std::forward<F>(factory))),
                         location);
}

// CurrentScheduler()
//
// The scheduler of the task being polled on this thread, or null outside a
// task. Lets a coroutine spawn siblings without threading the scheduler
// through every call.
inline Scheduler* CurrentScheduler() {
  internal::TaskHeader* task = internal::current_task;
  return task == nullptr ? nullptr : task->scheduler();
}


// YieldAwaiter
//
// See `Yield()`.
class YieldAwaiter {
 public:
  YieldAwaiter() = default;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) {
    internal::TaskHeader& task = internal::RequireCurrentTask("Yield()");
    // The waker path every awaitable uses, minus the reference count a Waker
    // object would add and drop: waking the task during its own poll
    // re-queues it as soon as the poll ends. No wait site is recorded: a
    // yielded task is always queued, and reports say so.
    task.WakeSelf();
  }
  void await_resume() const noexcept {}
};

// Yield()
//
// Suspends the current task and queues it again at once, letting the
// scheduler run something else first.
inline YieldAwaiter Yield() { return YieldAwaiter(); }

// SleepAwaiter
//
// See `Sleep()` and `SleepUntil()`. It lives in the sleeping coroutine's
// frame, so it is kept to two words (16 bytes; every byte here is a byte of
// every sleeping task). Until the timer starts: the wait site, interned
// when the awaiter is made (the location is needed for nothing else), with
// a flag saying whether the other word holds the duration or the deadline.
// While the timer is armed: the scheduler (flagged as armed) and the
// timer's id.
class SleepAwaiter {
 public:
  SleepAwaiter(std::optional<Duration> duration, Instant deadline,
               const SourceLocation& location)
      : site_or_scheduler_(
            reinterpret_cast<uintptr_t>(internal::InternWaitSite("Sleep", location, nullptr)) |
            (duration.has_value() ? kRelative : 0)),
        ns_or_timer_(static_cast<uint64_t>(duration.has_value()
                                               ? duration->count()
                                               : deadline.time_since_epoch().count())) {}
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    // Armed only if the task was cancelled while asleep.
    if ((site_or_scheduler_ & kArmed) != 0) {
      reinterpret_cast<Scheduler*>(site_or_scheduler_ & ~kFlags)
          ->CancelTimer(TimerId{ns_or_timer_});
    }
  }

  bool await_ready() {
    internal::TaskHeader& task = internal::RequireCurrentTask("Sleep()");
    const Instant now = task.scheduler()->Now();
    if ((site_or_scheduler_ & kRelative) != 0) {
      ns_or_timer_ = static_cast<uint64_t>(
          DeadlineAfter(now, Duration(static_cast<int64_t>(ns_or_timer_)))
              .time_since_epoch()
              .count());
      site_or_scheduler_ &= ~kRelative;
    }
    return deadline() <= now;
  }
  // Inline into the sleeping coroutine (an out-of-line call costs W2 about
  // 12 instructions a timer).
  [[gnu::always_inline]] void await_suspend(std::coroutine_handle<>) {
    internal::TaskHeader& task = *internal::current_task;
    task.SetWaitRecord(reinterpret_cast<const internal::PackedWaitSite*>(site_or_scheduler_));
    Scheduler* scheduler = task.scheduler();
    const TimerId timer = internal::TaskCoreAccess::StartTaskTimer(*scheduler, deadline(), task);
    // After StartTimer: if that throws, nothing is armed.
    site_or_scheduler_ = reinterpret_cast<uintptr_t>(scheduler) | kArmed;
    ns_or_timer_ = timer.value;
  }
  void await_resume() noexcept { site_or_scheduler_ = 0; }

 private:
  // Flags in the low bits of the first word (both pointers it holds are at
  // least 8-aligned). kRelative: before the timer starts, the second word
  // holds a duration, until await_ready makes it a deadline. kArmed: the
  // timer is started; the words hold the scheduler and the timer's id.
  static constexpr uintptr_t kRelative = 1;
  static constexpr uintptr_t kArmed = 2;
  static constexpr uintptr_t kFlags = kRelative | kArmed;
  static_assert(alignof(internal::PackedWaitSite) > kFlags && alignof(Scheduler) > kFlags);

  Instant deadline() const { return Instant(Duration(static_cast<int64_t>(ns_or_timer_))); }

  uintptr_t site_or_scheduler_;
  uint64_t ns_or_timer_;
};

// Sleep()
//
// Suspends the current task for `duration` of its scheduler's time (virtual
// time under the TestScheduler). A zero or negative duration does not
// suspend. Cancelling the task while it sleeps cancels the timer.
//
// The duration is taken by reference (and any `std::chrono::duration` as
// itself): g++ keeps a `co_await` expression's class-type temporaries in the
// coroutine frame across the suspension, so a by-value `Duration` argument
// cost every sleeping frame 16 bytes; a reference to a variable costs none,
// and `Sleep(5ms)` keeps only the literal's 8.
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
inline SleepAwaiter Sleep(const Duration& duration, SourceLocation location) {
  return SleepAwaiter(duration, Instant{}, location);
}
// The call site as scalars rather than a defaulted SourceLocation: g++ keeps
// the class-type temporaries of a `co_await` expression in the coroutine
// frame, across the suspension (16 bytes of every sleeping frame).
inline SleepAwaiter Sleep(const Duration& duration,
                          CallSiteRecord site = __builtin_source_location(),
                          const char* function = __builtin_FUNCTION()) {
  return SleepAwaiter(duration, Instant{}, SourceLocation::current(site, function));
}
// Another duration type (`Sleep(5ms)`), converted here rather than into a
// temporary `Duration` the frame would keep as well.
template <typename Rep, typename Period>
  requires(!std::is_same_v<std::chrono::duration<Rep, Period>, Duration> &&
           std::is_convertible_v<const std::chrono::duration<Rep, Period>&, Duration>)
inline SleepAwaiter Sleep(const std::chrono::duration<Rep, Period>& duration,
                          CallSiteRecord site = __builtin_source_location(),
                          const char* function = __builtin_FUNCTION()) {
  return SleepAwaiter(Duration(duration), Instant{}, SourceLocation::current(site, function));
}
#else
inline SleepAwaiter Sleep(const Duration& duration,
                          SourceLocation location = SourceLocation::current()) {
  return SleepAwaiter(duration, Instant{}, location);
}
#endif

// SleepUntil()
//
// Suspends the current task until its scheduler's clock reaches `deadline`
// (taken by reference, as Sleep's duration).
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
inline SleepAwaiter SleepUntil(const Instant& deadline, SourceLocation location) {
  return SleepAwaiter(std::nullopt, deadline, location);
}
// The call site as scalars: see Sleep().
inline SleepAwaiter SleepUntil(const Instant& deadline,
                               CallSiteRecord site = __builtin_source_location(),
                               const char* function = __builtin_FUNCTION()) {
  return SleepAwaiter(std::nullopt, deadline, SourceLocation::current(site, function));
}
#else
inline SleepAwaiter SleepUntil(const Instant& deadline,
                               SourceLocation location = SourceLocation::current()) {
  return SleepAwaiter(std::nullopt, deadline, location);
}
#endif

// SimulateRandomDelay()
//
// Yields a seed-chosen number of times (0 to `max_yields`) under the
// TestScheduler, and not at all in production: sprinkle it where code wants
// the scheduler to explore more interleavings around a racy window.
//   co_await SimulateRandomDelay();
#if SIMSCHED_SOURCE_LOCATION_SCALAR_SITE
Co<void> SimulateRandomDelay(uint32_t max_yields, SourceLocation location);
// The call site as scalars: see Sleep().
inline Co<void> SimulateRandomDelay(uint32_t max_yields = 3,
                                    CallSiteRecord site = __builtin_source_location(),
                                    const char* function = __builtin_FUNCTION()) {
  return SimulateRandomDelay(max_yields, SourceLocation::current(site, function));
}
#else
Co<void> SimulateRandomDelay(uint32_t max_yields = 3,
                             SourceLocation location = SourceLocation::current());
#endif

// BlockOnResult<T>
//
// What `BlockOn` returns: `absl::Status` for void tasks,
// `absl::StatusOr<std::reference_wrapper<U>>` for `U&`, else
// `absl::StatusOr<T>`.
template <typename T>
using BlockOnResult = std::conditional_t<
    std::is_void_v<T>, absl::Status,
    absl::StatusOr<std::conditional_t<
        std::is_reference_v<T>, std::reference_wrapper<std::remove_reference_t<T>>, T>>>;

// BlockOn()
//
// Runs the scheduler (or waits for it) until `task` finishes, and returns its
// result. Call it from plain code, never from inside a task (await instead).
// Errors: the scheduler's status if it cannot finish the task (a deadlock
// report, an exhausted step budget, a failed run), `Cancelled` if the task
// was cancelled. If the task ended with an exception, BlockOn rethrows it.
template <typename T>
BlockOnResult<T> BlockOn(Scheduler& scheduler, Task<T>& task) {
  if (!task) {
    return absl::InvalidArgumentError(
        "BlockOn was given an empty Task (moved from, detached or default-made)");
  }
  if (absl::Status status = scheduler.BlockOnTask(*task.state()); !status.ok()) return status;
  if (task.IsCancelled()) {
    return absl::CancelledError(task.metadata().DebugString() + " was cancelled");
  }
  if constexpr (std::is_void_v<T>) {
    task.state()->TakeResult();
    return absl::OkStatus();
  } else if constexpr (std::is_reference_v<T>) {
    return std::ref(task.state()->TakeResult());
  } else {
    return task.state()->TakeResult();
  }
}
template <typename T>
BlockOnResult<T> BlockOn(Scheduler& scheduler, Task<T>&& task) {
  return BlockOn(scheduler, task);
}
template <typename T>
BlockOnResult<T> BlockOn(Scheduler& scheduler, Co<T> co,
                         SourceLocation location = SourceLocation::current()) {
  Task<T> task = Spawn(scheduler, std::move(co), location);
  return BlockOn(scheduler, task);
}

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_SCHEDULER_H_
