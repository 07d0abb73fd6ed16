// TestScheduler for real applications: lanes (one simulated main thread per
// client), BlockOn on a lane, budgeted BlockOn, parking, foreign-thread
// detection and SimulateRandomDelay.

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

struct TwoLaneRun {
  std::vector<std::string> steps;  // "a0", "b0", ... in execution order
  uint64_t hash;
};

TwoLaneRun RunTwoLanes(uint64_t seed) {
  auto s = TestScheduler::Create({.seed = seed});
  auto a = ForegroundExecutor::ForNewLane(s, "client-a");
  auto b = ForegroundExecutor::ForNewLane(s, "client-b");
  TwoLaneRun run;
  for (int i = 0; i < 4; ++i) {
    a.Spawn([&run, i]() -> Co<void> {
      run.steps.push_back("a" + std::to_string(i));
      co_return;
    }).Detach();
    b.Spawn([&run, i]() -> Co<void> {
      run.steps.push_back("b" + std::to_string(i));
      co_return;
    }).Detach();
  }
  EXPECT_TRUE(s->Run().ok());
  run.hash = s->TraceHash();
  return run;
}

TEST(TestSchedulerLanesTest, TwoLanesKeepFifoOrderWhileInterleavingDifferentlyAcrossSeeds) {
  std::set<std::vector<std::string>> interleavings;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    TwoLaneRun run = RunTwoLanes(seed);
    std::vector<std::string> a, b;
    for (const std::string& step : run.steps) (step[0] == 'a' ? a : b).push_back(step);
    EXPECT_THAT(a, ElementsAre("a0", "a1", "a2", "a3")) << "seed " << seed;
    EXPECT_THAT(b, ElementsAre("b0", "b1", "b2", "b3")) << "seed " << seed;
    interleavings.insert(run.steps);
    EXPECT_EQ(run.hash, RunTwoLanes(seed).hash) << "seed " << seed;
  }
  EXPECT_GT(interleavings.size(), 10u);
}

TEST(TestSchedulerLanesTest, LaneTasksKnowTheirLaneAndAreOnTheMainThread) {
  auto s = TestScheduler::Create({.seed = 2});
  auto a = ForegroundExecutor::ForNewLane(s, "client-a");
  ForegroundExecutor main(s);
  std::vector<std::pair<std::optional<LaneId>, bool>> seen;
  a.Spawn([&]() -> Co<void> {
    seen.emplace_back(s->CurrentLane(), s->IsMainThread());
    co_return;
  }).Detach();
  main.Spawn([&]() -> Co<void> {
    seen.emplace_back(s->CurrentLane(), s->IsMainThread());
    co_return;
  }).Detach();
  Spawn(*s, [&]() -> Co<void> {
    seen.emplace_back(s->CurrentLane(), s->IsMainThread());
    co_return;
  }).Detach();
  ASSERT_TRUE(s->Run().ok());
  ASSERT_EQ(seen.size(), 3u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen[0], std::make_pair(std::optional<LaneId>(), false));
  EXPECT_EQ(seen[1], std::make_pair(std::optional<LaneId>(0), true));
  EXPECT_EQ(seen[2], std::make_pair(std::optional<LaneId>(a.lane()), true));
  EXPECT_EQ(s->LaneName(a.lane()), "client-a");
  EXPECT_EQ(s->LaneName(0), "main");
}

TEST(TestSchedulerLanesTest, BlockOnInALaneHoldsThatLaneWhileOthersProgress) {
  int seeds_where_b_ran_during_the_block = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto s = TestScheduler::Create({.seed = seed});
    auto a = ForegroundExecutor::ForNewLane(s, "blocked");
    auto b = ForegroundExecutor::ForNewLane(s, "free");
    std::vector<std::string> log;
    Event release("release");
    a.Spawn([&]() -> Co<void> {
      log.push_back("a: blocking");
      Task<void> slow = Spawn(*s, [&]() -> Co<void> {
        co_await release.Wait();
        log.push_back("slow: done");
      });
      EXPECT_TRUE(s->BlockOn(slow).ok());
      log.push_back("a: unblocked");
      co_return;
    }).Detach();
    a.Spawn([&]() -> Co<void> {
      log.push_back("a: second task");
      co_return;
    }).Detach();
    b.Spawn([&]() -> Co<void> {
      for (int i = 0; i < 3; ++i) {
        log.push_back("b: step");
        co_await Yield();
      }
      release.Set();
    }).Detach();
    ASSERT_TRUE(s->Run().ok()) << "seed " << seed;
    auto index = [&](const std::string& what) {
      return std::find(log.begin(), log.end(), what) - log.begin();
    };
    // Lane a's second task cannot run while its first is blocked.
    EXPECT_LT(index("a: unblocked"), index("a: second task")) << "seed " << seed;
    EXPECT_LT(index("slow: done"), index("a: unblocked")) << "seed " << seed;
    // Lane b is not held up by lane a's block.
    int b_steps_while_blocked = 0;
    for (auto i = index("a: blocking"); i < index("a: unblocked"); ++i) {
      b_steps_while_blocked += log[i] == "b: step";
    }
    seeds_where_b_ran_during_the_block += b_steps_while_blocked > 0;
  }
  EXPECT_GT(seeds_where_b_ran_during_the_block, 5);
}

