// File: scheduler/thread_pool_scheduler.h
// -----------------------------------------------------------------------------
//
// `ThreadPoolScheduler` is the production `Scheduler` for Linux: what the
// design calls the GCD scheduler. Background tasks run on a pool of worker
// threads; foreground tasks run on the application's main thread, which
// drains the scheduler's run loop with `Run()`, `RunUntil()` or `BlockOn()`.
// Code written against `Scheduler` (scheduler.h) and tested under the seeded
// `TestScheduler` runs on it unchanged.
//
//   * Workers: N threads (default: the hardware concurrency). Each has its
//     own FIFO run queue; a task woken or spawned on a worker goes to that
//     worker's queue, work from other threads goes to a shared injection
//     queue, and an idle worker steals half of a busy worker's queue. At
//     most half the idle workers spin looking for work, the others sleep; a
//     push wakes a sleeper only if nobody is looking, so a busy pool makes
//     no system calls to hand work around. A task that blocks its thread
//     (Park, a blocking call) holds its worker until it returns.
//   * Main thread: the thread that constructed the scheduler.
//     `ScheduleForeground` work runs only there, in FIFO order, while that
//     thread is inside `Run()`, `RunUntil()` or `BlockOn()`. `IsMainThread()`
//     is true only on it.
//   * Timers: one timer thread over a binary heap, real monotonic time.
//     Timers with equal deadlines fire in the order they were started.
//   * `Park()` / `GetUnparker()`: a real parker, one per scheduler, as in the
//     TestScheduler: an `Unpark()` releases one parked thread, or the next
//     `Park()` if nobody is parked.
//   * Labels are accepted and ignored; `Deprioritize` is a no-op.
//   * Task ids are unique per scheduler and increase per spawning thread (a
//     program spawning from one thread sees 1, 2, 3, ...); across threads
//     they are not in spawn order.
//   * An exception escaping a detached task is logged through the "simsched"
//     spdlog logger with the task's spawn location.
//
// Shutdown. Destroying the scheduler stops accepting work (a Runnable
// scheduled from then on is dropped, which cancels its task), makes any
// `Run()`/`RunUntil()`/`BlockOn()` on the main thread return, joins the
// workers (each finishes the poll under way) and the timer thread, then
// cancels every task still queued or suspended, in task id order and in
// rounds (a frame's destructor may spawn or wake; what it starts is
// cancelled too, never run), and finally drops the timers' wakers. Every
// coroutine frame is freed. `Task` handles and `Waker`s may outlive the
// scheduler. A task may hold the last reference to a scheduler made by
// `Create()` (as executors do): dropped on one of the scheduler's own
// threads, it is destroyed on a helper thread; dropped while that task is
// being cancelled elsewhere, it is freed when the cancellation ends.
//
// This header defines:
//   * `simsched::ThreadPoolSchedulerOptions`
//   * `simsched::ThreadPoolScheduler`
//
// Example:
//
//   int main() {
//     auto scheduler = simsched::ThreadPoolScheduler::Create();
//     simsched::Task<void> app = simsched::SpawnForeground(*scheduler, App(scheduler));
//     absl::Status status = scheduler->RunUntil(app);  // main thread drains
//     ...                                               // foreground work
//   }
//
//   simsched::Co<void> App(std::shared_ptr<simsched::Scheduler> scheduler) {
//     int n = co_await simsched::Spawn(*scheduler, Compute());   // a worker
//     co_await simsched::Sleep(std::chrono::milliseconds(10));   // a timer
//     UpdateUi(n);                                               // main thread
//   }

#ifndef SIMSCHED_SCHEDULER_THREAD_POOL_SCHEDULER_H_
#define SIMSCHED_SCHEDULER_THREAD_POOL_SCHEDULER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/timer_queue.h"
#include "scheduler/scheduler.h"

