// File: scheduler/test_scheduler.h
// -----------------------------------------------------------------------------
//
// `TestScheduler` runs every task on the calling thread, one poll per step, in
// an order chosen by a seeded PRNG, under virtual time. A run is a function of
// its seed: the same seed and build give the same interleaving, the same
// trace and the same `TraceHash()`, byte for byte, on every machine and with
// g++ or clang++. A failure seen once is replayed exactly from its seed.
//
// How a step picks: the candidates are every queued background task plus the
// head of each *lane* (a simulated main thread; work within a lane is FIFO, as
// a real main thread's run loop is). Lane 0 is the default main thread; add one
// per simulated client with `AddLane()`. In randomized mode (the default) one
// candidate is drawn uniformly with `Rng::Below`; in FIFO mode the one queued
// first wins. Tasks whose label was `Deprioritize`d run only when no other
// task can.
//
// Virtual time starts at `Instant{}` and moves only by `AdvanceClock()` or,
// in `Run()` and `BlockOn()`, by jumping to the earliest timer when nothing
// is runnable. Timers fire in (deadline, start order).
//
// Failures come back as `absl::Status`, never as an abort or a hang, and the
// kind of failure is a payload (`IsDeadlock(status)`, scheduler/outcome.h):
//   * a deadlock (`BlockOn` on a task that can never finish, or `Run()`
//     ending with tasks still suspended while nothing is runnable and no
//     timer is pending) is a wait-for report: every stuck task with its spawn
//     site, the `co_await` it is suspended at, what it waits on and, where the
//     primitive knows, who holds it ("Mutex 'a' held by task 2"), plus any
//     wait-for cycle. Servers parked on purpose opt out with
//     `allow_idle_tasks` or `AllowIdle(task)`;
//   * exceeding the step budget reports the same way (a livelock);
//   * an exception escaping a detached task fails the run with its message
//     and the task's spawn site;
//   * a wake or spawn arriving from another OS thread fails the run: the test
//     is not deterministic (unless `allow_parking` opts into real threads).
//
// This header defines:
//   * `simsched::TestSchedulerOptions`, `simsched::BlockOnBudget`
//   * `simsched::TestScheduler`
//   * `simsched::TraceEntry`, `simsched::LaneId`
//   * `simsched::TaskEvent`, `simsched::TraceNote` (recorded with the trace)
//
// Example:
//
//   auto scheduler = simsched::TestScheduler::Create({.seed = 42});
//   simsched::Task<int> task = simsched::Spawn(*scheduler, Work(21));
//   absl::StatusOr<int> result = scheduler->BlockOn(task);
//   EXPECT_EQ(*result, 42) << "replay with seed " << scheduler->seed();

#ifndef SIMSCHED_SCHEDULER_TEST_SCHEDULER_H_
#define SIMSCHED_SCHEDULER_TEST_SCHEDULER_H_

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "scheduler/internal/direct_enqueue.h"
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/live_task_index.h"
#include "scheduler/internal/schedule_strategy.h"
#include "scheduler/outcome.h"
#include "scheduler/internal/timer_queue.h"
#include "scheduler/scheduler.h"
#include "scheduler/strategy.h"
#include "sim/random.h"

