// The recorded trace tells the story: where each step's task resumed, what
// woke it, and which steps belong to the framework.

#include <chrono>
#include <coroutine>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

std::vector<TraceEntry> StepsOf(const TestScheduler& s, TaskId task) {
  std::vector<TraceEntry> steps;
  for (const TraceEntry& entry : s.trace()) {
    if (entry.task == task) steps.push_back(entry);
  }
  return steps;
}

TEST(TestSchedulerTraceTest, EachStepSaysWhereTheTaskResumedAndWhatWokeIt) {
  TestScheduler s({.seed = 4, .record_trace = true});
  Event ready("ready");
  Task<void> waiter = Spawn(s, [&]() -> Co<void> {
    co_await ready.Wait();
    co_await Sleep(std::chrono::milliseconds(5));
    co_await Yield();
  });
  Task<void> setter = Spawn(s, [&]() -> Co<void> {
    ready.Set();
    co_return;
  });
  ASSERT_TRUE(s.Run().ok());
  std::vector<TraceEntry> steps = StepsOf(s, waiter.id());
  ASSERT_GE(steps.size(), 4u);
  EXPECT_EQ(steps[0].cause, WakeCause::kSpawned);
  EXPECT_EQ(steps[0].woken_by, TaskId{});
  EXPECT_THAT(steps[0].DebugString(), HasSubstr("started (spawned at scheduler/test_scheduler_trace_test.cc"));
  // Woken by the setter task, at the Event's co_await.
  const TraceEntry* after_event = nullptr;
  for (const TraceEntry& e : steps) {
    if (e.cause == WakeCause::kTask) after_event = &e;
  }
  ASSERT_NE(after_event, nullptr);
  EXPECT_EQ(after_event->woken_by, setter.id());
  EXPECT_THAT(after_event->DebugString(),
              ContainsRegex("resumed after Event 'ready'.* at scheduler/test_scheduler_trace_test.cc:[0-9]+.*, "
                            "woken by an event set from task 2"));
  // Woken by the timer, at the Sleep.
  bool timer_step = false, yield_step = false;
  for (const TraceEntry& e : steps) {
    if (e.cause == WakeCause::kTimer) {
      timer_step = true;
      EXPECT_EQ(e.time, std::chrono::milliseconds(5));
      EXPECT_THAT(e.DebugString(), ContainsRegex("resumed after Sleep at .*, woken by a timer"));
    }
    if (e.cause == WakeCause::kItself) {
      yield_step = true;
      EXPECT_THAT(e.DebugString(), HasSubstr("resumed after yielding"));
    }
  }
  EXPECT_TRUE(timer_step);
  EXPECT_TRUE(yield_step);
}

TEST(TestSchedulerTraceTest, JoinsAndSpawnsFromTasksNameTheOtherTask) {
  TestScheduler s({.seed = 1, .record_trace = true});
  Task<int> outer = Spawn(s, []() -> Co<int> {
    Task<int> child = Spawn(*CurrentScheduler(), []() -> Co<int> {
      co_await Yield();
      co_return 7;
    }());
    co_return co_await child;
  }());
  ASSERT_TRUE(s.BlockOn(outer).ok());
  const std::vector<TraceEntry> child_steps = StepsOf(s, TaskId{2});
  ASSERT_FALSE(child_steps.empty());
  EXPECT_THAT(child_steps[0].DebugString(), HasSubstr("by task 1)"));
  const std::vector<TraceEntry> outer_steps = StepsOf(s, outer.id());
  EXPECT_THAT(outer_steps.back().DebugString(), HasSubstr("resumed after task 2 finished, woken by task 2"));
}

