// CloudSimulatedScheduler: cleanup validation when a response is sent (what
// a leak report names) and the EXPECT/ASSERT_SESSION_CLEAN macros.

#include "session/cloud_simulated_scheduler.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/execution_context.h"
#include "session/internal/testing/session_fixture.h"
#include "session/session_test_helpers.h"

namespace simsched {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using internal::SetOnDestroy;
using internal::Sim;
using internal::StartRequest;

// -- Cleanup validation --

TEST(CloudSimulatedSchedulerTest, SessionWhoseTasksAllFinishedBeforeTheResponseIsClean) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    Task<void> write =
        Spawn(*CurrentScheduler(), []() -> Co<void> { co_await Sleep(milliseconds(3)); });
    co_await Sleep(milliseconds(1));
    co_await write;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_TRUE(sim.cloud->ValidateSessionCleanup(ctx.session()).ok());
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, TaskRunningAtTheResponseIsReportedWithItsSpawnAndWaitSites) {
  Sim sim(/*seed=*/5);
  ExecutionContext ctx = sim.NewSession();
  int spawn_line = 0;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    auto slow = []() -> Co<void> { co_await Sleep(seconds(2)); };
    spawn_line = __LINE__ + 1;
    Task<void> leak = ctx.SpawnLabeled(TaskLabel("leaky"), slow);
    co_await Sleep(milliseconds(5));
    leak.Detach();  // the bug: nobody waits for it
  });
  ASSERT_TRUE(sim.test->Run().ok());
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(status.message());
  EXPECT_THAT(message,
              ContainsRegex(absl::StrCat(
                  "^session 1 did not clean up: its response was sent at \\+5ms, and 1 task not "
                  "handed to WaitUntil ran past it: task [0-9]+ \"leaky\" spawned at "
                  "[^ ]*session/cloud_simulated_scheduler_cleanup_test.cc:",
                  spawn_line, " \\(operator\\(\\)\\)\\. Production would kill it mid-way\\.\n")));
  EXPECT_THAT(message,
              ContainsRegex(absl::StrCat("task [0-9]+ \"leaky\" \\(session 1\\) spawned at "
                                         "[^ ]*session/cloud_simulated_scheduler_cleanup_test.cc:",
                                         spawn_line, " ")));
  EXPECT_THAT(message, ContainsRegex("outlived the response without WaitUntil: it was waiting "
                                     "on Sleep at [^ ]*cloud_simulated_scheduler_cleanup_test.cc:[0-9]+"));
  // It finished later, on its own, but production would have killed it.
  EXPECT_THAT(message, ContainsRegex("when the response was sent \\(\\+5ms, step [0-9]+\\); it "
                                     "finished later, at \\+2s, step [0-9]+"));
  EXPECT_THAT(message, HasSubstr("seed 5"));
}

TEST(CloudSimulatedSchedulerTest, LeakStillRunningAtValidationSaysWhereItIsSuspendedNow) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  Event never("never-set");
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    ctx.Spawn([&]() -> Co<void> { co_await never.Wait(); }).Detach();
    co_return;
  });
  ASSERT_TRUE(sim.test->RunUntilIdle().ok());
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("it is still running: waiting on Event 'never-set' at "
                            "[^ ]*cloud_simulated_scheduler_cleanup_test.cc:[0-9]+"));
}

TEST(CloudSimulatedSchedulerTest, TaskSpawnedIntoTheSessionAfterItsResponseIsReported) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    ctx.SpawnLabeled(TaskLabel("late-spawner"),
                     []() -> Co<void> {
                       co_await Sleep(milliseconds(10));
                       Spawn(*CurrentScheduler(), []() -> Co<void> {
                         co_await Sleep(milliseconds(1));
                       }).Detach();
                     })
        .Detach();
    co_return;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_THAT(std::string(status.message()), HasSubstr("2 tasks not handed to WaitUntil ran past it: task "));
  EXPECT_THAT(std::string(status.message()), ContainsRegex("\"late-spawner\" \\(session 1\\)"));
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("was spawned after the response \\(\\+10ms, step [0-9]+\\), outside "
                            "WaitUntil work; it finished later, at \\+11ms"));
}

TEST(CloudSimulatedSchedulerTest, TheTaskThatCallsEndIsNotALeakButTheRestStillRunningAre) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  absl::Status ended;
  Task<void> handler = ctx.Spawn([&]() -> Co<void> {
    ctx.SpawnLabeled(TaskLabel("straggler"), []() -> Co<void> { co_await Sleep(seconds(1)); })
        .Detach();
    ended = ctx.End();  // responds itself, then returns
    co_return;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  ASSERT_TRUE(ended.ok()) << ended;
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_THAT(std::string(status.message()), HasSubstr("1 task not handed to WaitUntil ran past it: task "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"straggler\""));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(handler.metadata().DebugString())));
}