namespace simsched {

namespace internal {
class TestSchedulerPool;
}  // namespace internal

// TestSchedulerOptions
struct TestSchedulerOptions {
  // Every scheduling decision derives from this.
  uint64_t seed = 0;
  // Pick uniformly among runnable tasks (true) or run them in queue order.
  // Ignored when `strategy` is set.
  bool randomize_order = true;
  // How each step picks (scheduler/strategy.h): "random", "fifo", "pct:3",
  // "pct:3:k=180", "pos" or "mix" (chosen from the seed). Empty: "random",
  // or "fifo" without `randomize_order`. A bad value fails the run with
  // InvalidArgument (see `status()`) and it runs as "random".
  std::string strategy = "";
  // Steps one scheduler may take in total before Run/BlockOn fail with a
  // livelock report. Zero means no limit.
  uint64_t max_steps = 10'000'000;
  // Whether the scheduler may block its thread waiting for real threads:
  // `Park()` blocks, `BlockOn` parks when nothing is runnable (until another
  // thread's Unparker or wake arrives, or `park_timeout` passes), and wakes
  // from other threads are accepted. Off by default: a deterministic test
  // must not depend on real threads, so all three fail the run instead.
  bool allow_parking = false;
  // With `allow_parking`: how long (real time) `BlockOn` parks before it
  // gives up and reports a deadlock.
  Duration park_timeout = std::chrono::seconds(10);
  // Keep a full `TraceEntry` per step (the trace hash is always kept). Costs
  // memory and time; any seed can be re-run with it on.
  bool record_trace = false;
  // Whether `Run()` may end with live tasks suspended while nothing can wake
  // them (servers parked on purpose). Off by default: such tasks are a
  // deadlock and `Run()` fails with a wait-for report. `AllowIdle(task)` opts
  // out one task at a time.
  bool allow_idle_tasks = false;
};

// LaneId
//
// A simulated main thread of a TestScheduler. Lane 0 always exists.
using LaneId = uint32_t;

// BlockOnBudget
//
// Limits for a budgeted `TestScheduler::BlockOn`: it returns (with
// DeadlineExceeded, the task still running and not cancelled) once either
// limit is reached. A zero step budget still polls the task once if it is
// queued.
struct BlockOnBudget {
  std::optional<uint64_t> max_steps = std::nullopt;
  std::optional<Duration> max_time = std::nullopt;
};

// WakeCause
//
// Why a task was queued for the step that ran it (recorded with the trace).
enum class WakeCause : uint8_t {
  kUnknown,
  kSpawned,        // its first step; `woken_by` is the spawning task, if any
  kTask,           // woken by another task (`woken_by`): an unlock, a send, a join
  kItself,         // it re-queued itself (Yield, SimulateRandomDelay)
  kTimer,          // a timer fired (Sleep, a timeout)
  kOutsideTask,    // woken from the test body or other code outside any task
  kForeignThread,  // woken from another OS thread (allow_parking)
};

// TraceEntry
//
// One scheduling decision: which task ran, where it resumed, what woke it.
struct TraceEntry {
  uint64_t step = 0;
  Duration time{};  // virtual time since the epoch
  TaskId task;
  std::optional<TaskLabel> label;
  SourceLocation spawn_location;
  // The lane the step ran on; empty for background work.
  std::optional<LaneId> lane;
  // Where the task resumed: the `co_await` it had been suspended at and what
  // it waited on ("Mutex 'a'::Lock"), when the awaitable recorded it
  // (DescribeWait); for a join, the task it awaited.
  std::string resumed_what;
  SourceLocation resumed_at;
  TaskId resumed_after_task;
  WakeCause cause = WakeCause::kUnknown;
  TaskId woken_by;  // for kTask and kSpawned (zero: spawned from outside)
  // What the waker did, when it said (`Waker::Wake(reason)`): "a channel
  // send", "a mutex unlock", ... Empty otherwise. Points at a literal.
  std::string_view wake_reason;
  // A framework task (a session grace-period timer); hidden from reports
  // unless SIMSCHED_LOG=full.
  bool internal = false;
  // The session (session/) the task belongs to, if any.
  std::optional<SessionId> session;

