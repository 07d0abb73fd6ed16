// Internal (tests only): runs a torture plan (torture_plan.h) on any
// Scheduler.
//
// `RunTortureFrame` is the one coroutine every frame of a plan runs: it
// holds a `TortureProbe` (torture_ledger.h) lent by its parent, performs its
// ops against a shared `TortureWorld` (a Channel, Mutex, Semaphore and
// Event), spawns or awaits its child frames as the plan says, and reports
// every resumption to the ledger. Only the driver differs between the
// TestScheduler and the thread pool (scheduler/task_torture_test.cc,
// scheduler/task_torture_pool_test.cc).
//
// Example:
//
//   TortureLedger ledger(plan.id_count);
//   TortureWorld world;                         // outlives the scheduler
//   TestScheduler scheduler({.seed = plan.seed});
//   TortureContext ctx{scheduler, world, ledger, std::chrono::milliseconds(1),
//                      /*confined=*/true, /*borrow_across_tasks=*/true};
//   Task<void> root = Spawn(scheduler, RunTortureFrame(ctx, plan.roots[0], nullptr,
//                                                      plan.roots[0].id));

#ifndef SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PROGRAM_H_
#define SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PROGRAM_H_

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "scheduler/event.h"
#include "scheduler/internal/testing/torture_ledger.h"
#include "scheduler/internal/testing/torture_plan.h"
#include "scheduler/scheduler.h"
#include "sim/channel.h"
#include "sim/mutex.h"
#include "sim/semaphore.h"

namespace simsched::internal {

// The primitives every frame of a run shares. Declare it before the
// scheduler: frames destroyed by the scheduler's destructor unlink from them.
struct TortureWorld {
  Channel<int> channel{1, "torture"};
  Mutex mutex{"torture"};
  Semaphore semaphore{2, "torture"};
  Event event{"torture"};
};

struct TortureContext {
  Scheduler& scheduler;
  TortureWorld& world;
  TortureLedger& ledger;
  // What one tick of the plan (sleeps, timeouts) lasts on this scheduler.
  Duration tick;
  // A thread-confined scheduler finishes a Cancel() of a task that is not
  // being polled before Cancel() returns, so the checks run on the spot.
  bool confined;
  // Whether a frame lends its probe to the tasks it spawns (owned tasks,
  // lambda captures, combinator inputs) and not only to inline children.
  bool borrow_across_tasks;
  // The lanes foreground spawns pick from (by `TortureOp::lane` modulo the
  // count); lane 0 when empty.
  std::vector<uint32_t> lanes = {};
};

// TortureForeignWaker
//
// A thread of no task that calls `event.NotifyOne()` once for each
// `Request()`, so that a wake from another thread races whatever the caller
// does right after (a cancellation). `Stop()` (or the destructor) joins it.
class TortureForeignWaker {
 public:
  explicit TortureForeignWaker(Event& event);
  TortureForeignWaker(const TortureForeignWaker&) = delete;
  TortureForeignWaker& operator=(const TortureForeignWaker&) = delete;
  ~TortureForeignWaker() { Stop(); }

  void Request() { requests_.fetch_add(1, std::memory_order_release); }
  void Stop();

 private:
  Event& event_;
  std::atomic<int> requests_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The label a plan may deprioritize (`TorturePlan::deprioritize_low`).
inline constexpr char kTortureLowPriorityLabel[] = "torture-low";

// PrepareTortureScheduler()
//
// Adds the plan's extra lanes to `ctx.scheduler` (where it has lanes) and
// records them in `ctx.lanes`, and deprioritizes the low-priority label if
// the plan says so.
void PrepareTortureScheduler(TortureContext& ctx, const TorturePlan& plan);

// What a frame with `throws` ends with; its parent catches it.
class TortureError : public std::runtime_error {
 public:
  explicit TortureError(uint32_t frame);
};

// RunTortureFrame()
//
// Runs `frame` of the plan. `parent` is the probe the frame borrows (null if
// none); `task_key` is the id of the root frame of the task it runs in.
Co<void> RunTortureFrame(TortureContext& ctx, const TortureFrame& frame, TortureProbe* parent,
                         uint32_t task_key);

// NoteCancelled()
//
// After `task.Cancel()` (or dropping its handle) by the caller: marks the
// task cancelled in the ledger once its frames are certainly gone, and on a
// confined scheduler checks that `IsTaskRunning` already says false.
void NoteCancelled(TortureContext& ctx, TaskId id, bool finished, uint32_t task_key);

}  // namespace simsched::internal

#endif  // SIMSCHED_SCHEDULER_INTERNAL_TESTING_TORTURE_PROGRAM_H_