TEST(TestSchedulerTraceTest, WakesFromTheTestBodyAndInternalTasksAreMarked) {
  TestScheduler s({.seed = 1, .record_trace = true});
  Event go("go");
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await go.Wait(); });
  Task<void> framework = Spawn(s, []() -> Co<void> { co_return; }());
  s.MarkInternal(framework.id());
  ASSERT_TRUE(s.RunUntilParked().ok());
  go.Set();
  ASSERT_TRUE(s.Run().ok());
  EXPECT_THAT(StepsOf(s, task.id()).back().DebugString(), HasSubstr("woken by an event set from outside any task"));
  EXPECT_TRUE(StepsOf(s, framework.id()).front().internal);
  EXPECT_THAT(StepsOf(s, framework.id()).front().DebugString(), HasSubstr("[internal]"));
}

TEST(TestSchedulerTraceTest, RecordingTheStoryDoesNotChangeTheSchedule) {
  auto scenario = [](bool record) {
    TestScheduler s({.seed = 9, .record_trace = record});
    Event ready("ready");
    for (int i = 0; i < 5; ++i) {
      Spawn(s, [&]() -> Co<void> {
        co_await ready.Wait();
        co_await Sleep(std::chrono::milliseconds(1));
      }).Detach();
    }
    Spawn(s, [&]() -> Co<void> {
      co_await Yield();
      ready.Set();
    }).Detach();
    EXPECT_TRUE(s.Run().ok());
    return s.TraceHash();
  };
  EXPECT_EQ(scenario(false), scenario(true));
}

// Without trace recording, a wake on the driving thread pushes a background
// task straight onto the scheduler's queue (internal::DirectEnqueueTarget);
// with it, every wake goes through Schedule(). The two must queue the same
// tasks in the same order: same seed, same trace hash, over wakes of every
// kind (consuming and not, events, joins, timers, labels, lanes).
TEST(TestSchedulerTraceTest, DirectEnqueueOfWakesKeepsTheSchedule) {
  struct Slot {
    Waker waiter;
    int value = 0;
  };
  struct TakeSlot {
    Slot& slot;
    bool await_ready() const { return slot.value != 0; }
    void await_suspend(std::coroutine_handle<>) {
      DescribeWait("TakeSlot");
      slot.waiter = CurrentWaker();
    }
    int await_resume() { return std::exchange(slot.value, 0); }
  };
  auto scenario = [](uint64_t seed, bool record) {
    TestScheduler s({.seed = seed, .record_trace = record});
    s.Deprioritize(TaskLabel("low"));
    Event ready("ready");
    Slot slots[4];
    for (int i = 0; i < 4; ++i) {
      Spawn(s, [&, i]() -> Co<void> {
        for (int round = 0; round < 5; ++round) {
          co_await ready.Wait();
          co_await TakeSlot{slots[i]};
          if (round % 2 == 0) co_await Sleep(std::chrono::microseconds(round + i));
        }
      }).Detach();
    }
    Task<int> child = SpawnLabeled(s, "io", [&]() -> Co<int> {
      co_await Yield();
      co_return 7;
    });
    SpawnLabeled(s, "low", [&]() -> Co<void> { co_await ready.Wait(); }).Detach();
    SpawnForeground(s, [&, child = std::move(child)]() mutable -> Co<void> {
      const int got = co_await child;  // a join: woken as the child finishes
      EXPECT_EQ(got, 7);
      ready.Set();
      for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 4; ++i) {
          while (slots[i].value != 0) co_await Yield();
          slots[i].value = round + 1;
          if (slots[i].waiter) {
            if ((round + i) % 2 == 0) {
              std::move(slots[i].waiter).Wake();
            } else {
              slots[i].waiter.Wake("a slot put");
              slots[i].waiter = Waker();
            }
          }
        }
        co_await Sleep(std::chrono::microseconds(10));
      }
    }).Detach();
    EXPECT_TRUE(s.Run().ok());
    return std::make_pair(s.TraceHash(), s.step_count());
  };
  for (uint64_t seed = 0; seed < 40; ++seed) {
    EXPECT_EQ(scenario(seed, false), scenario(seed, true)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace simsched