  // "step 12 t=+5ms task 3 "io" [lane 1] resumed after Mutex 'a'::Lock at
  //  foo.cc:20 (Fn), woken by a mutex unlock from task 2"
  std::string DebugString() const;
  friend bool operator==(const TraceEntry& a, const TraceEntry& b);
};

// TaskEvent
//
// A task's spawn or end, recorded with the trace (`record_trace`): trace
// viewers draw a task's life from these and its steps from `TraceEntry`s.
struct TaskEvent {
  enum class Kind : uint8_t { kSpawned, kCompleted, kCancelled };
  Kind kind = Kind::kSpawned;
  uint64_t step = 0;  // steps taken when it happened
  Duration time{};
  TaskMetadata task;
  TaskId parent;  // kSpawned: the task that spawned it (zero: from outside)
};

// TraceNote
//
// Something the simulated world reports while tracing ("buggify.fired",
// "host.crash", ...; see `TestScheduler::AddTraceNote`).
struct TraceNote {
  uint64_t step = 0;
  Duration time{};
  std::string kind;
  std::string text;
  TaskId task;  // the task running when it happened, if any
};

// PollCostModel
//
// Makes work take virtual time: after each poll the TestScheduler asks the
// installed model what the poll cost and moves virtual time forward by that
// much (firing the timers that came due). The simulated world's CPU model
// (sim/world.h) implements it; none is installed by default.
class PollCostModel {
 public:
  virtual ~PollCostModel() = default;
  // The virtual time the poll of `task` that just ended took (zero or
  // negative: none).
  virtual Duration PollCost(TaskId task) = 0;
};

// TaskObserver
//
// Told of each task the TestScheduler starts, with the task that was being
// polled when it was spawned (the zero id when spawned from plain code), and
// of each task that ends (completed or cancelled). Whatever spawn function
// made the task, through whichever scheduler decorator, it is seen here. The
// simulated world (sim/world.h) uses it to give a host every task its tasks
// spawn. None is installed by default.
class TaskObserver {
 public:
  virtual ~TaskObserver() = default;
  virtual void OnTaskSpawned(TaskId task, TaskId parent) = 0;
  virtual void OnTaskFinished(TaskId task) = 0;
};

// TestScheduler
//
// See the file comment. Confined to the thread that made it.
class TestScheduler final : public Scheduler {
 public:
  explicit TestScheduler(TestSchedulerOptions options = {});
  // Cancels every task still queued or suspended, in task id order, and frees
  // every frame. Destructors running in those frames may use the scheduler
  // (spawn, wake, log); whatever they start is cancelled too.
  ~TestScheduler() override;

  TestScheduler(const TestScheduler&) = delete;
  TestScheduler& operator=(const TestScheduler&) = delete;

  // Create()
  //
  // The usual way to make one: `std::shared_ptr` is the currency of
  // executors and the session layer.
  static std::shared_ptr<TestScheduler> Create(TestSchedulerOptions options = {});

  // -- Scheduler --
  void Schedule(Runnable runnable) override;
  void ScheduleLabeled(Runnable runnable, TaskLabel label) override;
  void ScheduleForeground(Runnable runnable) override;
  bool IsMainThread() const override { return current_lane_ != kNoLane; }
  Instant Now() const override { return now_; }
  bool Park(std::optional<Duration> timeout) override;
  Unparker GetUnparker() override;
  TimerId StartTimer(Instant deadline, Waker waker) override;
  void CancelTimer(TimerId timer) override;
  bool IsTaskRunning(TaskId id) const override { return live_.Contains(id); }
  absl::Status BlockOnTask(internal::TaskHeader& task) override;
  // Thread-confined unless `allow_parking` admits wakes from real threads:
  // then task state changes must be atomic read-modify-writes.
  bool IsThreadConfined() const override { return !options_.allow_parking; }
  uint32_t RandomDelayYields(uint32_t max_yields) override;

  // -- Driving the simulation --

  // Step()
  //
  // Fires due timers, then polls one runnable task. Returns false (and does
  // nothing) if no task is runnable. Never advances time. Called from a
  // thread other than the one that made the scheduler, it does nothing and
  // returns false, and the next run fails with FailedPrecondition saying so.
  bool Step();

  // RunUntilIdle()
  //
  // Steps until no task is runnable. Time stands still (pending timers stay
  // pending; use `Run()` or `AdvanceClock()` to reach them). Returns the run's
  // failure, if any (see `status()`), or a step-budget report.
  absl::Status RunUntilIdle();
  // Deprecated: use RunUntilIdle().
  absl::Status RunUntilParked() { return RunUntilIdle(); }

  // Run()
  //
  // Steps, advancing virtual time to the next timer whenever nothing is
  // runnable, until no work and no timers remain. If live tasks are left
  // then (suspended, and nothing can ever wake them), that is a deadlock:
  // returns FailedPrecondition with `IsDeadlock()` and a wait-for report,
  // unless every one of them is allowed to idle (`allow_idle_tasks`,
  // `AllowIdle`).
  absl::Status Run();

