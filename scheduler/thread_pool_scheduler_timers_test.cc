// ThreadPoolScheduler: timers (Sleep, cancelled timers, compaction) and
// Park/Unparker, with real threads.

#include <atomic>
#include <chrono>
#include <coroutine>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
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
// Timers
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, SleepsWakeInDeadlineOrder) {
  auto scheduler = MakePool();
  std::mutex mu;
  std::vector<int> order;
  std::vector<Task<void>> tasks;
  for (int ms : {45, 5, 25}) {
    tasks.push_back(Spawn(*scheduler, [&, ms]() -> Co<void> {
      const Instant start = scheduler->Now();
      co_await Sleep(milliseconds(ms));
      EXPECT_GE(scheduler->Now() - start, milliseconds(ms));
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(ms);
    }));
  }
  for (Task<void>& task : tasks) ASSERT_TRUE(BlockOn(*scheduler, task).ok());
  EXPECT_EQ(order, (std::vector<int>{5, 25, 45}));
}

TEST(ThreadPoolSchedulerTest, SleepUntilAPastDeadlineDoesNotSuspend) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    co_await SleepUntil(scheduler->Now() - milliseconds(1));
    co_await Sleep(Duration::zero());
    co_return 1;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 1);
}

TEST(ThreadPoolSchedulerTest, TimerWithPassedDeadlineWakesAtOnce) {
  auto scheduler = MakePool();
  // A sleeper an hour away keeps the timer thread waiting for that deadline:
  // a past-deadline timer queued without waking the timer thread, or fired
  // only with the next deadline, would be an hour late.
  std::atomic<bool> asleep{false};
  Task<void> sleeper = Spawn(*scheduler, [&]() -> Co<void> {
    asleep = true;
    co_await Sleep(std::chrono::hours(1));
  });
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !sleeper.state()->running(); }));
  // Let the timer thread go back to waiting for the hour-away deadline. (A
  // shorter pause only makes the test less sensitive, never flaky.)
  std::this_thread::sleep_for(milliseconds(20));
  std::atomic<bool> resumed{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    // StartTimer directly, with a deadline already behind us.
    struct PastTimer {
      Scheduler* scheduler;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<>) {
        scheduler->StartTimer(scheduler->Now() - milliseconds(5), CurrentWaker());
      }
      void await_resume() const noexcept {}
    };
    co_await PastTimer{scheduler.get()};
    resumed = true;
  });
  // Bounded, so a late wake fails here (after a minute) instead of hanging.
  ASSERT_TRUE(WaitFor([&] { return resumed.load(); })) << "the past-deadline timer never fired";
  EXPECT_FALSE(sleeper.IsFinished()) << "woken no later than an hour-away timer";
  EXPECT_TRUE(BlockOn(*scheduler, task).ok());
}

TEST(ThreadPoolSchedulerTest, CancellingASleepingTaskCancelsItsTimer) {
  auto scheduler = MakePool();
  std::atomic<int> destroyed{0};
  std::atomic<bool> asleep{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    FrameGuard guard(&destroyed);
    asleep = true;
    co_await Sleep(std::chrono::hours(1));
    ADD_FAILURE() << "a cancelled sleep resumed";
  });
  ASSERT_TRUE(WaitFor([&] { return asleep.load() && !task.state()->running(); }));
  task.Cancel();
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_TRUE(task.IsCancelled());
  EXPECT_FALSE(scheduler->IsTaskRunning(task.id()));
  // Cancelling an unknown or fired timer is a no-op.
  scheduler->CancelTimer(TimerId{});
  scheduler->CancelTimer(TimerId{0xdeadbeef});
}

TEST(ThreadPoolSchedulerTest, ManyCancelledTimersAreCompactedAndSleepStillWorks) {
  auto scheduler = MakePool();
  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    // Start and cancel far-future timers over and over (the heap is
    // compacted once cancelled entries dominate), then really sleep.
    std::vector<TimerId> ids;
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 1000; ++i) {
        ids.push_back(
            scheduler->StartTimer(scheduler->Now() + std::chrono::hours(1), CurrentWaker()));
      }
      for (TimerId id : ids) scheduler->CancelTimer(id);
      ids.clear();
    }
    co_await Sleep(milliseconds(1));
    co_return 3;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 3);
}

// -----------------------------------------------------------------------------
// Park / Unparker
// -----------------------------------------------------------------------------

TEST(ThreadPoolSchedulerTest, ParkReturnsWhenATaskUnparks) {
  auto scheduler = MakePool();
  Unparker unparker = scheduler->GetUnparker();
  std::atomic<bool> unparked{false};
  Spawn(*scheduler, [&unparked, unparker]() -> Co<void> {
    co_await Sleep(milliseconds(5));
    unparked = true;
    unparker.Unpark();
  }).Detach();
  EXPECT_TRUE(scheduler->Park(std::chrono::seconds(30)));
  EXPECT_TRUE(unparked.load());
}

TEST(ThreadPoolSchedulerTest, ParkTimesOutWithoutAnUnpark) {
  auto scheduler = MakePool();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(scheduler->Park(milliseconds(5)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(5));
}

TEST(ThreadPoolSchedulerTest, UnparkBeforeParkIsRemembered) {
  auto scheduler = MakePool();
  std::thread([unparker = scheduler->GetUnparker()] { unparker.Unpark(); }).join();
  EXPECT_TRUE(scheduler->Park(std::nullopt));
  EXPECT_FALSE(scheduler->Park(milliseconds(1)));  // consumed
}

}  // namespace
}  // namespace simsched
