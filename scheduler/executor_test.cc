#include "scheduler/executor.h"

#include <vector>

#include "gtest/gtest.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

TEST(ExecutorTest, ForegroundTasksRunOnTheMainThreadAndBackgroundOnesDoNot) {
  auto scheduler = TestScheduler::Create({.seed = 3});
  BackgroundExecutor background(scheduler);
  ForegroundExecutor foreground(scheduler);
  std::vector<bool> main_seen;
  for (int i = 0; i < 5; ++i) {
    foreground.Spawn([&]() -> Co<void> {
      main_seen.push_back(foreground.IsMainThread());
      co_await Yield();
      main_seen.push_back(foreground.IsMainThread());
    }).Detach();
    background.Spawn([&]() -> Co<void> {
      main_seen.push_back(!scheduler->IsMainThread());
      co_return;
    }).Detach();
  }
  ASSERT_TRUE(scheduler->Run().ok());
  ASSERT_EQ(main_seen.size(), 15u);
  for (bool ok : main_seen) EXPECT_TRUE(ok);
  EXPECT_FALSE(scheduler->IsMainThread()) << "outside any task";
}

TEST(ExecutorTest, DeprioritizeReachesTheTestScheduler) {
  auto scheduler = TestScheduler::Create({.seed = 1});
  BackgroundExecutor background(scheduler);
  const TaskLabel slow("executor-slow");
  background.Deprioritize(slow);
  std::vector<int> order;
  background.SpawnLabeled(slow, [&]() -> Co<void> {
    order.push_back(1);
    co_return;
  }).Detach();
  for (int i = 0; i < 5; ++i) {
    background.Spawn([&]() -> Co<void> {
      order.push_back(0);
      co_return;
    }).Detach();
  }
  ASSERT_TRUE(scheduler->Run().ok());
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order.back(), 1);
}

TEST(ExecutorTest, SpawnLabeledTakesAStringLiteral) {
  auto scheduler = TestScheduler::Create({.seed = 1});
  BackgroundExecutor background(scheduler);
  Task<int> task = background.SpawnLabeled("executor-literal", []() -> Co<int> { co_return 3; });
  ASSERT_TRUE(task.metadata().label.has_value());
  EXPECT_EQ(*task.metadata().label, TaskLabel("executor-literal"));
  EXPECT_EQ(scheduler->BlockOn(task).value_or(0), 3);
}

TEST(ExecutorTest, TimerUsesTheSchedulersClock) {
  auto scheduler = TestScheduler::Create();
  BackgroundExecutor background(scheduler);
  Instant woke{};
  background.Spawn([&]() -> Co<void> {
    co_await background.Timer(std::chrono::milliseconds(250));
    woke = background.Now();
  }).Detach();
  ASSERT_TRUE(scheduler->Run().ok());
  EXPECT_EQ(woke - Instant{}, std::chrono::milliseconds(250));
}

}  // namespace
}  // namespace simsched