  // AllowIdle()
  //
  // Marks a task that may stay suspended when `Run()` ends (a server loop
  // parked on its queue, say). Reports still list it, as idle by design.
  void AllowIdle(TaskId task);

  // CheckNoStuckTasks()
  //
  // The check `Run()` ends with: OK unless nothing is runnable, no timer is
  // pending and live tasks not allowed to idle remain (then the deadlock
  // report). The SIM_TEST harness uses it after bodies that drive the
  // scheduler themselves.
  absl::Status CheckNoStuckTasks() const;

  // MarkInternal()
  //
  // Marks a framework task (the session layer's grace-period timers): its
  // trace entries say so and failure reports hide them by default.
  void MarkInternal(TaskId task);
  bool IsInternal(TaskId task) const {
    return !internal_ids_.empty() && internal_ids_.contains(task.value);
  }

  // Fail()
  //
  // Fails the run with `message`, from anywhere (a task, a callback, the test
  // body): `Run()`/`BlockOn()` stop and return Aborted with
  // `IsTestFailure()`, naming the task that called it. No exception needed.
  void Fail(std::string_view message, SourceLocation location = SourceLocation::current());
  // Fails the run with `status` as given (the harness does this when a
  // SIMSCHED_ALWAYS property is violated); Run/BlockOn return it, with the
  // run summary added, at their next step.
  void Fail(absl::Status status) { RecordFailure(std::move(status)); }

  // AdvanceClock()
  //
  // Moves virtual time forward by `duration` and fires the timers that came
  // due (their tasks run on later steps). A negative duration fails the run
  // with InvalidArgument and leaves time unchanged.
  void AdvanceClock(Duration duration);

  // BlockOn()
  //
  // Steps (advancing time through timers) until `task` finishes; returns its
  // value, or rethrows its exception. See `simsched::BlockOn` for errors.
  //
  // From plain code it drives the whole simulation. From a task running on a
  // lane it blocks that lane, as a real main thread blocked on a future
  // would: the lane's other queued work waits until the task finishes, while
  // other lanes and background tasks run. Calling it from a background task
  // is an error (co_await instead).
  //
  // With a `budget`, it returns DeadlineExceeded once the budget is used up,
  // leaving the task running; BlockOn it again to continue.
  template <typename T>
  BlockOnResult<T> BlockOn(Task<T>& task) {
    return simsched::BlockOn(*this, task);
  }
  template <typename T>
  BlockOnResult<T> BlockOn(Task<T>&& task) {
    return simsched::BlockOn(*this, task);
  }
  template <typename T>
  BlockOnResult<T> BlockOn(Co<T> co, SourceLocation location = SourceLocation::current()) {
    return simsched::BlockOn(*this, std::move(co), location);
  }
  template <typename T>
  BlockOnResult<T> BlockOn(Task<T>& task, BlockOnBudget budget) {
    if (!task) return simsched::BlockOn(*this, task);  // the empty-task error
    if (absl::Status status = BlockOnTaskWithBudget(*task.state(), budget); !status.ok()) {
      return status;
    }
    return simsched::BlockOn(*this, task);  // finished: takes the result
  }

  // BlockOnTaskWithBudget()
  //
  // The untyped form of the budgeted BlockOn: OK once `task` has finished.
  absl::Status BlockOnTaskWithBudget(internal::TaskHeader& task, BlockOnBudget budget);

  // Deprioritize()
  //
  // Tasks with `label` queued from now on run only when nothing else can.
  void Deprioritize(TaskLabel label) override;

  // AddLane()
  //
  // Adds a simulated main thread (one per simulated client, say) and returns
  // its id. Foreground tasks spawned onto it (see
  // `ForegroundExecutor::ForNewLane`) run FIFO within it, interleaved with
  // other lanes and background work by the seed.
  LaneId AddLane(std::string_view name);
  std::optional<uint32_t> AddSimulatedLane(std::string_view name) override {
    return AddLane(name);
  }