TEST(TestSchedulerLanesTest, BlockOnFromABackgroundTaskIsRefused) {
  auto s = TestScheduler::Create();
  absl::Status inner;
  Spawn(*s, [&]() -> Co<void> {
    Task<void> other = Spawn(*s, []() -> Co<void> { co_return; });
    inner = s->BlockOn(other);
    co_await other;
  }).Detach();
  ASSERT_TRUE(s->Run().ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(inner.message(), HasSubstr("co_await the task instead"));
}

Co<int> CountYields(int n, int* progress) {
  for (int i = 0; i < n; ++i) {
    ++*progress;
    co_await Yield();
  }
  co_return n;
}

TEST(TestSchedulerLanesTest, BudgetedBlockOnReturnsUnfinishedAndASecondBlockOnGetsTheValue) {
  TestScheduler s;
  int progress = 0;
  Task<int> task = Spawn(s, CountYields(50, &progress));
  absl::StatusOr<int> first = s.BlockOn(task, BlockOnBudget{.max_steps = 10});
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(first.status().message(), HasSubstr("was not cancelled"));
  EXPECT_FALSE(task.IsFinished());
  EXPECT_TRUE(s.IsTaskRunning(task.id()));
  EXPECT_EQ(progress, 10);
  absl::StatusOr<int> second = s.BlockOn(task);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 50);
}

TEST(TestSchedulerLanesTest, ZeroBudgetPollsTheTaskOnce) {
  TestScheduler s;
  int progress = 0;
  // Other runnable work that a random pick could choose instead.
  for (int i = 0; i < 5; ++i) Spawn(s, []() -> Co<void> { co_return; }).Detach();
  Task<int> task = Spawn(s, CountYields(3, &progress));
  absl::StatusOr<int> result = s.BlockOn(task, BlockOnBudget{.max_steps = 0});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(progress, 1) << "polled exactly once";
  EXPECT_EQ(s.step_count(), 1u);
}

// The step budget is exact: a task that needs N polls finishes within a
// budget of N steps and is cut off, unfinished, by a budget of N - 1.
TEST(TestSchedulerLanesTest, StepBudgetIsExactAtTheBoundary) {
  constexpr int kYields = 6;  // so kYields + 1 polls in all
  {
    TestScheduler s;
    int progress = 0;
    Task<int> task = Spawn(s, CountYields(kYields, &progress));
    absl::StatusOr<int> result = s.BlockOn(task, BlockOnBudget{.max_steps = kYields + 1});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, kYields);
    EXPECT_EQ(s.step_count(), uint64_t{kYields + 1});
  }
  {
    TestScheduler s;
    int progress = 0;
    Task<int> task = Spawn(s, CountYields(kYields, &progress));
    absl::StatusOr<int> result = s.BlockOn(task, BlockOnBudget{.max_steps = kYields});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(s.step_count(), uint64_t{kYields}) << "not one step more than the budget";
    EXPECT_EQ(progress, kYields);
    EXPECT_FALSE(task.IsFinished());
  }
}

