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

}  // namespace
}  // namespace simsched