  // CurrentLane()
  //
  // The lane of the task running now, or empty outside foreground work.
  std::optional<LaneId> CurrentLane() const {
    return current_lane_ == kNoLane ? std::nullopt : std::optional<LaneId>(current_lane_);
  }

  // LaneName()
  //
  // The name given to `AddLane` ("main" for lane 0); empty for unknown ids.
  std::string_view LaneName(LaneId lane) const;
  size_t LaneCount() const { return lanes_.size(); }

  // SetPollCostModel()
  //
  // Installs `model` (not owned; null removes it). With none installed (the
  // default) polls take no virtual time and cost nothing extra.
  void SetPollCostModel(PollCostModel* model) {
    poll_cost_model_ = model;
    UpdateFastPick();
  }
  PollCostModel* poll_cost_model() const { return poll_cost_model_; }

  // SetTaskObserver()
  //
  // Installs `observer` (not owned; null removes it). See `TaskObserver`.
  void SetTaskObserver(TaskObserver* observer) { task_observer_ = observer; }
  TaskObserver* task_observer() const { return task_observer_; }

  // CancelTask()
  //
  // Cancels the live task `id` as dropping its handle would: its frame and
  // the RAII in it are destroyed now, or when its current poll ends if it is
  // the task being polled. A `Task` handle someone still holds stays valid
  // (awaiting it throws TaskCancelledError). False if no such task is live.
  bool CancelTask(TaskId id);

  // -- Inspection --

  // rng()
  //
  // A generator for the test's own randomness (data, fault choices), derived
  // from the seed but separate from the scheduling stream, so drawing from it
  // changes no scheduling decision by itself.
  Rng& rng() { return user_rng_; }

  const TestSchedulerOptions& options() const { return options_; }
  uint64_t seed() const { return options_.seed; }
  // The strategy this run uses, resolved ("mix" becomes what the seed chose).
  const StrategySpec& strategy() const { return strategy_.spec(); }
  // Steps taken so far.
  uint64_t step_count() const { return steps_; }
  // Virtual time since the epoch.
  Duration Elapsed() const { return now_ - Instant{}; }

  // TraceHash()
  //
  // A 64-bit digest of every decision so far (each step's task and lane, and
  // every advance of virtual time). Same seed and build: same hash.
  uint64_t TraceHash() const;

  // trace()
  //
  // The full trace; empty unless `record_trace` was set.
  const std::vector<TraceEntry>& trace() const { return trace_; }

  // task_events() / trace_notes() / AddTraceNote()
  //
  // With `record_trace` only: every spawn and end of a task, and the notes
  // the simulated world adds (faults, crashes, buggify firings). Without it
  // AddTraceNote does nothing.
  const std::vector<TaskEvent>& task_events() const { return task_events_; }
  const std::vector<TraceNote>& trace_notes() const { return trace_notes_; }
  void AddTraceNote(std::string_view kind, std::string_view text);

  // status()
  //
  // OK, or the first failure of this run (a detached task's exception, a
  // refused park, a wake from another thread, a bad argument). Later
  // failures are counted in its message.
  absl::Status status() const;


  // LiveTaskCount() / LiveTasks()
  //
  // The tasks spawned and not yet finished, in id order.
  size_t LiveTaskCount() const { return live_.size(); }
  std::vector<TaskId> LiveTasks() const;

  // DescribeTask() / DescribeLiveTasks()
  //
  // One line per task: id, label, session, spawn site and what it is doing
  // ("queued to run", "waiting on Sleep at foo.cc:12", "waiting for task 4",
  // "waiting on Mutex 'a'::Lock at foo.cc:9; it is held by task 2").
  std::string DescribeTask(TaskId id) const;
  std::string DescribeLiveTasks() const;

  // DescribeWaitFor()
  //
  // The wait-for report of a deadlock: the stuck tasks (those not allowed to
  // idle), each with what it waits on and who holds it; any cycle among them
  // ("task 1 -> Mutex 'a' held by task 2 -> Mutex 'b' held by task 1"); then
  // the tasks idle by design.
  std::string DescribeWaitFor() const;

