// CloudSimulatedScheduler: WaitUntil, the grace period, and the clear errors
// of bad ids, double ends and WaitUntil on tasks it cannot take.

#include "session/cloud_simulated_scheduler.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/testing/forwarding_scheduler.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/execution_context.h"
#include "session/internal/testing/session_fixture.h"
#include "session/session_test_helpers.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using internal::SetOnDestroy;
using internal::Sim;
using internal::StartRequest;

// -- WaitUntil and the grace period --

TEST(CloudSimulatedSchedulerTest, WaitUntilLetsATaskOutliveTheResponse) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  bool refreshed = false;
  absl::Status wait_until;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    Task<void> refresh = ctx.Spawn([&]() -> Co<void> {
      co_await Sleep(seconds(10));
      refreshed = true;
    });
    wait_until = ctx.WaitUntil(std::move(refresh));
    EXPECT_FALSE(refresh) << "WaitUntil takes the task";
    co_return;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  ASSERT_TRUE(wait_until.ok()) << wait_until;
  EXPECT_TRUE(refreshed);
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, WaitUntilOfACoroutineSpawnsItAsWaitUntilWork) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  bool refreshed = false;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    absl::Status status = ctx.WaitUntil([&]() -> Co<void> {
      co_await Sleep(seconds(1));
      refreshed = true;
    });
    EXPECT_TRUE(status.ok()) << status;
    co_return;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_TRUE(refreshed);
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, WaitUntilCoversWhatTheWaitUntilWorkSpawnsBeforeAndAfter) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  int finished = 0;
  Event spawned_first("spawned-first");
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    Task<void> work = ctx.Spawn([&]() -> Co<void> {
      // Spawned before the handler hands `work` to WaitUntil...
      Spawn(*CurrentScheduler(), [&]() -> Co<void> {
        co_await Sleep(seconds(2));
        ++finished;
      }).Detach();
      spawned_first.Set();
      co_await Sleep(seconds(1));
      // ...and after.
      Spawn(*CurrentScheduler(), [&]() -> Co<void> {
        co_await Sleep(seconds(2));
        ++finished;
      }).Detach();
    });
    co_await spawned_first.Wait();
    EXPECT_TRUE(ctx.WaitUntil(std::move(work)).ok());
  });
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_EQ(finished, 2);
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, GracePeriodCutsOffSlowWaitUntilWorkAndReportsIt) {
  Sim sim(/*seed=*/3);
  ExecutionContext ctx = sim.NewSession();
  bool frame_gone = false;
  bool completed = false;
  int spawn_line = 0;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    co_await Sleep(milliseconds(7));
    spawn_line = __LINE__ + 1;
    Task<void> slow = ctx.SpawnLabeled(TaskLabel("slow-sync"), [&]() -> Co<void> {
      SetOnDestroy guard{&frame_gone};
      co_await Sleep(seconds(40));
      completed = true;
    });
    EXPECT_TRUE(ctx.WaitUntil(std::move(slow)).ok());
  });
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_EQ(ctx.grace_period(), seconds(30)) << "the default, as on Workers";
  EXPECT_TRUE(frame_gone);
  EXPECT_FALSE(completed);
  EXPECT_EQ(sim.test->Elapsed(), milliseconds(7) + seconds(30))
      << "cut off when the grace period ran out, not left to run 40s";
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex(absl::StrCat("task [0-9]+ \"slow-sync\" \\(session 1\\) spawned at "
                                         "[^ ]*cloud_simulated_scheduler_wait_until_test.cc:",
                                         spawn_line, " ")));
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("WaitUntil work cancelled when the 30s grace period ran out "
                            "\\(\\+30007ms, step [0-9]+\\): it was waiting on Sleep at "
                            "[^ ]*cloud_simulated_scheduler_wait_until_test.cc:[0-9]+"));
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("^session 1 did not clean up: its response was sent at \\+7ms, and 1 "
                            "task of its WaitUntil work outlasted the 30s grace period: task "
                            "[0-9]+ \"slow-sync\" spawned at [^ ]+:[0-9]+ \\(operator\\(\\)\\)"
                            "\\. Production would kill it mid-way\\."));
}

