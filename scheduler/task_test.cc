// Tests of the task core: Co, Task, Runnable and Waker through their whole
// lifecycle (shared/docs/task-lifecycle.md), run on the TestScheduler.

#include "scheduler/task.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;

// Sets a flag when destroyed: proves a frame's RAII ran.
struct DestroyFlag {
  bool* destroyed;
  explicit DestroyFlag(bool* d) : destroyed(d) {}
  DestroyFlag(DestroyFlag&& other) noexcept : destroyed(std::exchange(other.destroyed, nullptr)) {}
  ~DestroyFlag() {
    if (destroyed != nullptr) *destroyed = true;
  }
};

Co<int> Answer() { co_return 42; }

Co<int> YieldThenAnswer(int yields) {
  for (int i = 0; i < yields; ++i) co_await Yield();
  co_return 42;
}

TEST(TaskTest, SpawnedTaskRunsToCompletionAndGivesItsValue) {
  TestScheduler scheduler;
  Task<int> task = Spawn(scheduler, YieldThenAnswer(3));
  EXPECT_FALSE(task.IsFinished());
  absl::StatusOr<int> result = scheduler.BlockOn(task);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 42);
  EXPECT_TRUE(task.IsFinished());
  EXPECT_FALSE(task.IsCancelled());
}

TEST(TaskTest, AwaitingAFinishedTaskReturnsWithoutSuspending) {
  TestScheduler scheduler;
  Task<int> child = Spawn(scheduler, Answer());
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  ASSERT_TRUE(child.IsFinished());
  uint64_t steps_before = 0;
  auto parent = [&]() -> Co<int> {
    steps_before = scheduler.step_count();
    int v = co_await child;
    // No suspension: still inside the same step.
    EXPECT_EQ(scheduler.step_count(), steps_before);
    co_return v + 1;
  };
  absl::StatusOr<int> result = scheduler.BlockOn(parent());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 43);
}

TEST(TaskTest, ExceptionPropagatesThroughCoAndTaskAwaits) {
  TestScheduler scheduler;
  auto thrower = []() -> Co<int> {
    co_await Yield();
    throw std::runtime_error("boom");
  };
  auto middle = [&]() -> Co<int> { co_return co_await thrower(); };
  auto top = [&]() -> Co<std::string> {
    Task<int> t = Spawn(scheduler, middle());
    try {
      co_await t;
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  };
  absl::StatusOr<std::string> result = scheduler.BlockOn(top());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, "caught boom");
  EXPECT_TRUE(scheduler.status().ok()) << "an observed exception is not a failure";
}

TEST(TaskTest, BlockOnRethrowsTheTasksException) {
  TestScheduler scheduler;
  auto thrower = []() -> Co<void> { throw std::invalid_argument("bad"); co_return; };
  EXPECT_THROW((void)scheduler.BlockOn(thrower()), std::invalid_argument);
}

TEST(TaskTest, ExceptionFromDetachedTaskFailsTheRunWithItsSpawnSite) {
  TestScheduler scheduler;
  auto thrower = []() -> Co<void> {
    co_await Yield();
    throw std::runtime_error("detached kaboom");
  };
  Spawn(scheduler, thrower()).Detach();  // this line is the spawn site
  absl::Status status = scheduler.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("detached kaboom"));
  EXPECT_THAT(status.message(), HasSubstr("task_test.cc"));
  EXPECT_THAT(status.message(), HasSubstr("seed 0"));
}