  // RunSummary()
  //
  // "seed 42, step 120, virtual time +1.5s, trace hash 0x..." for reports.
  std::string RunSummary() const;

 private:
  // Reuse between the seeds of a sweep (scheduler/internal/test_scheduler_pool.h).
  friend class internal::TestSchedulerPool;
  // Sets every field to what `TestScheduler(options)` makes, keeping
  // containers' storage; on a scheduler that is new or was Shutdown().
  void Reinit(TestSchedulerOptions options);
  // The destructor's work: cancels every task (frame destructors run) and
  // drops the timers. Then only Reinit() or destruction may follow.
  void Shutdown();

  // The task core's hooks, reached through internal::TaskCoreAccess.
  void OnTaskSpawned(internal::TaskHeader& task) override;
  void StartSpawnedTask(internal::TaskHeader& task) override;
  void OnTaskFinished(internal::TaskHeader& task) override;
  TimerId StartTaskTimer(Instant deadline, internal::TaskHeader& task) override;
  // StartTimer's and StartTaskTimer's body, inlined into both.
  TimerId AddTimer(Instant deadline, Waker waker);
  // task_observer_->OnTaskSpawned for `task`, with its parent if ours.
  void TellObserverSpawned(const internal::TaskHeader& task);
  // OnTaskFinished's rare part: the task event (record_trace) and the
  // observer. Out of line, so that the common case has a short frame.
  [[gnu::noinline]] void NoteTaskFinished(const internal::TaskHeader& task);
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override;

  static constexpr LaneId kNoLane = ~LaneId{0};
  using Queue = internal::RingQueue<internal::TaskHeader*>;