TEST(CloudSimulatedSchedulerTest, GracePeriodIsConfigurable) {
  for (const auto& [work, cut_off] : {std::pair{seconds(3), false}, std::pair{seconds(10), true}}) {
    Sim sim(/*seed=*/1, {.grace_period = seconds(5)});
    ExecutionContext ctx = sim.NewSession();
    StartRequest(*sim.cloud, ctx, [&, work = work]() -> Co<void> {
      EXPECT_TRUE(ctx.WaitUntil([work]() -> Co<void> { co_await Sleep(work); }).ok());
      co_return;
    });
    ASSERT_TRUE(sim.test->Run().ok());
    absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
    if (cut_off) {
      EXPECT_THAT(std::string(status.message()), HasSubstr("the 5s grace period ran out (+5s"));
      EXPECT_EQ(sim.test->Elapsed(), seconds(5));
    } else {
      EXPECT_TRUE(status.ok()) << status;
    }
  }
}

// -- Errors --

TEST(CloudSimulatedSchedulerTest, UnknownSessionIdsAreClearErrors) {
  Sim sim;
  sim.cloud->CreateSession();
  absl::StatusOr<ExecutionContext> context = sim.cloud->Context(SessionId{42});
  EXPECT_EQ(context.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(context.status().message()),
              HasSubstr("session 42 was not created by this CloudSimulatedScheduler (it has "
                        "created sessions 1 to 1)"));
  absl::Status validate = sim.cloud->ValidateSessionCleanup(SessionId{42});
  EXPECT_EQ(validate.code(), absl::StatusCode::kNotFound);
  absl::Status zero = sim.cloud->ValidateSessionCleanup(SessionId{0});
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(zero.message()), HasSubstr("\"no session\""));
  EXPECT_EQ(sim.cloud->Context(SessionId{0}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CloudSimulatedSchedulerTest, EndingASessionTwiceIsAFailedPrecondition) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  sim.test->AdvanceClock(milliseconds(4));
  EXPECT_TRUE(ctx.End().ok());
  EXPECT_TRUE(ctx.ended());
  absl::Status again = ctx.End();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), HasSubstr("session 1 already ended at +4ms"));
}

TEST(CloudSimulatedSchedulerTest, WaitUntilOnAnotherSessionsTaskFailsAndLeavesTheTaskAlone) {
  Sim sim;
  ExecutionContext a = sim.NewSession();
  ExecutionContext b = sim.NewSession();
  Task<void> task_of_b = b.Spawn([]() -> Co<void> { co_await Sleep(seconds(1)); });
  absl::Status status = a.WaitUntil(std::move(task_of_b));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("which belongs to session 2"));
  ASSERT_TRUE(task_of_b) << "the caller keeps the task on error";
  EXPECT_FALSE(task_of_b.IsFinished());
  ASSERT_TRUE(sim.test->BlockOn(task_of_b).ok());
}

TEST(CloudSimulatedSchedulerTest, WaitUntilOnATaskOfNoSessionFails) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  Task<void> outside = Spawn(*sim.cloud, []() -> Co<void> { co_return; });
  absl::Status status = ctx.WaitUntil(std::move(outside));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("which belongs to no session"));
}