TEST(TaskTest, DestroyingTaskOfQueuedTaskCancelsItAndRunsRaii) {
  TestScheduler scheduler;
  bool destroyed = false, resumed = false;
  auto body = [](DestroyFlag, bool* resumed) -> Co<void> {
    *resumed = true;
    co_return;
  };
  {
    Task<void> task = Spawn(scheduler, body(DestroyFlag(&destroyed), &resumed));
    EXPECT_TRUE(scheduler.IsTaskRunning(task.id()));
  }
  EXPECT_TRUE(destroyed) << "frame destroyed at once, not at the next step";
  EXPECT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_FALSE(resumed) << "a cancelled task's Runnable must not resume it";
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(TaskTest, DestroyingTaskOfSuspendedTaskCancelsItMidSuspension) {
  TestScheduler scheduler;
  bool destroyed = false, after_sleep = false;
  auto body = [&]() -> Co<void> {
    DestroyFlag flag(&destroyed);
    co_await Sleep(std::chrono::seconds(10));
    after_sleep = true;
  };
  auto task = std::make_unique<Task<void>>(Spawn(scheduler, body()));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  const TaskId id = task->id();
  EXPECT_TRUE(scheduler.IsTaskRunning(id));
  EXPECT_FALSE(destroyed);
  task.reset();
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(scheduler.IsTaskRunning(id));
  // The timer was cancelled with the task: Run has nothing left to wait for.
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_FALSE(after_sleep);
  EXPECT_EQ(scheduler.Elapsed(), Duration::zero());
}

TEST(TaskTest, TaskDestroyedDuringItsOwnPollIsCancelledWhenThePollEnds) {
  TestScheduler scheduler;
  bool destroyed = false;
  auto holder = std::make_shared<Task<void>>();
  auto body = [&destroyed, holder]() -> Co<void> {
    DestroyFlag flag(&destroyed);
    *holder = Task<void>();  // drops the handle to itself while running
    EXPECT_FALSE(destroyed) << "destruction is deferred to the end of the poll";
    co_await Yield();
    ADD_FAILURE() << "resumed after its handle was dropped";
  };
  *holder = Spawn(scheduler, body());
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(TaskTest, CancelKeepsHandleReadableAndAwaitThrowsCancelled) {
  TestScheduler scheduler;
  Task<int> child = Spawn(scheduler, YieldThenAnswer(5));
  child.Cancel();
  EXPECT_TRUE(child.IsFinished());
  EXPECT_TRUE(child.IsCancelled());
  absl::StatusOr<int> blocked = scheduler.BlockOn(child);
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kCancelled);
  auto awaiter = [&]() -> Co<bool> {
    try {
      co_await child;
    } catch (const TaskCancelledError&) {
      co_return true;
    }
    co_return false;
  };
  absl::StatusOr<bool> caught = scheduler.BlockOn(awaiter());
  ASSERT_TRUE(caught.ok());
  EXPECT_TRUE(*caught);
}

TEST(TaskTest, DetachedTaskRunsToTheEnd) {
  TestScheduler scheduler;
  int done = 0;
  auto body = [&]() -> Co<void> {
    co_await Sleep(std::chrono::milliseconds(5));
    ++done;
  };
  Spawn(scheduler, body()).Detach();
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(done, 1);
}

TEST(TaskTest, IsTaskRunningCoversTheWholeLifecycle) {
  TestScheduler scheduler;
  EXPECT_FALSE(scheduler.IsTaskRunning(TaskId{1})) << "never issued";
  Task<int> task = Spawn(scheduler, YieldThenAnswer(2));
  const TaskId id = task.id();
  EXPECT_TRUE(scheduler.IsTaskRunning(id)) << "queued, before the first poll";
  ASSERT_TRUE(scheduler.Step());
  EXPECT_TRUE(scheduler.IsTaskRunning(id)) << "after the first poll it is still running";
  ASSERT_TRUE(scheduler.Step());
  EXPECT_TRUE(scheduler.IsTaskRunning(id));
  ASSERT_TRUE(scheduler.Step());
  EXPECT_FALSE(scheduler.IsTaskRunning(id)) << "completed";
  EXPECT_FALSE(scheduler.Step());

  Task<int> cancelled = Spawn(scheduler, YieldThenAnswer(2));
  ASSERT_TRUE(scheduler.Step());
  EXPECT_TRUE(scheduler.IsTaskRunning(cancelled.id()));
  cancelled.Cancel();
  EXPECT_FALSE(scheduler.IsTaskRunning(cancelled.id())) << "cancelled";
}

TEST(TaskTest, MoveOnlyResults) {
  TestScheduler scheduler;
  auto make = []() -> Co<std::unique_ptr<int>> {
    co_await Yield();
    co_return std::make_unique<int>(7);
  };
  auto parent = [&]() -> Co<std::unique_ptr<int>> {
    std::unique_ptr<int> inline_result = co_await make();
    Task<std::unique_ptr<int>> spawned = Spawn(scheduler, make());
    std::unique_ptr<int> spawned_result = co_await std::move(spawned);
    co_return std::make_unique<int>(*inline_result + *spawned_result);
  };
  absl::StatusOr<std::unique_ptr<int>> result = scheduler.BlockOn(parent());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(**result, 14);
}

TEST(TaskTest, ReferenceResults) {
  TestScheduler scheduler;
  int storage = 5;
  auto ref = [&]() -> Co<int&> {
    co_await Yield();
    co_return storage;
  };
  auto parent = [&]() -> Co<void> {
    int& r = co_await ref();
    r = 6;
  };
  ASSERT_TRUE(scheduler.BlockOn(parent()).ok());
  EXPECT_EQ(storage, 6);
  Task<int&> task = Spawn(scheduler, ref());
  absl::StatusOr<std::reference_wrapper<int>> result = scheduler.BlockOn(task);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(&result->get(), &storage);
}

Co<uint64_t> Chain(int depth) {
  if (depth == 0) {
    co_await Yield();  // suspend at the very bottom
    co_return 0;
  }
  co_return 1 + co_await Chain(depth - 1);
}

TEST(TaskTest, HundredThousandDeepAwaitChainCompletes) {
  TestScheduler scheduler;
  absl::StatusOr<uint64_t> result = scheduler.BlockOn(Chain(100'000));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 100'000u);
}

TEST(TaskTest, HundredThousandDeepAwaitChainIsCancelledWithoutRecursion) {
  TestScheduler scheduler;
  Task<uint64_t> task = Spawn(scheduler, Chain(100'000));
  ASSERT_TRUE(scheduler.Step());  // descends the whole chain, suspends at the bottom
  EXPECT_FALSE(task.IsFinished());
  task = Task<uint64_t>();  // cancels: destroys 100,001 frames
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(TaskTest, SpawningAnEmptyCoIsAClearError) {
  TestScheduler scheduler;
  Co<int> empty;
  try {
    (void)Spawn(scheduler, std::move(empty));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("empty Co"));
  }
}

TEST(TaskTest, BlockOnEmptyTaskIsInvalidArgument) {
  TestScheduler scheduler;
  Task<int> empty;
  EXPECT_EQ(scheduler.BlockOn(empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TaskTest, AwaitingYieldOutsideATaskThrowsLogicError) {
  // Drive a Co by hand, with no scheduler: Yield must refuse clearly.
  auto co = []() -> Co<void> { co_await Yield(); }();
  auto handle = co.Release();
  handle.resume();
  EXPECT_TRUE(handle.done());
  EXPECT_THROW(handle.promise().TakeResult(), std::logic_error);
  handle.destroy();
}

TEST(TaskTest, LambdaFactoryKeepsCapturesAlive) {
  TestScheduler scheduler;
  auto value = std::make_shared<int>(10);
  Task<int> task = Spawn(scheduler, [value]() -> Co<int> {
    co_await Yield();
    co_return *value + 1;
  });
  value.reset();  // only the task's copy of the lambda keeps it alive now
  absl::StatusOr<int> result = scheduler.BlockOn(task);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 11);
}

TEST(TaskTest, RunnableExposesMetadataWithoutRunning) {
  // A scheduler that only records what it is given.
  TestScheduler scheduler;
  const TaskLabel label("metadata-label");
  Task<int> task = SpawnLabeled(scheduler, label, Answer());
  EXPECT_EQ(task.metadata().label, label);
  EXPECT_EQ(task.metadata().id, TaskId{1});
  EXPECT_THAT(std::string(task.metadata().spawn_location.file_name()), HasSubstr("task_test.cc"));
  EXPECT_THAT(task.metadata().DebugString(), HasSubstr("\"metadata-label\""));
}

TEST(TaskTest, SchedulerDestroyedWithStalledDetachedTasksFreesEverything) {
  // LSan (under --config=asan) fails this test if any frame or header leaks.
  int destroyed = 0;
  struct Counter {
    int* count;
    explicit Counter(int* c) : count(c) {}
    Counter(Counter&& other) noexcept : count(std::exchange(other.count, nullptr)) {}
    ~Counter() {
      if (count != nullptr) ++*count;
    }
  };
  {
    auto scheduler = TestScheduler::Create();
    // The Counter is a coroutine parameter, so it lives in the frame from the
    // moment of the call, whether or not the task ever starts.
    auto stalled = [](Counter) -> Co<void> { co_await Sleep(std::chrono::hours(1)); };
    auto forever_waiting = [](Counter, TestScheduler* s) -> Co<void> {
      Task<void> never = Spawn(*s, []() -> Co<void> { co_await Sleep(std::chrono::hours(2)); });
      co_await never;
    };
    for (int i = 0; i < 10; ++i) Spawn(*scheduler, stalled(Counter(&destroyed))).Detach();
    for (int i = 0; i < 10; ++i) {
      Spawn(*scheduler, forever_waiting(Counter(&destroyed), scheduler.get())).Detach();
    }
    ASSERT_TRUE(scheduler->RunUntilIdle().ok());
    // Five more that never even start.
    for (int i = 0; i < 5; ++i) Spawn(*scheduler, stalled(Counter(&destroyed))).Detach();
    EXPECT_EQ(scheduler->LiveTaskCount(), 35u);
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_EQ(destroyed, 25);
}

TEST(TaskTest, DestructorThatSpawnsDuringShutdownDoesNotResurrectWork) {
  int ran_after_shutdown = 0;
  struct SpawnOnDestroy {
    TestScheduler* scheduler;
    int* ran;
    ~SpawnOnDestroy() {
      Spawn(*scheduler, [ran = ran]() -> Co<void> {
        ++*ran;
        co_return;
      }).Detach();
    }
  };
  {
    auto scheduler = TestScheduler::Create();
    auto body = [&](TestScheduler* s) -> Co<void> {
      SpawnOnDestroy guard{s, &ran_after_shutdown};
      co_await Sleep(std::chrono::seconds(1));
    };
    Spawn(*scheduler, body(scheduler.get())).Detach();
    ASSERT_TRUE(scheduler->RunUntilIdle().ok());
  }
  EXPECT_EQ(ran_after_shutdown, 0);
}

}  // namespace
}  // namespace simsched
