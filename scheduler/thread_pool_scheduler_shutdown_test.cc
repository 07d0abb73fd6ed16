// ThreadPoolScheduler shutdown: suspended, sleeping, waiting and yielding
// tasks cancelled and freed; the last reference held by a task; work
// scheduled during shutdown.

#include <atomic>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/testing/pool_test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/waker.h"

namespace simsched {
namespace {

using internal::FrameGuard;
using internal::MakePool;
using internal::WaitFor;
using std::chrono::milliseconds;

// -----------------------------------------------------------------------------
// Shutdown
// -----------------------------------------------------------------------------

struct ShutdownCounters {
  std::atomic<int> frames{0};      // frames created
  std::atomic<int> destroyed{0};   // frames destroyed
  std::atomic<int> suspended{0};   // tasks that reached their wait
  std::atomic<int> resurrected_ran{0};
};

// Counts a coroutine frame from its creation to its destruction, whether or
// not the body ever ran: pass it by value as a parameter (the frame keeps its
// own copy).
class FrameToken {
 public:
  explicit FrameToken(ShutdownCounters* counters) : counters_(counters) {
    counters_->frames.fetch_add(1);
  }
  FrameToken(FrameToken&& other) noexcept : counters_(std::exchange(other.counters_, nullptr)) {}
  FrameToken& operator=(FrameToken&&) = delete;
  ~FrameToken() {
    if (counters_ != nullptr) counters_->destroyed.fetch_add(1);
  }

 private:
  ShutdownCounters* counters_;
};

Co<void> CountsRun(FrameToken, ShutdownCounters* counters) {
  counters->resurrected_ran.fetch_add(1);
  co_return;
}

// On destruction (during shutdown) spawns a task and wakes waiters: neither
// may run.
class Resurrector {
 public:
  Resurrector(Scheduler* scheduler, Event* event, ShutdownCounters* counters)
      : scheduler_(scheduler), event_(event), counters_(counters) {}
  Resurrector(const Resurrector&) = delete;
  Resurrector& operator=(const Resurrector&) = delete;
  ~Resurrector() {
    Spawn(*scheduler_, CountsRun(FrameToken(counters_), counters_)).Detach();
    event_->Set();
  }

 private:
  Scheduler* scheduler_;
  Event* event_;
  ShutdownCounters* counters_;
};

Co<void> SleepsForever(FrameToken, ShutdownCounters* counters) {
  counters->suspended.fetch_add(1);
  co_await Sleep(std::chrono::hours(1));
  ADD_FAILURE() << "slept an hour";
}

Co<void> WaitsForever(FrameToken, Event* event, ShutdownCounters* counters, bool resurrect) {
  std::optional<Resurrector> resurrector;
  if (resurrect) resurrector.emplace(CurrentScheduler(), event, counters);
  counters->suspended.fetch_add(1);
  co_await event->Wait();
}

Co<void> AwaitsChild(FrameToken, Scheduler* scheduler, ShutdownCounters* counters) {
  Task<void> child = Spawn(*scheduler, SleepsForever(FrameToken(counters), counters));
  counters->suspended.fetch_add(1);
  co_await child;
}

Co<void> YieldsForever(FrameToken, ShutdownCounters* counters) {
  counters->suspended.fetch_add(1);
  for (;;) co_await Yield();
}

Co<void> NeverRuns(FrameToken) { co_return; }

TEST(ThreadPoolSchedulerShutdownTest, TenThousandSuspendedTasksAreCancelledAndFreed) {
  ShutdownCounters counters;
  Event never("never");
  Event resurrect_target("resurrect-target");
  std::vector<Task<void>> kept;  // some handles outlive the scheduler
  std::vector<Waker> kept_wakers;
  {
    auto scheduler = MakePool(4);
    int suspended_expected = 0;
    for (int i = 0; i < 10'000; ++i) {
      Task<void> task;
      switch (i % 4) {
        case 0:
          task = Spawn(*scheduler, SleepsForever(FrameToken(&counters), &counters));
          suspended_expected += 1;
          break;
        case 1:
          task = Spawn(*scheduler,
                       WaitsForever(FrameToken(&counters), &never, &counters, i % 8 == 1));
          suspended_expected += 1;
          break;
        case 2:
          task = Spawn(*scheduler, AwaitsChild(FrameToken(&counters), scheduler.get(), &counters));
          suspended_expected += 2;  // the task and its sleeping child
          break;
        case 3:
          task = Spawn(*scheduler, WaitsForever(FrameToken(&counters), &resurrect_target,
                                                &counters, false));
          suspended_expected += 1;
          break;
      }
      if (i % 100 == 0) {
        kept.push_back(std::move(task));
      } else {
        task.Detach();
      }
    }
    // Busy tasks, so some work is queued at shutdown.
    for (int i = 0; i < 64; ++i) {
      Spawn(*scheduler, YieldsForever(FrameToken(&counters), &counters)).Detach();
    }
    suspended_expected += 64;
    // Foreground tasks nobody ever drains.
    for (int i = 0; i < 100; ++i) {
      SpawnForeground(*scheduler, NeverRuns(FrameToken(&counters))).Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return counters.suspended.load() == suspended_expected; }))
        << counters.suspended.load() << " of " << suspended_expected;
    // Wakers held outside, for after the scheduler is gone.
    for (Task<void>& task : kept) kept_wakers.push_back(Waker::ForTask(task.state()));
    EXPECT_GE(scheduler->LiveTaskCount(), 10'000u);
  }  // the scheduler is destroyed here
  EXPECT_EQ(counters.resurrected_ran.load(), 0);
  EXPECT_EQ(counters.destroyed.load(), counters.frames.load());
  // 10,000 tasks, 2,500 children, 64 busy, 100 foreground, and one task
  // spawned by each of the 1,250 resurrectors.
  EXPECT_EQ(counters.frames.load(), 10'000 + 2'500 + 64 + 100 + 1'250);
  for (Task<void>& task : kept) {
    EXPECT_TRUE(task.IsFinished());
    EXPECT_TRUE(task.IsCancelled());
  }
  for (const Waker& waker : kept_wakers) waker.Wake();  // no-ops
  never.Set();
  kept.clear();
  kept_wakers.clear();
}

TEST(ThreadPoolSchedulerShutdownTest, PlainObjectOnTheStackShutsDownToo) {
  std::atomic<int> destroyed{0};
  std::atomic<int> asleep{0};
  {
    ThreadPoolScheduler scheduler({.worker_threads = 2});
    for (int i = 0; i < 100; ++i) {
      Spawn(scheduler, [&]() -> Co<void> {
        FrameGuard guard(&destroyed);
        ++asleep;
        co_await Sleep(std::chrono::hours(1));
      }).Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return asleep.load() == 100; }));
    EXPECT_EQ(scheduler.LiveTaskCount(), 100u);
  }
  EXPECT_EQ(destroyed.load(), 100);
}