  struct Lane {
    std::string name;
    Queue queue;
    // > 0 while a task of this lane is blocked in BlockOn.
    int blocked = 0;
  };
  inline bool OnOwnerThread() const;  // (internal/test_scheduler_parts.h)
  // What the run loops install while they drive this scheduler (see
  // internal::DirectEnqueueTarget): this scheduler's background queue when a
  // wake's Schedule() would only push onto it, else nothing.
  internal::DirectEnqueueTarget DirectEnqueueTarget();
  void Enqueue(Queue& queue, Runnable runnable) { EnqueueHeader(queue, runnable.ReleaseHeader()); }
  [[gnu::always_inline]] void EnqueueHeader(Queue& queue, internal::TaskHeader* task) {
    // Only FIFO and the priority strategies track enqueues (inline: a switch
    // and, for PCT and POS, a draw from the Rng).
    if (!uniform_pick_) [[unlikely]] strategy_.OnEnqueue(*task, rng_);
    queue.push_back(task);
  }
  // internal::DirectEnqueueTarget's hook under FIFO, PCT and POS:
  // strategy_.OnEnqueue, then the push onto background_.
  static void TrackDirectEnqueue(void* scheduler, internal::TaskHeader& task);
  void EnqueueLabeled(internal::TaskHeader* task, const TaskLabel& label);
  void EnqueueOnLane(internal::TaskHeader* task);
  // How the step's fast path picks (see StepInline): uniformly, by PCT or
  // POS priority, or not at all (FIFO, trace recording, a poll cost model:
  // every step takes the general path).
  enum class FastPick : uint8_t { kUniform, kPct, kPos, kNone };
  template <bool kPlain, FastPick kPick = FastPick::kUniform>
  void Requeue(internal::TaskHeader* task);
  // Requeue() of a background task in a fast step (`kPick` is fast_pick_).
  template <FastPick kPick>
  void RequeueBackground(internal::TaskHeader* task);
  void RecordTraceEntry(const internal::TaskHeader& task, LaneId lane);
  // With record_trace: notes why `task` is being queued (first note wins
  // until the task runs).
  void NoteWake(const internal::TaskHeader& task);
  bool FailurePending() const {
    return failed_ || inbox_pending_.load(std::memory_order_relaxed);
  }
  void ScheduleFromForeignThread(Runnable runnable);
  // Step() from a thread other than the owner: records the misuse for the
  // owner's next step or run to report, and returns false.
  bool StepFromForeignThread();
  void DrainInbox();
  bool StepInline();
  // The step when the fast path does not apply: fires due timers, picks
  // with every rule (lanes, deprioritized work, FIFO, change points), runs
  // with every check. False if nothing is runnable.
  bool StepGeneral();
  // Nothing queued anywhere and no timer due: StepGeneral() would return
  // false without doing anything (the run loops' idle check, before the call).
  bool NothingToStep() const {
    return background_.empty() && lane_queued_ == 0 && deprioritized_.empty() &&
           next_timer_deadline_ > now_;
  }
  // `kTopLevel`: called from a run loop outside any task (no task is
  // current, no lane is), so neither is saved and restored around the poll.
  // `kPrefetch` (uniform picks only): prefetches the likely next task
  // (internal/pick_lookahead.h).
  template <FastPick kPick, bool kTopLevel, bool kPrefetch = false>
  void FastStep();
  // Fast steps while they apply (see fast_step_limit_), then returns.
  template <FastPick kPick>
  void FastSteps();
  template <FastPick kPick, bool kPrefetch>
  void FastStepLoop();
  // FastStepLoop for uniform picks: the background queue is never rotated
  // under them (see PickNextGeneral), so it is indexed as a plain array.
  template <bool kPrefetch>
  void UniformFastStepLoop();
  // UniformFastStepLoop's poll of the task it took (`trampoline_next` is
  // internal::resume_next).
  internal::TaskHeader::PollResult UniformFastPoll(internal::TaskHeader* task,
                                                   std::coroutine_handle<>& trampoline_next);
  // The rest of a top-level fast step whose task PollOnceFast() left alone
  // (kNotFast): the general poll and re-queue.
  [[gnu::noinline]] void PollNotFast(internal::TaskHeader* task);
  void RunFastSteps();
  // Recomputes fast_step_limit_ from the state it stands for.
  void UpdateFastStepLimit();
  // Something the fast path does not handle may have happened: the next
  // step takes the general path, which recomputes the limit.
  void InvalidateFastSteps() { fast_step_limit_.store(0, std::memory_order_relaxed); }
  void UpdateFastPick();
  bool PickNextSlow(internal::TaskHeader*& next, LaneId& lane);
  // PickNextSlow's other cases: lanes, deprioritized work, FIFO, uniform.
  [[gnu::noinline]] bool PickNextGeneral(internal::TaskHeader*& next, LaneId& lane);
  void PickByPriority(internal::TaskHeader*& next, LaneId& lane, bool main_work);
  template <bool kPlain, FastPick kPick = FastPick::kUniform, bool kTopLevel = false>
  void RunPicked(internal::TaskHeader* task, LaneId lane);
  void ChargePollCost(TaskId task);
  bool TakeQueued(internal::TaskHeader& task, LaneId& lane);
  void FireDueTimers();
  inline void AdvanceTimeTo(Instant when);  // (internal/test_scheduler_parts.h)
  void AdvanceToNextTimer();
  // At the run loops' idle points (nothing runnable): an empty background
  // queue past kKeptQueueCapacity gives its storage back, so that tasks
  // queued all at once and then asleep (W2, the memory benchmark) do not
  // keep their high-water mark, 8 bytes a task, while they sleep.
  static constexpr size_t kKeptQueueCapacity = 1024;
  void ReleaseIdleQueueStorage() { background_.ReleaseStorageIfEmpty(kKeptQueueCapacity); }
  bool BudgetExhausted() const { return steps_ >= step_limit_; }
  absl::Status BudgetFailure(std::string_view operation) const;
  absl::Status CheckCanRun(std::string_view operation) const;
  absl::Status CheckCanBlock(LaneId& blocked_lane) const;
  absl::Status PendingFailure();
  void RecordFailure(absl::Status status);
  std::string DescribeHeader(const internal::TaskHeader& task) const;
  void TakeQueuedForShutdown(std::vector<internal::TaskHeader*>& queued);
  bool IdleAllowed(const internal::TaskHeader& task) const;
  // Live tasks not allowed to idle; zero when the run may end.
  size_t StuckTaskCount() const;
  absl::Status DeadlockFailure(std::string_view operation) const;