namespace simsched {

namespace internal {
struct PoolWorker;
struct PoolIdBlock;
struct PoolIdAllocator;
struct PoolReturnList;
struct PoolExternalIds;
struct PoolBlockMap;
struct PoolWaiterMap;
struct PoolBlockWaiter;
}  // namespace internal

// ThreadPoolSchedulerOptions
struct ThreadPoolSchedulerOptions {
  // Worker threads. Zero means `std::thread::hardware_concurrency()` (at
  // least one).
  int worker_threads = 0;
  // Prefix of the worker threads' names as `top` and debuggers show them
  // ("simsched-w0", ...). Linux keeps at most 15 characters of a name.
  std::string thread_name_prefix = "simsched";
  // How often `RunUntil(predicate)` re-checks its predicate while the main
  // thread has no foreground work (it is also checked after every
  // foreground poll).
  Duration predicate_recheck_interval = std::chrono::milliseconds(1);
};

// ThreadPoolScheduler
//
// See the file comment. Every member function is thread-safe; `Run()`,
// `RunUntil()` and a draining `BlockOn()` must be called on the main thread.
class ThreadPoolScheduler final : public Scheduler {
 public:
  // Starts the workers and the timer thread. The calling thread becomes the
  // scheduler's main thread.
  explicit ThreadPoolScheduler(ThreadPoolSchedulerOptions options = {});
  // Shuts down as described in the file comment. Must not run on one of the
  // scheduler's own threads (use `Create()`, whose deleter handles that).
  ~ThreadPoolScheduler() override;

  ThreadPoolScheduler(const ThreadPoolScheduler&) = delete;
  ThreadPoolScheduler& operator=(const ThreadPoolScheduler&) = delete;

  // Create()
  //
  // The usual way to make one. The returned pointer's deleter makes it safe
  // for a task (or a timer's waker, or a foreground task on the main thread)
  // to hold the last reference: dropped on one of the scheduler's own
  // threads, the scheduler is destroyed on a helper thread once that thread
  // is done with it. Use this, not `std::make_shared`, whenever tasks keep
  // the scheduler alive (as executors do).
  static std::shared_ptr<ThreadPoolScheduler> Create(ThreadPoolSchedulerOptions options = {});

  // JoinDeferredDestructions()
  //
  // Waits until every scheduler whose destruction was handed to a helper
  // thread (see `Create()`) is fully destroyed. Runs automatically at process
  // exit; call it yourself before checking for leaks.
  static void JoinDeferredDestructions();

  // -- Scheduler --
  void Schedule(Runnable runnable) override;
  void ScheduleLabeled(Runnable runnable, TaskLabel label) override;
  void ScheduleForeground(Runnable runnable) override;
  bool IsMainThread() const override;
  Instant Now() const override { return Clock::now(); }
  bool Park(std::optional<Duration> timeout) override;
  Unparker GetUnparker() override;
  TimerId StartTimer(Instant deadline, Waker waker) override;
  void CancelTimer(TimerId timer) override;
  bool IsTaskRunning(TaskId id) const override;
  // BlockOnTask()
  //
  // On the main thread: drains the run loop (runs foreground work) until
  // `task` finishes; `Stop()` does not end it. On any other thread: blocks
  // until `task` finishes. Returns OK once the task has finished and the
  // scheduler has stopped tracking it (so `IsTaskRunning` is false).
  // Errors: FailedPrecondition from inside a task (await it instead),
  // InvalidArgument for another scheduler's task, Aborted if the scheduler is
  // destroyed meanwhile.
  absl::Status BlockOnTask(internal::TaskHeader& task) override;
  bool IsThreadConfined() const override { return false; }

  // -- The main-thread run loop --

  // Run()
  //
  // Runs foreground work on the main thread until `Stop()` is called.
  // Returns OK after a stop, FailedPrecondition if called off the main thread
  // or from inside a task, Aborted if the scheduler is destroyed meanwhile.
  absl::Status Run();

