// Time at the edges of its range: "forever" means forever, nothing wraps, and
// nothing hangs. Regression tests for the defects where a timer at
// Instant::max() hung Run/BlockOn and `now + duration` overflowed (a
// Sleep(Duration::max()) returned at once, AdvanceClock(max) was ignored, an
// unlimited step budget wrapped).

#include "scheduler/time.h"

#include <chrono>
#include <cstdint>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

TEST(DeadlineAfterTest, SaturatesAtBothEnds) {
  const Instant t = Instant{} + seconds(5);
  EXPECT_EQ(DeadlineAfter(t, seconds(1)), Instant{} + seconds(6));
  EXPECT_EQ(DeadlineAfter(t, Duration::max()), kEndOfTime);
  EXPECT_EQ(DeadlineAfter(Instant{}, Duration::max()), Instant{} + Duration::max());
  EXPECT_EQ(DeadlineAfter(kEndOfTime, Duration(1)), kEndOfTime);
  EXPECT_EQ(DeadlineAfter(Instant::min() + seconds(1), -hours(1)), Instant::min());
  EXPECT_EQ(DeadlineAfter(t, -seconds(2)), Instant{} + seconds(3));
}

TEST(SaturatingAddTest, ClampsAtTheTop) {
  EXPECT_EQ(internal::SaturatingAdd(1, 2), 3u);
  EXPECT_EQ(internal::SaturatingAdd(5, UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(internal::SaturatingAdd(UINT64_MAX, 0), UINT64_MAX);
}

Co<void> SleepUntilEndOfTime() { co_await SleepUntil(kEndOfTime); }

TEST(TimeEdgesTest, RunReturnsWhenTheOnlyTimerIsAtTheEndOfTime) {
  TestScheduler scheduler({.seed = 1, .max_steps = 1000});
  Task<void> task = Spawn(scheduler, SleepUntilEndOfTime());
  // Returns (a hang here was the defect); whatever the verdict on the stuck
  // task, virtual time did not jump to the end of time and it is still asleep.
  (void)scheduler.Run();
  EXPECT_FALSE(task.IsFinished());
  EXPECT_EQ(scheduler.Elapsed(), Duration::zero());
}

TEST(TimeEdgesTest, BlockOnASleepUntilTheEndOfTimeReportsInsteadOfHanging) {
  TestScheduler scheduler({.seed = 1, .max_steps = 1000});
  absl::Status status = scheduler.BlockOn(SleepUntilEndOfTime());
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("Sleep"), std::string_view::npos) << status;
}

TEST(TimeEdgesTest, SleepForeverAfterTheClockMovedStaysAsleep) {
  TestScheduler scheduler({.seed = 1});
  scheduler.AdvanceClock(seconds(1));
  Task<void> task = Spawn(scheduler, []() -> Co<void> { co_await Sleep(Duration::max()); });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_FALSE(task.IsFinished());
  // Other timers still fire around it.
  bool other_fired = false;
  Spawn(scheduler, [&other_fired]() -> Co<void> {
    co_await Sleep(hours(24 * 365));
    other_fired = true;
  }).Detach();
  (void)scheduler.Run();
  EXPECT_TRUE(other_fired);
  EXPECT_FALSE(task.IsFinished());
}

TEST(TimeEdgesTest, AdvanceClockToTheEndOfTimeIsAnErrorAndLeavesTheClock) {
  TestScheduler scheduler({.seed = 1});
  scheduler.AdvanceClock(seconds(1));
  scheduler.AdvanceClock(Duration::max());
  EXPECT_EQ(scheduler.Elapsed(), seconds(1));
  EXPECT_EQ(scheduler.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(scheduler.status().message().find("end of time"), std::string_view::npos)
      << scheduler.status();
}

TEST(TimeEdgesTest, UnlimitedStepBudgetDoesNotWrap) {
  TestScheduler scheduler({.seed = 1});
  Task<int> task = Spawn(scheduler, []() -> Co<int> {
    co_await Yield();
    co_await Yield();
    co_return 7;
  }());
  ASSERT_TRUE(scheduler.Step());  // steps_ > 0, so steps_ + UINT64_MAX would wrap
  absl::StatusOr<int> result = scheduler.BlockOn(task, BlockOnBudget{.max_steps = UINT64_MAX});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 7);
}

TEST(TimeEdgesTest, UnlimitedTimeBudgetDoesNotWrap) {
  TestScheduler scheduler({.seed = 1});
  scheduler.AdvanceClock(seconds(1));
  Task<int> task = Spawn(scheduler, []() -> Co<int> {
    co_await Sleep(hours(1));
    co_return 8;
  }());
  absl::StatusOr<int> result =
      scheduler.BlockOn(task, BlockOnBudget{.max_time = Duration::max()});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 8);
  EXPECT_EQ(scheduler.Elapsed(), seconds(1) + hours(1));
}

