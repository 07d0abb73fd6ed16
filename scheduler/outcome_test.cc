// Structured outcomes (scheduler/outcome.h) as the TestScheduler attaches
// them, and TestScheduler::Fail.

#include "scheduler/outcome.h"

#include <chrono>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::HasSubstr;

TEST(OutcomeTest, PayloadRoundTripsAndOkStaysOk) {
  EXPECT_EQ(OutcomeOf(absl::OkStatus()), Outcome::kNone);
  EXPECT_TRUE(WithOutcome(absl::OkStatus(), Outcome::kDeadlock).ok());
  EXPECT_EQ(OutcomeOf(absl::InternalError("plain")), Outcome::kNone);
  absl::Status status = WithOutcome(absl::InternalError("x"), Outcome::kTimeBudgetExhausted);
  EXPECT_TRUE(IsTimeBudgetExhausted(status));
  EXPECT_FALSE(IsDeadlock(status));
  EXPECT_EQ(status.message(), "x");
}

TEST(OutcomeTest, BlockOnDeadlockIsRecognisedWithoutItsText) {
  TestScheduler s({.seed = 1});
  Event never("never");
  absl::Status status = s.BlockOn([&]() -> Co<void> { co_await never.Wait(); }());
  EXPECT_TRUE(IsDeadlock(status)) << status;
  EXPECT_FALSE(IsStepBudgetExhausted(status));
}

TEST(OutcomeTest, StepBudgetOfTheSchedulerAndOfABlockOn) {
  auto spin = []() -> Co<void> {
    for (;;) co_await Yield();
  };
  {
    TestScheduler s({.seed = 1, .max_steps = 50});
    Spawn(s, spin()).Detach();
    EXPECT_TRUE(IsStepBudgetExhausted(s.Run()));
  }
  {
    TestScheduler s({.seed = 1});
    Task<void> task = Spawn(s, spin());
    absl::Status status = s.BlockOn(task, BlockOnBudget{.max_steps = 10});
    EXPECT_TRUE(IsStepBudgetExhausted(status)) << status;
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  }
}

TEST(OutcomeTest, TimeBudgetOfABlockOn) {
  TestScheduler s({.seed = 1});
  Task<void> task = Spawn(s, []() -> Co<void> { co_await Sleep(std::chrono::hours(1)); }());
  absl::Status status = s.BlockOn(task, BlockOnBudget{.max_time = std::chrono::seconds(1)});
  EXPECT_TRUE(IsTimeBudgetExhausted(status)) << status;
  EXPECT_FALSE(IsStepBudgetExhausted(status));
}

TEST(OutcomeTest, FailFromATaskStopsTheRunAndNamesTheTask) {
  TestScheduler s({.seed = 2});
  int steps_after = 0;
  Spawn(s, [&]() -> Co<void> {
    co_await Yield();
    s.Fail("the balance went negative");
    co_await Yield();
    ++steps_after;  // never reached: the run stops at the failure
  }).Detach();
  absl::Status status = s.Run();
  EXPECT_TRUE(IsTestFailure(status)) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("the balance went negative"));
  EXPECT_THAT(status.message(), HasSubstr("in task 1 spawned at scheduler/outcome_test.cc"));
  EXPECT_THAT(status.message(), HasSubstr("Fail() called at scheduler/outcome_test.cc"));
  EXPECT_EQ(steps_after, 0);
  EXPECT_TRUE(IsTestFailure(s.status()));
}

TEST(OutcomeTest, LaterFailuresKeepTheFirstOutcome) {
  TestScheduler s;
  s.Fail("first");
  s.Fail("second");
  EXPECT_TRUE(IsTestFailure(s.status()));
  EXPECT_THAT(s.status().message(), HasSubstr("and later failures"));
}

}  // namespace
}  // namespace simsched