TEST(TestSchedulerLanesTest, TimeBudgetStopsAtTheLimitWithoutCancelling) {
  TestScheduler s;
  Task<int> task = Spawn(s, []() -> Co<int> {
    co_await Sleep(milliseconds(100));
    co_return 7;
  });
  absl::StatusOr<int> first = s.BlockOn(task, BlockOnBudget{.max_time = milliseconds(30)});
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(s.Elapsed(), milliseconds(30));
  EXPECT_FALSE(task.IsFinished());
  absl::StatusOr<int> second = s.BlockOn(task, BlockOnBudget{.max_time = milliseconds(100)});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 7);
  EXPECT_EQ(s.Elapsed(), milliseconds(100)) << "time stops at the timer, not the budget";
}

TEST(TestSchedulerLanesTest, BlockOnThatWouldParkFailsWithTheDeadlockReportWhenParkingIsForbidden) {
  TestScheduler s;
  Event never("never");
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await never.Wait(); });
  absl::Status status = s.BlockOn(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("deadlock"));
  EXPECT_THAT(status.message(), HasSubstr("waiting on Event 'never'"));
}

TEST(TestSchedulerLanesTest, BlockOnWithParkingAllowedIsWokenByAnotherThread) {
  TestScheduler s({.allow_parking = true});
  Event ready("ready-from-thread");
  Task<int> task = Spawn(s, [&]() -> Co<int> {
    co_await ready.Wait();
    co_return 5;
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  std::thread other([&] {
    std::this_thread::sleep_for(milliseconds(20));
    ready.Set();  // a wake from a real thread: accepted when parking is allowed
  });
  absl::StatusOr<int> result = s.BlockOn(task);
  other.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 5);
}

TEST(TestSchedulerLanesTest, ParkingAllowedStillReportsADeadlockAfterTheParkTimeout) {
  TestScheduler s({.allow_parking = true, .park_timeout = milliseconds(20)});
  Event never("never");
  Task<void> task = Spawn(s, [&]() -> Co<void> { co_await never.Wait(); });
  absl::Status status = s.BlockOn(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("park timeout"));
}

TEST(TestSchedulerLanesTest, WakeFromAStdThreadIsReportedAsNotDeterministic) {
  TestScheduler s({.seed = 9});
  Event signal("cross-thread");
  Task<void> task = SpawnLabeled(s, TaskLabel("victim"), [&]() -> Co<void> {
    co_await signal.Wait();
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  std::thread other([&] { signal.Set(); });
  other.join();
  absl::Status status = s.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("not deterministic"));
  EXPECT_THAT(message, HasSubstr("task 1 \"victim\""));
  EXPECT_THAT(message, HasSubstr("another OS thread"));
  EXPECT_THAT(message, HasSubstr("seed 9"));
  EXPECT_FALSE(task.IsFinished()) << "the foreign wake must not run the task";
}

TEST(TestSchedulerLanesTest, StepFromAnotherThreadDoesNothingAndFailsTheRun) {
  TestScheduler s({.seed = 4});
  bool ran = false;
  Task<void> task = Spawn(s, [&]() -> Co<void> {
    ran = true;
    co_return;
  });
  bool stepped = true;
  std::thread other([&] { stepped = s.Step(); });
  other.join();
  EXPECT_FALSE(stepped);
  EXPECT_FALSE(ran) << "a step from another thread must not poll the task";
  absl::Status status = s.Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("Step() was called from a thread other than"));
}

TEST(TestSchedulerLanesTest, SimulateRandomDelayYieldsASeedChosenNumberOfTimes) {
  std::set<uint64_t> step_counts;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    auto run = [seed] {
      TestScheduler s({.seed = seed});
      EXPECT_TRUE(s.BlockOn([]() -> Co<void> { co_await SimulateRandomDelay(5); }()).ok());
      return std::make_pair(s.step_count(), s.TraceHash());
    };
    auto [steps, hash] = run();
    EXPECT_GE(steps, 1u);
    EXPECT_LE(steps, 6u);
    EXPECT_EQ(run().second, hash) << "seed " << seed;
    step_counts.insert(steps);
  }
  EXPECT_GE(step_counts.size(), 4u);
}

TEST(TestSchedulerLanesTest, SpawningOntoAnUnknownLaneFailsTheRunClearly) {
  auto s = TestScheduler::Create();
  ForegroundExecutor bogus(s, /*lane=*/7);
  bool ran = false;
  bogus.Spawn([&]() -> Co<void> {
    ran = true;
    co_return;
  }).Detach();
  absl::Status status = s->Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("lane 7"));
  EXPECT_THAT(status.message(), HasSubstr("AddLane"));
}

}  // namespace
}  // namespace simsched