  // RunUntil()
  //
  // As `Run()`, but also returns OK as soon as `task` has finished (the
  // result stays in the task; read it with `BlockOn`) or `done()` returns
  // true. `done` is called on the main thread after every foreground poll and
  // at least every `predicate_recheck_interval` while idle. If `Stop()` was
  // called first, returns Cancelled.
  template <typename T>
  absl::Status RunUntil(const Task<T>& task) {
    if (!task) return absl::InvalidArgumentError("RunUntil was given an empty Task");
    return RunUntilTask(*task.state());
  }
  absl::Status RunUntil(absl::FunctionRef<bool()> done);

  // Stop()
  //
  // Makes `Run()` and `RunUntil()` return (after the foreground poll under
  // way, if any). Sticky: later calls return at once, so a stop requested
  // before the loop starts is not lost. Idempotent; callable from any thread
  // or task. `BlockOn` is not affected.
  void Stop();

  // IsStopped()
  //
  // Whether `Stop()` has been called.
  bool IsStopped() const;

  // -- Inspection --

  // worker_count()
  //
  // The number of worker threads.
  int worker_count() const { return static_cast<int>(workers_.size()); }

  // LiveTaskCount()
  //
  // Tasks spawned and not yet finished (completed or cancelled).
  size_t LiveTaskCount() const;

 private:
  // The task core's hooks, reached through internal::TaskCoreAccess.
  void OnTaskSpawned(internal::TaskHeader& task) override;
  void OnTaskFinished(internal::TaskHeader& task) override;
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override;

  enum class LoopEnd { kStop, kTaskOrPredicate, kBlockOn };

  // Queueing. Queues hold task headers, each with the reference its Runnable
  // held. Dropping one (`Runnable::Adopt(task)` going out of scope) cancels
  // the task.
  void EnqueueBackground(internal::TaskHeader* task);
  void EnqueueForeground(internal::TaskHeader* task);
  // Work scheduled after `accepting_` cleared: held for shutdown's
  // cancellation rounds, or dropped at once once shutdown is over.
  void HoldForShutdown(internal::TaskHeader* task);
  void RunTask(internal::TaskHeader* task);

  // Workers.
  void WorkerMain(uint32_t index);
  internal::TaskHeader* FindWork(internal::PoolWorker& self);
  internal::TaskHeader* PopLocal(internal::PoolWorker& self);
  internal::TaskHeader* PopInjected(internal::PoolWorker& self);
  internal::TaskHeader* Steal(internal::PoolWorker& self);
  bool HasVisibleWork() const;
  bool WaitForWork();
  void NotifyWorkAvailable();

  // Timers.
  void TimerMain();

  // The main-thread loop.
  absl::Status CheckCanDrain(const char* operation) const;
  absl::Status RunUntilTask(internal::TaskHeader& task);
  // Runs foreground work until `end` says so: Stop() (kStop, kTaskOrPredicate),
  // `done()` (kTaskOrPredicate without `waited_task`), or `waited_task`
  // finishing (kTaskOrPredicate, kBlockOn).
  absl::Status DrainMainLoop(LoopEnd end, absl::FunctionRef<bool()> done,
                             std::optional<Duration> recheck_interval,
                             internal::TaskHeader* waited_task);

  // Task tracking (see "Live tasks" in the .cc).
  // Issues `task` an id; returns a finished task for the caller to release
  // (outside any lock), or null.
  internal::TaskHeader* AssignId(internal::PoolIdAllocator& ids, internal::TaskHeader& task);
  internal::PoolIdBlock* NewIdBlock(internal::PoolIdAllocator& ids);
  void FreeIdBlock(internal::PoolIdBlock* block);
  std::shared_ptr<internal::PoolBlockWaiter> RegisterBlockWaiter(internal::TaskHeader& task,
                                                                 bool main_loop,
                                                                 absl::Status& error);
  void UnregisterBlockWaiter(internal::TaskHeader& task);
  void NotifyBlockWaiter(uint64_t id);

