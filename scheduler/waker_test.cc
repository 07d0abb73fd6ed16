// A user-written awaitable, through public headers only: the path issue #7
// promises to users who wrap callback APIs, custom queues or devices.

#include "scheduler/waker.h"

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;

// A callback-style "device": reads complete when someone calls Complete().
class FakeDevice {
 public:
  void StartRead(std::function<void(int)> done) { pending_.push_back(std::move(done)); }
  bool Complete(int value) {
    if (pending_.empty()) return false;
    auto done = std::move(pending_.front());
    pending_.pop_front();
    done(value);
    return true;
  }
  size_t pending() const { return pending_.size(); }

 private:
  std::deque<std::function<void(int)>> pending_;
};

// The awaitable a user would write (docs/writing-awaitables.md).
class ReadAwaitable {
 public:
  explicit ReadAwaitable(FakeDevice& device) : device(device) {}

  bool await_ready() const { return false; }
  void await_suspend(std::coroutine_handle<>) {
    DescribeWait("FakeDevice::Read");
    device.StartRead([result = result, waker = CurrentWaker()](int value) {
      *result = value;
      waker.Wake();
    });
  }
  int await_resume() const { return **result; }

 private:
  FakeDevice& device;
  std::shared_ptr<std::optional<int>> result = std::make_shared<std::optional<int>>();
};

TEST(WakerTest, UserAwaitableIsWokenFromAnotherTask) {
  TestScheduler s({.seed = 4});
  FakeDevice device;
  Task<int> reader = Spawn(s, [&]() -> Co<int> {
    int a = co_await ReadAwaitable{device};
    int b = co_await ReadAwaitable{device};
    co_return a + b;
  });
  Spawn(s, [&]() -> Co<void> {
    while (!device.Complete(20)) co_await Yield();
    while (!device.Complete(22)) co_await Yield();
  }).Detach();
  absl::StatusOr<int> result = s.BlockOn(reader);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 42);
}

struct CaptureWaker {
  Waker* out;
  bool await_ready() const { return false; }
  void await_suspend(std::coroutine_handle<>) {
    DescribeWait("CaptureWaker");
    *out = CurrentWaker();
  }
  void await_resume() const {}
};

TEST(WakerTest, DoubleWakeRunsTheTaskOnce) {
  TestScheduler s;
  Waker waker;
  int polls = 0;
  Spawn(s, [&]() -> Co<void> {
    ++polls;
    co_await CaptureWaker{&waker};
    ++polls;
    co_await CaptureWaker{&waker};
    ++polls;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(polls, 1);
  waker.Wake();
  waker.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(s.step_count(), 2u);
}

TEST(WakerTest, WakeAfterCompletionDoesNothing) {
  TestScheduler s;
  Waker waker;
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await CaptureWaker{&waker}; });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  waker.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(task.IsFinished());
  const uint64_t steps = s.step_count();
  waker.Wake();  // touches only the header (ASan would catch a freed frame)
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.step_count(), steps);
}

TEST(WakerTest, WakeAfterCancellationDoesNothing) {
  TestScheduler s;
  Waker waker;
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await CaptureWaker{&waker}; });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  task = Task<void>();  // cancels; the frame is gone
  waker.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.LiveTaskCount(), 0u);
  EXPECT_EQ(s.step_count(), 1u);
}

TEST(WakerTest, WakerHeldPastTheSchedulersDestructionIsSafe) {
  Waker waker;
  {
    auto s = TestScheduler::Create();
    Spawn(*s, [&]() -> Co<void> { co_await CaptureWaker{&waker}; }).Detach();
    ASSERT_TRUE(s->RunUntilIdle().ok());
    EXPECT_TRUE(static_cast<bool>(waker));
  }
  waker.Wake();  // the task was cancelled with its scheduler: a no-op
  Waker copy = waker;
  copy.Wake();
  EXPECT_NE(copy.task_id(), TaskId{});
}

TEST(WakerTest, CurrentWakerOutsideATaskIsEmpty) {
  EXPECT_FALSE(InTask());
  Waker waker = CurrentWaker();
  EXPECT_FALSE(static_cast<bool>(waker));
  waker.Wake();  // harmless
}

TEST(WakerTest, DeadlockReportShowsTheUserAwaitablesDescription) {
  TestScheduler s;
  FakeDevice device;
  Task<int> reader = Spawn(s, [&]() -> Co<int> { co_return co_await ReadAwaitable{device}; });
  absl::StatusOr<int> result = s.BlockOn(reader);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ContainsRegex("waiting on FakeDevice::Read at .*waker_test.cc:[0-9]+"));
}

// --- Consuming wakes: std::move(waker).Wake() ---