  TestSchedulerOptions options_;
  // The last strategy text that parsed, and its parse (a cache for Reinit:
  // a function of the text alone, so it may outlive a run).
  std::string parsed_strategy_text_;
  std::optional<StrategySpec> parsed_strategy_;
  Rng rng_;
  Rng user_rng_;
  Instant now_{};
  uint64_t steps_ = 0;
  uint64_t step_limit_;  // options_.max_steps, or "none" as UINT64_MAX
  uint64_t next_task_id_ = 1;
  internal::ScheduleStrategy strategy_;
  bool uniform_pick_ = true;  // strategy_.uniform(), on the hot path
  // The strategy's fast pick, or kNone with trace recording or a poll cost
  // model (UpdateFastPick).
  FastPick fast_pick_ = FastPick::kUniform;
  // One compare per step instead of six checks: the next step may take the
  // fast path while steps_ is below this. Zero while anything rules the fast
  // path out (a recorded failure, queued lane work, a due timer, work or a
  // failure in the inbox, FIFO, trace recording, a poll cost model); else
  // the step budget, and under PCT also the step before the next change
  // point and the last priority step. Whatever may rule the fast path out
  // calls InvalidateFastSteps(); the run loops recompute it
  // (UpdateFastStepLimit) before they take fast steps again. Atomic only
  // because another thread's ScheduleFromForeignThread zeroes it (relaxed
  // loads and stores are plain moves).
  std::atomic<uint64_t> fast_step_limit_{0};
  uint64_t trace_state_ = 0;
  LaneId current_lane_ = kNoLane;
  bool shutting_down_ = false;
  bool failed_ = false;
  const void* owner_thread_marker_;

  Queue background_;
  Queue deprioritized_;
  std::vector<Lane> lanes_;
  size_t lane_queued_ = 0;  // entries across all lanes' queues
  absl::flat_hash_set<TaskLabel> deprioritized_labels_;

  // Live tasks in spawn (= id) order, for reports, shutdown and lookups by id.
  internal::LiveTaskIndex live_;
  // Ids given to AllowIdle and MarkInternal (looked up, never iterated).
  absl::flat_hash_set<uint64_t> idle_allowed_;
  absl::flat_hash_set<uint64_t> internal_ids_;
  // With record_trace only: why each queued task was queued, by id (looked
  // up, never iterated), and what is waking tasks right now.
  struct WakeNote {
    WakeCause cause;
    TaskId by;
    const char* reason = nullptr;  // Waker::Wake(reason)
  };
  absl::flat_hash_map<uint64_t, WakeNote> wake_notes_;
  WakeCause waking_from_ = WakeCause::kUnknown;

  internal::TimerQueue timers_;
  PollCostModel* poll_cost_model_ = nullptr;
  TaskObserver* task_observer_ = nullptr;
  // timers_.NextDeadline() cached for the per-step check; refreshed whenever
  // timers are started or fire (a cancelled one may linger here harmlessly).
  Instant next_timer_deadline_ = Instant::max();
  // No timer was cancelled since next_timer_deadline_ was last refreshed
  // from the queue: it is the earliest live deadline, not just a bound, and
  // AdvanceToNextTimer() need not ask the queue again.
  bool next_timer_deadline_exact_ = true;

  std::vector<TraceEntry> trace_;
  std::vector<TaskEvent> task_events_;
  std::vector<TraceNote> trace_notes_;
  absl::Status failure_;
  uint64_t failure_count_ = 0;
  std::shared_ptr<internal::Parker> parker_;

  // Work and failures arriving from other threads (see allow_parking).
  std::mutex inbox_mu_;
  std::vector<internal::TaskHeader*> inbox_;
  absl::Status foreign_failure_;
  std::atomic<bool> inbox_pending_{false};
};

}  // namespace simsched

#endif  // SIMSCHED_SCHEDULER_TEST_SCHEDULER_H_
