// The TestScheduler at scale: hundreds of thousands of tasks and timers,
// livelock budgets, and deep cancellation, each with an exact outcome.

#include <chrono>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

constexpr int kTasks = 200'000;

Co<void> YieldThenCount(int* counter) {
  co_await Yield();
  ++*counter;
}

TEST(TestSchedulerScaleTest, ManyDetachedTasksAllFinish) {
  TestScheduler scheduler({.seed = 1, .max_steps = 0});
  int counter = 0;
  for (int i = 0; i < kTasks; ++i) Spawn(scheduler, YieldThenCount(&counter)).Detach();
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(counter, kTasks);
  EXPECT_EQ(scheduler.step_count(), uint64_t{2} * kTasks);
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
}

TEST(TestSchedulerScaleTest, ManyQueuedTasksCancelledByDroppingTheirHandles) {
  TestScheduler scheduler({.seed = 1});
  int counter = 0;
  {
    std::vector<Task<void>> tasks;
    tasks.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) tasks.push_back(Spawn(scheduler, YieldThenCount(&counter)));
    EXPECT_EQ(scheduler.LiveTaskCount(), size_t{kTasks});
  }
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  ASSERT_TRUE(scheduler.Run().ok());  // the queued Runnables do nothing now
  EXPECT_EQ(counter, 0);
}

TEST(TestSchedulerScaleTest, HundredThousandTimersFireInDeadlineOrder) {
  TestScheduler scheduler({.seed = 1, .max_steps = 0});
  std::vector<int64_t> fired_at;
  for (int i = 0; i < 100'000; ++i) {
    Spawn(scheduler, [&fired_at, &scheduler, i]() -> Co<void> {
      co_await Sleep(std::chrono::milliseconds((int64_t{i} * 7919) % 100'000));
      fired_at.push_back(scheduler.Elapsed().count());
    }).Detach();
  }
  ASSERT_TRUE(scheduler.Run().ok());
  ASSERT_EQ(fired_at.size(), 100'000u);
  EXPECT_TRUE(std::is_sorted(fired_at.begin(), fired_at.end()));
  EXPECT_EQ(scheduler.Elapsed(), std::chrono::milliseconds(99'999));
}

TEST(TestSchedulerScaleTest, LivelockExhaustsTheStepBudget) {
  TestScheduler scheduler({.seed = 1, .max_steps = 1000});
  absl::Status status = scheduler.BlockOn([]() -> Co<void> {
    for (;;) co_await Yield();
  }());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(scheduler.step_count(), 1000u);
}

}  // namespace
}  // namespace simsched