TEST(CloudSimulatedSchedulerTest, ValidatingASessionThatHasNotEndedReportsItsRunningTasks) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  Task<void> handler = ctx.Spawn([]() -> Co<void> { co_await Sleep(seconds(1)); });
  ASSERT_TRUE(sim.test->RunUntilIdle().ok());
  absl::Status status = sim.cloud->ValidateSessionCleanup(ctx.session());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("^session 1 did not clean up: it has not ended "
                            "\\(ExecutionContext::End\\(\\) was not called\\) and has 1 task "
                            "still running that was not handed to WaitUntil: task [0-9]+ "
                            "spawned at [^ ]+:[0-9]+ \\(TestBody\\)\\.\n"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("is still running without WaitUntil: waiting on Sleep"));
  ASSERT_TRUE(sim.test->BlockOn(handler).ok());
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session()) << "nothing runs any more";
}

TEST(CloudSimulatedSchedulerTest, CancelledTasksCountAsFinished) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  bool dropped_frame_gone = false;
  bool cancelled_frame_gone = false;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    {
      Event started("started");
      Task<void> dropped = ctx.Spawn([&]() -> Co<void> {
        SetOnDestroy guard{&dropped_frame_gone};
        started.Set();
        co_await Sleep(hours(1));
      });
      co_await started.Wait();
    }  // dropping the handle cancels it
    Task<void> cancelled = ctx.Spawn([&]() -> Co<void> {
      SetOnDestroy guard{&cancelled_frame_gone};
      co_await Sleep(hours(1));
    });
    co_await Sleep(milliseconds(1));
    cancelled.Cancel();
    EXPECT_TRUE(cancelled.IsCancelled());
  });
  ASSERT_TRUE(sim.test->Run().ok());
  EXPECT_TRUE(dropped_frame_gone);
  EXPECT_TRUE(cancelled_frame_gone);
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
  EXPECT_LT(sim.test->Elapsed(), hours(1));
}

// -- gtest helpers --

std::shared_ptr<CloudSimulatedScheduler>* leaky_cloud = nullptr;
SessionId leaky_session;

TEST(CloudSimulatedSchedulerTest, SessionCleanMacrosPutTheOffendersInTheFailureMessage) {
  Sim sim;
  ExecutionContext leaky = sim.NewSession();
  ExecutionContext clean = sim.NewSession();
  StartRequest(*sim.cloud, leaky, [&]() -> Co<void> {
    leaky.SpawnLabeled(TaskLabel("forgotten"), []() -> Co<void> { co_await Sleep(seconds(1)); })
        .Detach();
    co_return;
  });
  StartRequest(*sim.cloud, clean, []() -> Co<void> { co_return; });
  ASSERT_TRUE(sim.test->Run().ok());

  EXPECT_SESSION_CLEAN(sim.cloud, clean.session());
  ASSERT_SESSION_CLEAN(*sim.cloud, clean.session());
  EXPECT_TRUE(SessionIsClean(*sim.cloud, clean.session()));
  EXPECT_FALSE(SessionIsClean(*sim.cloud, leaky.session()));

  EXPECT_NONFATAL_FAILURE(EXPECT_SESSION_CLEAN(sim.cloud, leaky.session()),
                          "\"forgotten\" (session 1) spawned at");
  leaky_cloud = &sim.cloud;
  leaky_session = leaky.session();
  EXPECT_FATAL_FAILURE(ASSERT_SESSION_CLEAN(*leaky_cloud, leaky_session),
                       "session 1 (leaky_session) of cloud scheduler *leaky_cloud did not clean "
                       "up: its response was sent at");
  leaky_cloud = nullptr;
}

// The macros' failure opens with one sentence a person reads first: which
// session of which scheduler, what went wrong, and which tasks.
TEST(CloudSimulatedSchedulerTest, SessionCleanMacrosOpenWithASentenceNamingSessionSchedulerAndTasks) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  ctx.End().IgnoreError();
  ExecutionContext upload_ctx = sim.NewSession();
  int spawn_line = 0;
  StartRequest(*sim.cloud, upload_ctx, [&]() -> Co<void> {
    spawn_line = __LINE__ + 1;
    upload_ctx.SpawnLabeled("upload", []() -> Co<void> { co_await Sleep(seconds(1)); })
        .Detach();
    upload_ctx.Spawn([]() -> Co<void> { co_await Sleep(seconds(2)); }).Detach();
    co_return;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    EXPECT_SESSION_CLEAN(sim.cloud, upload_ctx.session());
    EXPECT_SESSION_CLEAN(sim.cloud, SessionId{99});
  }
  ASSERT_EQ(failures.size(), 2);
  const std::string message = failures.GetTestPartResult(0).message();
  const std::string first_line = message.substr(0, message.find('\n'));
  EXPECT_EQ(first_line,
            absl::StrCat("session 2 (upload_ctx.session()) of cloud scheduler sim.cloud did not "
                         "clean up: its response was sent at +0s, and 2 tasks not handed to "
                         "WaitUntil ran past it: task 4 \"upload\" spawned at "
                         "session/cloud_simulated_scheduler_cleanup_test.cc:",
                         spawn_line, " (operator()) and task 5 spawned at "
                         "session/cloud_simulated_scheduler_cleanup_test.cc:",
                         spawn_line + 2, " (operator()). Production would kill them mid-way."));
  // An unknown session reads the same way.
  EXPECT_THAT(failures.GetTestPartResult(1).message(),
              HasSubstr("session 99 (SessionId{99}) of cloud scheduler sim.cloud was not created "
                        "by this CloudSimulatedScheduler"));
}

}  // namespace
}  // namespace simsched