TEST(WakerTest, ConsumingWakeRunsTheTaskAndEmptiesTheWaker) {
  TestScheduler s;
  Waker waker;
  int polls = 0;
  Spawn(s, [&]() -> Co<void> {
    ++polls;
    co_await CaptureWaker{&waker};
    ++polls;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(polls, 1);
  ASSERT_TRUE(static_cast<bool>(waker));
  std::move(waker).Wake();
  EXPECT_FALSE(static_cast<bool>(waker));  // NOLINT(bugprone-use-after-move): defined empty
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

TEST(WakerTest, ConsumingWakeOfACopyAndTheOriginalSchedulesOnce) {
  TestScheduler s;
  Waker waker;
  int polls = 0;
  Spawn(s, [&]() -> Co<void> {
    ++polls;
    co_await CaptureWaker{&waker};
    ++polls;
    co_await CaptureWaker{&waker};
    ++polls;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  Waker copy = waker;
  std::move(copy).Wake();
  std::move(waker).Wake("twice");  // already scheduled: only its reference goes
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(s.step_count(), 2u);
}

TEST(WakerTest, ConsumingWakeOfAStaleWakerDoesNothing) {
  TestScheduler s;
  Waker first;
  Waker second;
  int polls = 0;
  Spawn(s, [&]() -> Co<void> {
    ++polls;
    co_await CaptureWaker{&first};
    ++polls;
    co_await CaptureWaker{&second};
    ++polls;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  Waker stale = first;  // made for the first suspension
  first.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(polls, 2);
  std::move(stale).Wake();  // the task now waits at its second co_await
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(s.step_count(), 2u);
  std::move(second).Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(polls, 3);
}

TEST(WakerTest, ConsumingWakeAfterCompletionAndCancellationDoesNothing) {
  TestScheduler s;
  Waker done_waker;
  Waker cancelled_waker;
  Task<void> done = Spawn(s, [&]() -> Co<void> { co_await CaptureWaker{&done_waker}; });
  Task<void> cancelled = Spawn(s, [&]() -> Co<void> { co_await CaptureWaker{&cancelled_waker}; });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  Waker late = done_waker;
  done_waker.Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_TRUE(done.IsFinished());
  cancelled = Task<void>();  // cancels; the frame is gone
  const uint64_t steps = s.step_count();
  std::move(late).Wake();  // touches only the header (ASan would catch a freed frame)
  std::move(cancelled_waker).Wake();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(s.step_count(), steps);
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

TEST(WakerTest, ConsumingWakeDuringTheTasksOwnPollRequeuesItOnce) {
  // An awaitable that wakes its own task before suspending: the wake lands
  // while the task is being polled.
  struct WakeSelfThenSuspend {
    bool await_ready() const { return false; }
    void await_suspend(std::coroutine_handle<>) {
      DescribeWait("WakeSelfThenSuspend");
      Waker waker = CurrentWaker();
      Waker copy = waker;
      std::move(waker).Wake();
      std::move(copy).Wake();
    }
    void await_resume() const {}
  };
  TestScheduler s;
  int polls = 0;
  Task<void> task = Spawn(s, [&]() -> Co<void> {
    ++polls;
    co_await WakeSelfThenSuspend{};
    ++polls;
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(task.IsFinished());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(s.step_count(), 2u);
}

TEST(WakerTest, ConsumingWakeHeldPastTheSchedulersDestructionIsSafe) {
  Waker waker;
  {
    auto s = TestScheduler::Create();
    Spawn(*s, [&]() -> Co<void> { co_await CaptureWaker{&waker}; }).Detach();
    ASSERT_TRUE(s->RunUntilIdle().ok());
  }
  Waker copy = waker;
  std::move(waker).Wake();  // the task was cancelled with its scheduler: a no-op
  std::move(copy).Wake("after the end");
  EXPECT_FALSE(static_cast<bool>(copy));  // NOLINT(bugprone-use-after-move): defined empty
}

TEST(WakerTest, AnEmptyWakerConsumedIsHarmless) {
  Waker waker;
  std::move(waker).Wake();
  std::move(waker).Wake("nothing");  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(static_cast<bool>(waker));  // NOLINT(bugprone-use-after-move)
}

// A task of one TestScheduler woken from a task of another that is driving
// on the same thread: it must be queued on its own scheduler (the wake's
// direct enqueue applies only to the driving scheduler's tasks).
TEST(WakerTest, AWakeOfAnotherSchedulersTaskQueuesItThere) {
  TestScheduler a({.seed = 1});
  TestScheduler b({.seed = 2});
  Waker waker;
  int b_polls = 0;
  Spawn(b, [&]() -> Co<void> {
    ++b_polls;
    co_await CaptureWaker{&waker};
    ++b_polls;
  }).Detach();
  ASSERT_TRUE(b.RunUntilIdle().ok());
  ASSERT_EQ(b_polls, 1);
  Spawn(a, [&]() -> Co<void> {
    Waker copy = waker;
    copy.Wake();
    std::move(waker).Wake();
    co_return;
  }).Detach();
  ASSERT_TRUE(a.Run().ok());
  EXPECT_EQ(a.step_count(), 1u);
  EXPECT_EQ(b_polls, 1);  // queued on b, not run by a
  ASSERT_TRUE(b.RunUntilIdle().ok());
  EXPECT_EQ(b_polls, 2);
  EXPECT_EQ(b.step_count(), 2u);
}

}  // namespace
}  // namespace simsched
