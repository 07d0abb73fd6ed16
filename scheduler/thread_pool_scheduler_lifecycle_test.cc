// ThreadPoolScheduler: the task-lifecycle cases of
// shared/docs/task-lifecycle.md with real threads: wakes and cancels from
// another thread while the task is polled or suspended.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

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
using internal::ParkWaker;
using internal::SuspendOnce;
using internal::WaitFor;
using internal::WakerSlot;
using std::chrono::milliseconds;

// -----------------------------------------------------------------------------
// Task lifecycle cases with real threads (shared/docs/task-lifecycle.md)
// -----------------------------------------------------------------------------

// Case 2: another thread wakes the task while it is being polled. The wake is
// remembered and the task is re-queued when the poll ends: never lost, never
// polled on two threads at once.
TEST(ThreadPoolSchedulerTest, WakeFromAnotherThreadWhileRunningReschedulesOnce) {
  auto scheduler = MakePool(4);
  constexpr int kRounds = 2000;
  std::mutex mu;
  std::condition_variable cv;
  Waker handed;               // guarded by mu
  bool has_waker = false;     // guarded by mu
  std::atomic<bool> woken{false};
  std::atomic<bool> in_poll{false};
  std::atomic<int> double_polls{0};
  std::atomic<bool> quit{false};

  std::thread waker_thread([&] {
    for (;;) {
      Waker waker;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return has_waker || quit.load(); });
        if (!has_waker) return;
        waker = std::move(handed);
        has_waker = false;
      }
      waker.Wake();  // the task is spinning inside its poll right now
      woken = true;
    }
  });

  Task<int> task = Spawn(*scheduler, [&]() -> Co<int> {
    int resumed = 0;
    for (int round = 0; round < kRounds; ++round) {
      if (in_poll.exchange(true)) ++double_polls;
      woken = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        handed = CurrentWaker();  // valid for this poll's suspension
        has_waker = true;
      }
      cv.notify_one();
      while (!woken.load()) std::this_thread::yield();
      in_poll = false;
      co_await SuspendOnce{};  // nothing else will wake us
      ++resumed;
    }
    co_return resumed;
  });
  absl::StatusOr<int> result = BlockOn(*scheduler, task);
  quit = true;
  {
    std::lock_guard<std::mutex> lock(mu);
  }
  cv.notify_one();
  waker_thread.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, kRounds);
  EXPECT_EQ(double_polls.load(), 0);
}

// A waker made for one suspension does nothing at a later one.
TEST(ThreadPoolSchedulerTest, StaleWakerFromAnotherThreadDoesNothing) {
  auto scheduler = MakePool();
  WakerSlot first;
  WakerSlot second;
  std::atomic<int> stage{0};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    co_await ParkWaker{&first};
    stage = 1;
    co_await ParkWaker{&second};
    stage = 2;
  });
  ASSERT_TRUE(WaitFor([&] { return static_cast<bool>(first.Get()) && !task.state()->running(); }));
  std::thread([&] { first.Get().Wake(); }).join();
  ASSERT_TRUE(WaitFor([&] { return stage.load() == 1 && !task.state()->running(); }));
  std::thread([&] { first.Get().Wake(); }).join();  // stale: must not resume the second wait
  std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(stage.load(), 1);
  second.Get().Wake();
  EXPECT_TRUE(BlockOn(*scheduler, task).ok());
  EXPECT_EQ(stage.load(), 2);
}

// Case 6: the handle is cancelled (or dropped) from another thread while the
// task runs: the frame is destroyed when the poll ends, not during it.
TEST(ThreadPoolSchedulerTest, CancelFromAnotherThreadWhileRunningDefersDestruction) {
  auto scheduler = MakePool();
  for (bool drop_handle : {false, true}) {
    std::atomic<int> destroyed{0};
    std::atomic<bool> running{false};
    std::atomic<bool> cancel_done{false};
    std::atomic<int> destroyed_during_poll{-1};
    Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
      FrameGuard guard(&destroyed);
      running = true;
      while (!cancel_done.load()) std::this_thread::yield();
      destroyed_during_poll = destroyed.load();
      co_await SuspendOnce{};
      ADD_FAILURE() << "a cancelled task resumed";
    });
    const TaskId id = task.id();
    ASSERT_TRUE(WaitFor([&] { return running.load(); }));
    std::thread canceller([&] {
      if (drop_handle) {
        task = Task<void>();
      } else {
        task.Cancel();
        EXPECT_TRUE(task.IsCancelled());
      }
      cancel_done = true;
    });
    canceller.join();
    ASSERT_TRUE(WaitFor([&] { return destroyed.load() == 1; }));
    EXPECT_EQ(destroyed_during_poll.load(), 0);
    ASSERT_TRUE(WaitFor([&] { return !scheduler->IsTaskRunning(id); }));
  }
}

// Case 5 with a foreign thread: the handle is dropped while the task waits
// on an Event; a later Set touches nothing freed.
TEST(ThreadPoolSchedulerTest, CancelWhileSuspendedThenWakeIsHarmless) {
  auto scheduler = MakePool();
  Event event("never");
  std::atomic<int> destroyed{0};
  std::atomic<bool> waiting{false};
  Task<void> task = Spawn(*scheduler, [&]() -> Co<void> {
    FrameGuard guard(&destroyed);
    waiting = true;
    co_await event.Wait();
  });
  ASSERT_TRUE(WaitFor([&] { return waiting.load() && event.WaiterCount() == 1; }));
  std::thread([&] { task = Task<void>(); }).join();
  EXPECT_EQ(destroyed.load(), 1);
  event.Set();
  EXPECT_EQ(scheduler->LiveTaskCount(), 0u);
}

}  // namespace
}  // namespace simsched
