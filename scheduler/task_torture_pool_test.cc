// The task-core torture test on the ThreadPoolScheduler: the random programs
// of task_torture_test.cc on two worker threads, with real timers, the
// driver script (cancelling, dropping and detaching root tasks) on a thread
// of its own, cancellations from inside the tree landing on tasks that run
// on the other worker, and the pool destroyed mid-run. Meant for
// --config=tsan (data races between cancellation and wakes) and
// --config=asan; it checks the same lifecycle rules as the TestScheduler
// variant, minus what only a deterministic scheduler can promise (the same
// run twice, IsTaskRunning at the instant Cancel returns).
//
// Replay one seed (the program, not the thread timing):
//   bazel test //scheduler:task_torture_pool_test --config=tsan
//       --test_env=SIMSCHED_TORTURE_SEED=17 --test_output=all

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "scheduler/internal/testing/torture_ledger.h"
#include "scheduler/internal/testing/torture_plan.h"
#include "scheduler/internal/testing/torture_program.h"
#include "scheduler/internal/testing/torture_sweep.h"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"

#ifndef SIMSCHED_TORTURE_POOL_DEFAULT_SEEDS
#define SIMSCHED_TORTURE_POOL_DEFAULT_SEEDS 150
#endif

namespace simsched::internal {
namespace {

constexpr char kTarget[] = "//scheduler:task_torture_pool_test";

// Real time per plan tick: short, so a sweep takes seconds, yet long enough
// for timers to race with cancellations.
constexpr Duration kTick = std::chrono::microseconds(20);
// How long a run that did not destroy the pool mid-run waits for its roots
// before shutting the pool down anyway (a root may wait on a channel forever).
// Not an assertion: shutdown must be clean whenever it comes.
constexpr Duration kPatience = std::chrono::milliseconds(30);

std::vector<std::string> RunPlanOnPool(const TorturePlan& plan, bool borrow_across_tasks) {
  TortureLedger ledger(plan.id_count);
  TortureWorld world;
  std::vector<Task<void>> roots;
  {
    auto pool = std::make_unique<ThreadPoolScheduler>(
        ThreadPoolSchedulerOptions{.worker_threads = 2, .thread_name_prefix = "torture"});
    TortureContext ctx{*pool, world, ledger, kTick, /*confined=*/false, borrow_across_tasks};
    for (const TortureFrame& root : plan.roots) {
      roots.push_back(Spawn(*pool, RunTortureFrame(ctx, root, nullptr, root.id)));
    }
    // A wake from a thread of no task races each cancellation the driver
    // makes: the driver raises `wake_requests` and cancels at once, while
    // this thread notifies the Event's oldest waiter.
    std::atomic<int> wake_requests{0};
    std::atomic<bool> stop_waking{false};
    std::thread waker([&] {
      int served = 0;
      while (!stop_waking.load(std::memory_order_acquire)) {
        if (wake_requests.load(std::memory_order_acquire) == served) {
          std::this_thread::yield();
          continue;
        }
        ++served;
        world.event.NotifyOne();
      }
    });
    // Cancellations from a thread that is neither a worker nor the main
    // thread, while the workers run the tree.
    std::thread driver([&] {
      for (const TortureDriverAction& action : plan.driver) {
        Task<void>* root = IsRootAction(action.kind) ? &roots[action.amount]
                               : nullptr;
        const uint32_t key = root != nullptr ? plan.roots[action.amount].id : 0;
        switch (action.kind) {
          case TortureDriverKind::kSteps:
            std::this_thread::sleep_for(std::chrono::microseconds(5) * action.amount);
            break;
          case TortureDriverKind::kAdvanceClock:
            std::this_thread::sleep_for(kTick * action.amount);
            break;
          case TortureDriverKind::kCancelRoot:
            if (!*root) break;
            wake_requests.fetch_add(1, std::memory_order_release);
            root->Cancel();
            NoteCancelled(ctx, root->id(), root->IsFinished(), key);
            break;
          case TortureDriverKind::kDropRoot:
            wake_requests.fetch_add(1, std::memory_order_release);
            *root = Task<void>();
            break;
          case TortureDriverKind::kDetachRoot:
            root->Detach();
            break;
          case TortureDriverKind::kSetEvent:
            world.event.Set();
            break;
          case TortureDriverKind::kNotifyOne:
            world.event.NotifyOne();
            break;
        }
      }
    });
    driver.join();
    if (!plan.destroy_mid_run) {
      const Instant give_up = Clock::now() + kPatience;
      absl::Status status = pool->RunUntil([&] {
        if (Clock::now() >= give_up) return true;
        for (const Task<void>& root : roots) {
          if (root && !root.IsFinished()) return false;
        }
        return true;
      });
      if (!status.ok()) ledger.AddViolation(absl::StrCat("RunUntil failed: ", status.message()));
      for (const Task<void>& root : roots) {
        if (!root || !root.IsFinished()) continue;
        // BlockOn returns once the pool has stopped tracking the task.
        if (absl::Status blocked = pool->BlockOnTask(*root.state()); !blocked.ok()) {
          ledger.AddViolation(absl::StrCat("BlockOn(finished root) failed: ", blocked.message()));
        } else if (pool->IsTaskRunning(root.id())) {
          ledger.AddViolation(absl::StrCat("IsTaskRunning(", root.metadata().DebugString(),
                                           ") is true after BlockOn saw it finish"));
        }
      }
    }
    stop_waking.store(true, std::memory_order_release);
    waker.join();
  }  // shutdown: joins the threads, cancels and frees everything left
  for (const Task<void>& root : roots) {
    if (root && !root.IsFinished()) {
      ledger.AddViolation(absl::StrCat(root.metadata().DebugString(),
                                       " is not finished after its scheduler was destroyed"));
    }
  }
  ledger.CheckAllDestroyed();
  return ledger.violations();
}

void Sweep(bool borrow_across_tasks) {
  // A smaller tree than on the TestScheduler: real threads, real timers.
  RunTortureSweep(kTarget, SIMSCHED_TORTURE_POOL_DEFAULT_SEEDS, {.max_frames = 25},
                  [&](const TorturePlan& plan) { return RunPlanOnPool(plan, borrow_across_tasks); });
}

// Children borrow from their parent only within a task (inline co_await), where
// the order is the task's own business.
TEST(TaskTorturePoolTest, RandomTaskTreesKeepTheLifecycleRules) { Sweep(false); }

// Tasks spawned by a frame (owned, lambda, combinator inputs) also borrow the
// frame's state, as docs/cancellation.md says they may ("Task<void> t =
// Spawn(s, Child(local)); co_await t;", combinator inputs). On the pool such a
// child may be running on the other worker, or being destroyed by another
// canceller, when its owner cancels it: the cancellation waits for that
// (joining cancellation). This variant found the last three pool defects:
// a second canceller not waiting for a destruction under way (seed 2652), and
// shutdown cancelling a woken owner inside its owned task's poll (seeds 1033
// and 1178 on a loaded machine); see scheduler/cancel_join_test.cc.
TEST(TaskTorturePoolTest, SpawnedChildrenMayBorrowFromTheirParent) { Sweep(true); }

}  // namespace
}  // namespace simsched::internal