// A task that holds the last reference to the scheduler (as executors do)
// completes on a worker: the scheduler is destroyed on a helper thread.
TEST(ThreadPoolSchedulerShutdownTest, TaskHoldingTheLastReferenceCompletesOnAWorker) {
  std::atomic<int> destroyed{0};
  std::weak_ptr<ThreadPoolScheduler> weak;
  {
    auto scheduler = MakePool();
    weak = scheduler;
    Spawn(*scheduler, [scheduler, &destroyed]() -> Co<void> {
      FrameGuard guard(&destroyed);
      co_await Sleep(milliseconds(5));
      co_await Yield();
    }).Detach();
  }
  ASSERT_TRUE(WaitFor([&] { return weak.expired(); }));
  ThreadPoolScheduler::JoinDeferredDestructions();
  EXPECT_EQ(destroyed.load(), 1);
}

// The handle of a suspended task holding the last reference is dropped on a
// thread outside the scheduler: the scheduler shuts down from inside that
// task's teardown and is freed when the teardown ends.
TEST(ThreadPoolSchedulerShutdownTest, DroppingTheHandleOfTheLastReferenceHolderIsSafe) {
  std::atomic<int> destroyed{0};
  std::atomic<int> others_destroyed{0};
  std::atomic<bool> asleep{false};
  std::weak_ptr<ThreadPoolScheduler> weak;
  Task<void> holder;
  {
    auto scheduler = MakePool();
    weak = scheduler;
    for (int i = 0; i < 10; ++i) {
      Spawn(*scheduler, [&others_destroyed]() -> Co<void> {
        FrameGuard guard(&others_destroyed);
        co_await Sleep(std::chrono::hours(1));
      }).Detach();
    }
    holder = Spawn(*scheduler, [scheduler, &destroyed, &asleep]() -> Co<void> {
      FrameGuard guard(&destroyed);
      asleep = true;
      co_await Sleep(std::chrono::hours(1));
    });
  }
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !holder.state()->running(); }));
  EXPECT_FALSE(weak.expired());
  holder = Task<void>();  // cancels: the frame drops the last reference
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(others_destroyed.load(), 10);
}

// A foreground task holding the last reference completes inside Run() on the
// main thread: Run returns Aborted and the scheduler is destroyed after it.
TEST(ThreadPoolSchedulerShutdownTest, ForegroundTaskHoldingTheLastReferenceEndsTheLoop) {
  std::atomic<int> destroyed{0};
  ThreadPoolScheduler* raw;
  {
    auto scheduler = MakePool();
    raw = scheduler.get();
    SpawnForeground(*scheduler, [scheduler, &destroyed]() -> Co<void> {
      FrameGuard guard(&destroyed);
      co_await Yield();
    }).Detach();
  }
  absl::Status status = raw->Run();  // `raw` must not be used after this
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  ThreadPoolScheduler::JoinDeferredDestructions();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(ThreadPoolSchedulerShutdownTest, SchedulingDuringShutdownDropsTheWork) {
  ShutdownCounters counters;
  Event event("wake-during-shutdown");
  {
    auto scheduler = MakePool();
    for (int i = 0; i < 100; ++i) {
      Spawn(*scheduler, WaitsForever(FrameToken(&counters), &event, &counters, /*resurrect=*/true))
          .Detach();
    }
    ASSERT_TRUE(WaitFor([&] { return counters.suspended.load() == 100; }));
  }
  EXPECT_EQ(counters.resurrected_ran.load(), 0);
  EXPECT_EQ(counters.destroyed.load(), counters.frames.load());
}

}  // namespace
}  // namespace simsched