// The same refusal for a suspended task that a no-session task spawned (it
// inherits "no session"): the caller keeps it, it is not adopted by the
// session (ending the session and its grace period leave it alone), and it
// runs to its end.
TEST(CloudSimulatedSchedulerTest, WaitUntilOnASuspendedTaskOfNoSessionFailsAndLeavesItAlone) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  Task<Task<int>> spawner = Spawn(*sim.cloud, []() -> Co<Task<int>> {
    co_return Spawn(*CurrentScheduler(), []() -> Co<int> {
      co_await Sleep(seconds(60));
      co_return 5;
    });
  });
  absl::StatusOr<Task<int>> spawned = sim.test->BlockOn(spawner);
  ASSERT_TRUE(spawned.ok()) << spawned.status();
  Task<int> outside = std::move(*spawned);
  ASSERT_TRUE(sim.test->RunUntilIdle().ok());
  absl::Status status = ctx.WaitUntil(std::move(outside));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("which belongs to no session"));
  ASSERT_TRUE(outside) << "the caller keeps the task on error";
  ASSERT_TRUE(ctx.End().ok());
  absl::StatusOr<int> result = sim.test->BlockOn(outside);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 5);
  EXPECT_TRUE(sim.cloud->ValidateSessionCleanup(ctx.session()).ok());
}

TEST(CloudSimulatedSchedulerTest, WaitUntilOnAnEmptyTaskFails) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  absl::Status status = ctx.WaitUntil(Task<void>());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("empty Task"));
}

TEST(CloudSimulatedSchedulerTest, WaitUntilOnATaskSpawnedOnTheInnerSchedulerFails) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  absl::Status status;
  Task<void> handler = ctx.Spawn([&]() -> Co<void> {
    // Has the session (copied from this task) but bypasses the decorator.
    Task<void> bypass = Spawn(*sim.test, []() -> Co<void> { co_return; });
    status = ctx.WaitUntil(std::move(bypass));
    co_return;
  });
  ASSERT_TRUE(sim.test->BlockOn(handler).ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("not spawned through this CloudSimulatedScheduler"));
}

TEST(CloudSimulatedSchedulerTest, WaitUntilAfterTheGracePeriodFailsAndStartsNothing) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  ASSERT_TRUE(ctx.End().ok());
  ASSERT_TRUE(sim.test->Run().ok());  // the grace period runs out
  bool started = false;
  absl::Status for_co = ctx.WaitUntil([&]() -> Co<void> {
    started = true;
    co_return;
  });
  EXPECT_EQ(for_co.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(for_co.message()),
              HasSubstr("grace period (30s after its response) is over"));
  Task<void> late = ctx.Spawn([]() -> Co<void> { co_return; });
  absl::Status for_task = ctx.WaitUntil(std::move(late));
  EXPECT_EQ(for_task.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(late);
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_FALSE(started);
}

// A production-like scheduler: forwards to a TestScheduler but is not one.
using internal::ForwardingScheduler;

TEST(CloudSimulatedSchedulerTest, ValidationNeedsTheTestScheduler) {
  auto test = TestScheduler::Create();
  auto cloud = CloudSimulatedScheduler::Create(std::make_shared<ForwardingScheduler>(test));
  EXPECT_EQ(cloud->test_scheduler(), nullptr);
  const SessionId session = cloud->CreateSession();
  absl::Status status = cloud->ValidateSessionCleanup(session);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("ValidateSessionCleanup needs the TestScheduler"));
}

TEST(CloudSimulatedSchedulerTest, OverAnotherSchedulerTheGraceStillCutsOffAndRecordsAreReleased) {
  auto test = TestScheduler::Create();
  auto cloud = CloudSimulatedScheduler::Create(std::make_shared<ForwardingScheduler>(test));
  bool completed = false;
  ExecutionContext ctx = *cloud->Context(cloud->CreateSession());
  StartRequest(*cloud, ctx, [&]() -> Co<void> {
    EXPECT_TRUE(ctx.WaitUntil([&]() -> Co<void> {
                     co_await Sleep(seconds(31));
                     completed = true;
                   })
                    .ok());
    co_return;
  });
  EXPECT_EQ(cloud->tracked_session_count(), 1u);
  ASSERT_TRUE(test->Run().ok());
  EXPECT_FALSE(completed);
  EXPECT_EQ(test->Elapsed(), seconds(30));
  EXPECT_EQ(cloud->tracked_session_count(), 0u) << "no record kept where nothing can validate";
  EXPECT_TRUE(ctx.ended());
  absl::Status again = ctx.End();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), HasSubstr("has already ended"));
}

}  // namespace
}  // namespace simsched