TEST(TimeEdgesTest, CenturiesOfVirtualTimeAreFine) {
  TestScheduler scheduler({.seed = 1});
  absl::Status status = scheduler.BlockOn([]() -> Co<void> {
    for (int i = 0; i < 100; ++i) co_await Sleep(hours(24 * 365 * 2));
  }());
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(scheduler.Elapsed(), hours(24 * 365 * 200));
}

// SleepAwaiter keeps the wait site it interned when it was made, not the
// location (16 bytes, not 32): reports still name Sleep and its call site,
// for Sleep and SleepUntil, and a sleep that did not suspend records nothing.
int sleep_line = 0;
int sleep_until_line = 0;

TEST(TimeEdgesTest, ASleepingTaskWaitsOnSleepAtItsCallSite) {
  TestScheduler scheduler({.seed = 1});
  Task<void> task = Spawn(scheduler, []() -> Co<void> {
    co_await Sleep(Duration::zero());  // does not suspend
    sleep_line = __LINE__ + 1;
    co_await Sleep(hours(1));
    sleep_until_line = __LINE__ + 1;
    co_await SleepUntil(CurrentScheduler()->Now() + hours(1));
  });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  WaitSite site = task.state()->wait_site();
  EXPECT_EQ(site.what, "Sleep");
  EXPECT_EQ(site.where.line(), static_cast<uint32_t>(sleep_line));
  EXPECT_STREQ(site.where.function_name(), "operator()");
  scheduler.AdvanceClock(hours(1));
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  site = task.state()->wait_site();
  EXPECT_EQ(site.what, "Sleep");
  EXPECT_EQ(site.where.line(), static_cast<uint32_t>(sleep_until_line));
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_TRUE(task.IsFinished());
  EXPECT_EQ(scheduler.Elapsed(), hours(2));
}

// A task cancelled while asleep cancels its timer (the awaiter's destructor,
// with the scheduler and the timer's id in its two words): nothing is left
// for virtual time to advance to.
TEST(TimeEdgesTest, CancellingASleepingTaskCancelsItsTimer) {
  TestScheduler scheduler({.seed = 1});
  Task<void> relative = Spawn(scheduler, []() -> Co<void> { co_await Sleep(hours(1)); });
  Task<void> absolute = Spawn(
      scheduler, []() -> Co<void> { co_await SleepUntil(CurrentScheduler()->Now() + hours(2)); });
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  relative.Cancel();
  absolute.Cancel();
  EXPECT_TRUE(relative.IsCancelled());
  EXPECT_TRUE(absolute.IsCancelled());
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(scheduler.Elapsed(), Duration::zero());
}

TEST(TimeEdgesTest, ThreadPoolSleepForeverDoesNotReturn) {
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 1});
  Task<void> forever = Spawn(*pool, []() -> Co<void> { co_await Sleep(Duration::max()); });
  // A later, short sleep on the same timer thread fires; the forever one
  // stays asleep (a wrapped deadline would have fired first).
  Task<void> short_sleep = Spawn(*pool, []() -> Co<void> { co_await Sleep(Duration(1000)); });
  ASSERT_TRUE(BlockOn(*pool, short_sleep).ok());
  EXPECT_FALSE(forever.IsFinished());
  forever.Cancel();
  EXPECT_TRUE(forever.IsCancelled());
}

}  // namespace
}  // namespace simsched