  // Shutdown (see the file comment); idempotent. `Create()`'s deleter runs it
  // before freeing.
  void Shutdown();
  void CancelEverything();
  void DrainAllReturns();
  bool OnOwnThread() const;
  // For `Create()`'s deleter: true if the scheduler may be freed now; else
  // the last task still tearing down on this thread frees it.
  bool ReleaseOrDeferFree();
  static void DeleteCreated(ThreadPoolScheduler* scheduler);

  // Read-mostly state first; each group written at run time starts a cache
  // line of its own (alignas(64)), so that toggling one does not evict what
  // every push and poll reads.
  const ThreadPoolSchedulerOptions options_;
  const std::thread::id main_thread_;
  std::shared_ptr<internal::Parker> parker_;
  // Cleared once at shutdown: work scheduled from then on is not run.
  std::atomic<bool> accepting_{true};
  // Work scheduled during shutdown waits here for the cancellation rounds
  // instead of being dropped (cancelled) inside the Schedule call: the waker
  // may be a poll or a frame destruction of a task the woken one owns, and a
  // cancellation nested there could not destroy the owned task first.
  std::mutex shutdown_mu_;
  std::vector<internal::TaskHeader*> held_for_shutdown_;  // guarded by shutdown_mu_
  bool shutdown_over_ = false;                            // guarded by shutdown_mu_
  std::atomic<bool> stopping_workers_{false};
  bool shut_down_ = false;  // touched by the destroying thread only
  uint32_t max_searchers_ = 1;
  // Workers and their shared injection queue.
  std::vector<std::unique_ptr<internal::PoolWorker>> workers_;
  std::unique_ptr<internal::PoolWorker> injector_;  // only its queue is used
  // Live tasks: id blocks (see the .cc), keyed by block index.
  std::unique_ptr<internal::PoolExternalIds[]> external_ids_;
  std::unique_ptr<internal::PoolBlockMap> blocks_;  // guarded by registry_mu_
  // BlockOn calls waiting, by task id.
  std::unique_ptr<internal::PoolWaiterMap> waiters_;  // guarded by waiters_mu_
  // Set when the deleter found a task still tearing down on its own thread;
  // that task's OnTaskFinished frees the scheduler.
  std::atomic<bool> free_when_idle_{false};
  std::atomic<bool> free_claimed_{false};

  // Idle workers: at most `max_searchers_` spin looking for work, the rest
  // sleep on idle_cv_. A push wakes a sleeper only when nobody is searching.
  alignas(64) std::atomic<uint32_t> searching_{0};
  alignas(64) std::mutex idle_mu_;
  std::condition_variable idle_cv_;
  std::atomic<uint32_t> sleepers_{0};
  uint32_t wake_tokens_ = 0;  // guarded by idle_mu_

  alignas(64) std::atomic<uint64_t> next_id_block_{0};
  alignas(64) mutable std::mutex registry_mu_;
  alignas(64) std::mutex waiters_mu_;

  // The main-thread loop.
  alignas(64) mutable std::mutex main_mu_;
  std::condition_variable main_cv_;
  std::condition_variable callers_cv_;  // loops/blockers leaving, for shutdown
  internal::RingQueue<internal::TaskHeader*> main_queue_;  // guarded by main_mu_
  bool main_waiting_ = false;        // guarded by main_mu_
  bool main_poked_ = false;          // guarded by main_mu_
  bool stop_requested_ = false;      // guarded by main_mu_
  bool shutting_down_ = false;       // guarded by main_mu_
  int active_loops_ = 0;             // guarded by main_mu_
  int active_blockers_ = 0;          // guarded by main_mu_ (off-main BlockOn)

  // Timers.
  alignas(64) std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  internal::TimerQueue timers_;  // guarded by timer_mu_
  bool timer_stop_ = false;                 // guarded by timer_mu_
  std::thread timer_thread_;
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_THREAD_POOL_SCHEDULER_H_
