// Regression test for issue 12: what the harness says about bodies that go
// wrong. Each case runs a SIM_TEST body through RunSimTest and checks that
// the seed fails with a message that says what happened, never a crash, a
// hang or a pass.

#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "testing/internal/capture_failures.h"
#include "testing/sim_test.h"

namespace simsched::testing {
namespace {

using test_internal::CaptureFailures;

using ::testing::HasSubstr;

std::vector<std::string> RunBody(const char* name, const SimBody& body,
                                 SimTestOptions options = {.iterations = 3}) {
  return CaptureFailures([&] {
    RunSimTest(name, body, options, "", "", SourceLocation::current());
  });
}

TEST(BadBodyTest, BodyThrowingAStdExceptionFailsWithItsMessage) {
  std::vector<std::string> failures =
      RunBody("BadBody.Throws", [](Sim&) { throw std::runtime_error("boom from body"); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("failed on seed 0"));
  EXPECT_THAT(failures[0], HasSubstr("uncaught exception from the test body: boom from body"));
}

TEST(BadBodyTest, BodyThrowingSomethingElseFailsAndSaysSo) {
  std::vector<std::string> failures = RunBody("BadBody.ThrowsInt", [](Sim&) { throw 42; });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("uncaught exception (not a std::exception) from the test body"));
}

TEST(BadBodyTest, DetachedTaskThrowingNamesTheTaskAndTheMessage) {
  std::vector<std::string> failures = RunBody("BadBody.TaskThrows", [](Sim& sim) {
    Spawn(sim.scheduler(), []() -> Co<void> {
      co_await Yield();
      throw std::runtime_error("boom from task");
    }()).Detach();
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("exception escaped detached task 1 spawned at testing/bad_body_sim_test.cc"));
  EXPECT_THAT(failures[0], HasSubstr("boom from task"));
}

TEST(BadBodyTest, BlockOnThatCanNeverFinishIsADeadlockReport) {
  std::vector<std::string> failures = RunBody("BadBody.BlockOnForever", [](Sim& sim) {
    Event never("never");
    absl::Status s = sim.scheduler().BlockOn([&]() -> Co<void> { co_await never.Wait(); }());
    EXPECT_TRUE(IsDeadlock(s)) << s;
    EXPECT_TRUE(s.ok()) << s.message();
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("deadlock: BlockOn(task 1"));
  EXPECT_THAT(failures[0], HasSubstr("waiting on Event 'never' at testing/bad_body_sim_test.cc"));
}

TEST(BadBodyTest, DetachedLivelockIsAStepBudgetReport) {
  std::vector<std::string> failures = RunBody(
      "BadBody.Livelock",
      [](Sim& sim) {
        Spawn(sim.scheduler(), []() -> Co<void> {
          for (;;) co_await Yield();
        }()).Detach();
      },
      {.iterations = 3, .max_steps = 10000});
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("exceeded the step budget of 10000 steps: a livelock"));
  EXPECT_THAT(failures[0], HasSubstr("task 1 spawned at testing/bad_body_sim_test.cc"));
}

TEST(BadBodyTest, SimFailFromATaskFailsTheSeedWithTheMessage) {
  std::vector<std::string> failures = RunBody("BadBody.SimFail", [](Sim& sim) {
    Spawn(sim.scheduler(), [&sim]() -> Co<void> {
      co_await Yield();
      if (sim.seed() == 1) sim.Fail("invariant broken on purpose");
    }).Detach();
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("failed on seed 1"));
  EXPECT_THAT(failures[0], HasSubstr("the test failed the run: invariant broken on purpose"));
}

TEST(BadBodyTest, DetachedTaskSleepingUntilTheEndOfTimeIsADeadlockNotAHang) {
  std::vector<std::string> failures = RunBody(
      "BadBody.SleepForever",
      [](Sim& sim) {
        Spawn(sim.scheduler(), []() -> Co<void> {
          co_await SleepUntil(Instant::max());
        }()).Detach();
      },
      {.iterations = 1});
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0], HasSubstr("deadlock: Run() ended with 1 task(s)"));
  EXPECT_THAT(failures[0], HasSubstr("waiting on Sleep at testing/bad_body_sim_test.cc"));
}

}  // namespace
}  // namespace simsched::testing
