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
// Failures come back as `absl::Status`, never as an abort or a hang:
//   * a deadlock (`BlockOn` on a task that can never finish) names every live
//     task with its spawn site and where it is suspended;
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
#include "scheduler/internal/ring_queue.h"
#include "scheduler/internal/timer_queue.h"
#include "scheduler/scheduler.h"
#include "sim/random.h"

namespace simsched {

// TestSchedulerOptions
struct TestSchedulerOptions {
  // Every scheduling decision derives from this.
  uint64_t seed = 0;
  // Pick uniformly among runnable tasks (true) or run them in queue order.
  bool randomize_order = true;
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

// TraceEntry
//
// One scheduling decision.
struct TraceEntry {
  uint64_t step = 0;
  Duration time{};  // virtual time since the epoch
  TaskId task;
  std::optional<TaskLabel> label;
  SourceLocation spawn_location;
  // The lane the step ran on; empty for background work.
  std::optional<LaneId> lane;

  // "step 12 t=+5ms task 3 "io" [lane 1] spawned at foo.cc:20 (Fn)"
  std::string DebugString() const;
  friend bool operator==(const TraceEntry& a, const TraceEntry& b);
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
  bool IsTaskRunning(TaskId id) const override { return live_by_id_.contains(id.value); }
  absl::Status BlockOnTask(internal::TaskHeader& task) override;
  void OnTaskSpawned(internal::TaskHeader& task) override;
  void OnTaskFinished(internal::TaskHeader& task) override;
  void OnUnhandledTaskException(const TaskMetadata& task,
                                const std::exception_ptr& exception) override;
  // Thread-confined unless `allow_parking` admits wakes from real threads:
  // then task state changes must be atomic read-modify-writes.
  bool IsThreadConfined() const override { return !options_.allow_parking; }
  uint32_t RandomDelayYields(uint32_t max_yields) override;

  // -- Driving the simulation --

  // Step()
  //
  // Fires due timers, then polls one runnable task. Returns false (and does
  // nothing) if no task is runnable. Never advances time.
  bool Step();

  // RunUntilParked()
  //
  // Steps until no task is runnable. Time stands still. Returns the run's
  // failure, if any (see `status()`), or a step-budget report.
  absl::Status RunUntilParked();

  // Run()
  //
  // Steps, advancing virtual time to the next timer whenever nothing is
  // runnable, until no work and no timers remain.
  absl::Status Run();

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

  // -- Inspection --

  // rng()
  //
  // A generator for the test's own randomness (data, fault choices), derived
  // from the seed but separate from the scheduling stream, so drawing from it
  // changes no scheduling decision by itself.
  Rng& rng() { return user_rng_; }

  const TestSchedulerOptions& options() const { return options_; }
  uint64_t seed() const { return options_.seed; }
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

  // status()
  //
  // OK, or the first failure of this run (a detached task's exception, a
  // refused park, a wake from another thread, a bad argument). Later
  // failures are counted in its message.
  absl::Status status() const;

  // LiveTaskCount() / LiveTasks()
  //
  // The tasks spawned and not yet finished, in id order.
  size_t LiveTaskCount() const { return live_by_id_.size(); }
  std::vector<TaskId> LiveTasks() const;

  // DescribeTask() / DescribeLiveTasks()
  //
  // One line per task: id, label, session, spawn site and what it is doing
  // ("queued to run", "waiting on Sleep at foo.cc:12", "waiting for task 4").
  std::string DescribeTask(TaskId id) const;
  std::string DescribeLiveTasks() const;

  // RunSummary()
  //
  // "seed 42, step 120, virtual time +1.5s, trace hash 0x..." for reports.
  std::string RunSummary() const;

 private:
  static constexpr LaneId kNoLane = ~LaneId{0};
  using Queue = internal::RingQueue<internal::TaskHeader*>;

  struct Lane {
    std::string name;
    Queue queue;
    // > 0 while a task of this lane is blocked in BlockOn.
    int blocked = 0;
  };
  bool OnOwnerThread() const;
  void Enqueue(Queue& queue, Runnable runnable) { EnqueueHeader(queue, runnable.ReleaseHeader()); }
  void EnqueueHeader(Queue& queue, internal::TaskHeader* task) {
    // The enqueue order matters only to FIFO mode's pick.
    if (!options_.randomize_order) task->enqueue_seq = enqueue_counter_++;
    queue.push_back(task);
  }
  void EnqueueLabeled(internal::TaskHeader* task, const TaskLabel& label);
  void EnqueueOnLane(internal::TaskHeader* task);
  void Requeue(internal::TaskHeader* task);
  void RecordTraceEntry(const internal::TaskHeader& task, LaneId lane);
  bool FailurePending() const {
    return failed_ || inbox_pending_.load(std::memory_order_relaxed);
  }
  void ScheduleFromForeignThread(Runnable runnable);
  void DrainInbox();
  bool StepInline();
  bool PickNextSlow(internal::TaskHeader*& next, LaneId& lane);
  void RunPicked(internal::TaskHeader* task, LaneId lane);
  bool TakeQueued(internal::TaskHeader& task, LaneId& lane);
  void FireDueTimers();
  void AdvanceTimeTo(Instant when);
  void AdvanceToNextTimer();
  bool BudgetExhausted() const { return steps_ >= step_limit_; }
  absl::Status BudgetFailure(std::string_view operation) const;
  absl::Status CheckCanRun(std::string_view operation) const;
  absl::Status CheckCanBlock(LaneId& blocked_lane) const;
  absl::Status PendingFailure();
  void RecordFailure(absl::Status status);
  std::string DescribeHeader(const internal::TaskHeader& task) const;
  void DrainQueuesForShutdown();

  TestSchedulerOptions options_;
  Rng rng_;
  Rng user_rng_;
  Instant now_{};
  uint64_t steps_ = 0;
  uint64_t step_limit_;  // options_.max_steps, or "none" as UINT64_MAX
  uint64_t next_task_id_ = 1;
  uint64_t enqueue_counter_ = 0;
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

  // Live tasks: a list in spawn (= id) order for reports and shutdown, and a
  // map for lookups only (never iterated, so its hash order cannot leak).
  internal::TaskHeader* live_head_ = nullptr;
  internal::TaskHeader* live_tail_ = nullptr;
  absl::flat_hash_map<uint64_t, internal::TaskHeader*> live_by_id_;

  internal::TimerQueue timers_;
  // timers_.NextDeadline() cached for the per-step check; refreshed whenever
  // timers are started or fire (a cancelled one may linger here harmlessly).
  Instant next_timer_deadline_ = Instant::max();

  std::vector<TraceEntry> trace_;
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
