#include "session/cloud_simulated_scheduler.h"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/executor.h"
#include "scheduler/internal/testing/forwarding_scheduler.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/execution_context.h"
#include "session/session_test_helpers.h"

namespace simsched {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A TestScheduler with a CloudSimulatedScheduler over it.
struct Sim {
  explicit Sim(uint64_t seed = 1, CloudSchedulerOptions options = {})
      : test(TestScheduler::Create({.seed = seed})),
        cloud(CloudSimulatedScheduler::Create(test, options)) {}

  ExecutionContext NewSession() { return *cloud->Context(cloud->CreateSession()); }

  std::shared_ptr<TestScheduler> test;
  std::shared_ptr<CloudSimulatedScheduler> cloud;
};

// The server side of one request, running in no session: runs `handler` (a
// callable returning Co<void>) as the session's root task, then sends the
// response. `ended` gets End()'s status; without it, End() must succeed.
template <typename F>
Co<void> ServeRequest(ExecutionContext ctx, F handler, absl::Status* ended) {
  co_await ctx.Spawn(std::move(handler));
  absl::Status status = ctx.End();
  if (ended != nullptr) {
    *ended = status;
  } else {
    EXPECT_TRUE(status.ok()) << status;
  }
}

template <typename F>
void StartRequest(CloudSimulatedScheduler& cloud, ExecutionContext ctx, F handler,
                  absl::Status* ended = nullptr) {
  Spawn(cloud, ServeRequest(ctx, std::move(handler), ended)).Detach();
}

// Sets a flag when destroyed: shows a task's frame was torn down.
struct SetOnDestroy {
  bool* flag;
  ~SetOnDestroy() { *flag = true; }
};

// -- Attribution --

TEST(CloudSimulatedSchedulerTest, TasksSpawnedBySessionTasksInheritTheSessionAcrossNestedSpawns) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();
  std::vector<std::optional<SessionId>> seen;
  StartRequest(*sim.cloud, ctx, [&]() -> Co<void> {
    Task<void> child = Spawn(*CurrentScheduler(), [&]() -> Co<void> {
      Task<void> grandchild = Spawn(*CurrentScheduler(), [&]() -> Co<void> {
        Task<int> great = Spawn(*CurrentScheduler(), []() -> Co<int> { co_return 1; });
        seen.push_back(great.metadata().session);
        co_await great;
      });
      seen.push_back(grandchild.metadata().session);
      co_await grandchild;
    });
    seen.push_back(child.metadata().session);
    co_await child;
  });
  ASSERT_TRUE(sim.test->Run().ok());
  ASSERT_EQ(seen.size(), 3u);
  for (const std::optional<SessionId>& session : seen) EXPECT_EQ(session, ctx.session());
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, TasksSpawnedOutsideAnySessionBelongToNone) {
  Sim sim;
  ExecutionContext ctx = sim.NewSession();  // exists, but nothing below is in it
  std::optional<SessionId> nested = SessionId{99};
  Task<void> outside = Spawn(*sim.cloud, [&]() -> Co<void> {
    Task<void> child = Spawn(*CurrentScheduler(), []() -> Co<void> { co_return; });
    nested = child.metadata().session;
    co_await child;
  });
  EXPECT_EQ(outside.metadata().session, std::nullopt);
  ASSERT_TRUE(sim.test->BlockOn(outside).ok());
  EXPECT_EQ(nested, std::nullopt);
  EXPECT_SESSION_CLEAN(sim.cloud, ctx.session());
}

TEST(CloudSimulatedSchedulerTest, RootSpawnedFromAnotherSessionsTaskBelongsToTheGivenSession) {
  Sim sim;
  ExecutionContext a = sim.NewSession();
  ExecutionContext b = sim.NewSession();
  std::optional<SessionId> via_context, via_plain_spawn, inside_b;
  Task<void> task_of_a = a.Spawn([&]() -> Co<void> {
    Task<void> root_of_b = b.Spawn([&]() -> Co<void> {
      Task<void> child = Spawn(*CurrentScheduler(), []() -> Co<void> { co_return; });
      inside_b = child.metadata().session;
      co_await child;
    });
    via_context = root_of_b.metadata().session;
    Task<void> plain = Spawn(*CurrentScheduler(), []() -> Co<void> { co_return; });
    via_plain_spawn = plain.metadata().session;
    co_await root_of_b;
    co_await plain;
  });
  ASSERT_TRUE(sim.test->BlockOn(task_of_a).ok());
  EXPECT_EQ(via_context, b.session());
  EXPECT_EQ(inside_b, b.session());
  EXPECT_EQ(via_plain_spawn, a.session());
}

// Records, at every spawn, whether the child got the spawning task's session.
struct Attribution {
  int checked = 0;
  std::vector<std::string> wrong;

  void Check(const TaskMetadata& child, SessionId expected) {
    ++checked;
    if (child.session != expected) {
      wrong.push_back(absl::StrCat(child.DebugString(), " should be in session ", expected.value));
    }
  }
};

// Spawns a binary tree of tasks of the given depth through CurrentScheduler(),
// yielding and sleeping so that many sessions interleave.
Co<void> FanOut(TestScheduler& test, Attribution& attribution, SessionId expected, int depth) {
  co_await Yield();
  if (depth == 0) {
    co_await Sleep(microseconds(test.rng().InRange(1, 200)));
    co_return;
  }
  std::vector<Task<void>> children;
  for (int i = 0; i < 2; ++i) {
    children.push_back(Spawn(*CurrentScheduler(), FanOut(test, attribution, expected, depth - 1)));
    attribution.Check(children.back().metadata(), expected);
    co_await Yield();
  }
  for (Task<void>& child : children) co_await child;
}

TEST(CloudSimulatedSchedulerTest, HundredInterleavedSessionsAttributeEveryTaskToItsOwnSession) {
  const TaskLabel planted("planted-leak");
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Sim sim(seed);
    Attribution attribution;
    std::vector<SessionId> sessions;
    // A server loop creates sessions while earlier ones run, so "the session
    // created last" is rarely the one whose task is spawning.
    Spawn(*sim.cloud, [&]() -> Co<void> {
      for (int i = 0; i < 100; ++i) {
        ExecutionContext ctx = *sim.cloud->Context(sim.cloud->CreateSession());
        sessions.push_back(ctx.session());
        const bool leaks = i % 10 == 3;
        StartRequest(*sim.cloud, ctx, [&, ctx, leaks]() -> Co<void> {
          if (leaks) {
            ctx.SpawnLabeled(planted, []() -> Co<void> { co_await Sleep(seconds(1)); }).Detach();
          }
          co_await FanOut(*sim.test, attribution, ctx.session(), 3);
        });
        co_await Sleep(microseconds(sim.test->rng().InRange(0, 50)));
      }
    }).Detach();
    ASSERT_TRUE(sim.test->Run().ok());
    ASSERT_EQ(sessions.size(), 100u);
    EXPECT_EQ(attribution.checked, 100 * 14) << "seed " << seed;
    EXPECT_THAT(attribution.wrong, IsEmpty()) << "seed " << seed;
    for (int i = 0; i < 100; ++i) {
      absl::Status status = sim.cloud->ValidateSessionCleanup(sessions[i]);
      if (i % 10 != 3) {
        EXPECT_TRUE(status.ok()) << "seed " << seed << ": " << status;
        continue;
      }
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << "seed " << seed;
      // Exactly one offender, the planted task, attributed to this session.
      EXPECT_THAT(
          std::string(status.message()),
          ContainsRegex(absl::StrCat("session ", sessions[i].value,
                                         " did not clean up: its response was sent at [^ ]+, and "
                                         "1 task not handed to WaitUntil ran past it: ")));
      EXPECT_THAT(std::string(status.message()),
                  ContainsRegex(absl::StrCat("task [0-9]+ \"planted-leak\" \\(session ",
                                             sessions[i].value, "\\) spawned at")));
    }
  }
}

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
                  "[^ ]*session/cloud_simulated_scheduler_test.cc:",
                  spawn_line, " \\(operator\\(\\)\\)\\. Production would kill it mid-way\\.\n")));
  EXPECT_THAT(message,
              ContainsRegex(absl::StrCat("task [0-9]+ \"leaky\" \\(session 1\\) spawned at "
                                         "[^ ]*session/cloud_simulated_scheduler_test.cc:",
                                         spawn_line, " ")));
  EXPECT_THAT(message, ContainsRegex("outlived the response without WaitUntil: it was waiting "
                                     "on Sleep at [^ ]*cloud_simulated_scheduler_test.cc:[0-9]+"));
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
                            "[^ ]*cloud_simulated_scheduler_test.cc:[0-9]+"));
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
                                         "[^ ]*cloud_simulated_scheduler_test.cc:",
                                         spawn_line, " ")));
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("WaitUntil work cancelled when the 30s grace period ran out "
                            "\\(\\+30007ms, step [0-9]+\\): it was waiting on Sleep at "
                            "[^ ]*cloud_simulated_scheduler_test.cc:[0-9]+"));
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
                         "session/cloud_simulated_scheduler_test.cc:",
                         spawn_line, " (operator()) and task 5 spawned at "
                         "session/cloud_simulated_scheduler_test.cc:",
                         spawn_line + 2, " (operator()). Production would kill them mid-way."));
  // An unknown session reads the same way.
  EXPECT_THAT(failures.GetTestPartResult(1).message(),
              HasSubstr("session 99 (SessionId{99}) of cloud scheduler sim.cloud was not created "
                        "by this CloudSimulatedScheduler"));
}

// -- Determinism and lifetime --

std::string LeakReport(uint64_t seed) {
  Sim sim(seed);
  std::vector<SessionId> sessions;
  for (int i = 0; i < 20; ++i) {
    ExecutionContext ctx = sim.NewSession();
    sessions.push_back(ctx.session());
    StartRequest(*sim.cloud, ctx, [&sim, ctx]() -> Co<void> {
      for (int j = 0; j < 3; ++j) {
        ctx.Spawn([&sim]() -> Co<void> {
             co_await Sleep(microseconds(sim.test->rng().InRange(1, 100)));
           })
            .Detach();
      }
      co_await Sleep(microseconds(sim.test->rng().InRange(1, 100)));
    });
  }
  EXPECT_TRUE(sim.test->Run().ok());
  std::string reports;
  for (SessionId session : sessions) {
    absl::StrAppend(&reports, sim.cloud->ValidateSessionCleanup(session).ToString(), "\n");
  }
  return reports;
}

TEST(CloudSimulatedSchedulerTest, ReportsAreIdenticalForTheSameSeedAndDifferAcrossSeeds) {
  const std::string first = LeakReport(11);
  EXPECT_THAT(first, HasSubstr("did not clean up"));
  EXPECT_EQ(first, LeakReport(11));
  EXPECT_NE(first, LeakReport(12));
}

TEST(CloudSimulatedSchedulerTest, DestroyingItBeforeTheInnerSchedulerCancelsItsTasks) {
  auto test = TestScheduler::Create();
  bool frame_gone = false;
  {
    auto cloud = CloudSimulatedScheduler::Create(test);
    ExecutionContext ctx = *cloud->Context(cloud->CreateSession());
    StartRequest(*cloud, ctx, [&]() -> Co<void> {
      SetOnDestroy guard{&frame_gone};
      co_await Sleep(hours(1));
    });
    ASSERT_TRUE(test->RunUntilIdle().ok());
  }
  EXPECT_TRUE(frame_gone);
  EXPECT_EQ(test->LiveTaskCount(), 0u);
  EXPECT_TRUE(test->Run().ok()) << "leftover timers and queue entries touch nothing freed";
}

TEST(CloudSimulatedSchedulerTest, ForwardsTheSchedulerInterfaceToTheInnerScheduler) {
  std::set<uint64_t> step_counts;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Sim sim(seed);
    EXPECT_TRUE(sim.cloud->IsThreadConfined());
    bool on_main_thread = false;
    Task<void> task = Spawn(*sim.cloud, [&]() -> Co<void> {
      co_await SimulateRandomDelay(10);  // seed-chosen yields, through the decorator
      co_await Sleep(milliseconds(3));   // the inner scheduler's timers and clock
      Task<void> foreground = SpawnForeground(*CurrentScheduler(), [&]() -> Co<void> {
        on_main_thread = CurrentScheduler()->IsMainThread();
        co_return;
      });
      co_await foreground;
    });
    EXPECT_TRUE(sim.cloud->IsTaskRunning(task.id()));
    ASSERT_TRUE(BlockOn(*sim.cloud, task).ok());
    EXPECT_FALSE(sim.cloud->IsTaskRunning(task.id()));
    EXPECT_EQ(sim.cloud->Now(), Instant{} + milliseconds(3));
    EXPECT_TRUE(on_main_thread);
    step_counts.insert(sim.test->step_count());
  }
  EXPECT_GT(step_counts.size(), 1u) << "SimulateRandomDelay never yielded through the decorator";
}

TEST(CloudSimulatedSchedulerTest, SessionsListsEverySessionInIdOrder) {
  Sim sim;
  for (int i = 0; i < 3; ++i) sim.cloud->CreateSession();
  std::vector<SessionId> sessions = sim.cloud->Sessions();
  ASSERT_EQ(sessions.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(sessions[i].value, i + 1);
}

TEST(CloudSimulatedSchedulerTest, DeprioritizeReachesTheTestSchedulerThroughTheDecorator) {
  auto test = TestScheduler::Create({.seed = 5});
  auto cloud = CloudSimulatedScheduler::Create(test);
  const TaskLabel slow("cloud-slow");
  BackgroundExecutor(cloud).Deprioritize(slow);
  std::vector<char> order;
  SpawnLabeled(*cloud, slow, [&]() -> Co<void> {
    order.push_back('d');
    co_return;
  }).Detach();
  for (int i = 0; i < 4; ++i) {
    Spawn(*cloud, [&]() -> Co<void> {
      order.push_back('n');
      co_return;
    }).Detach();
  }
  ASSERT_TRUE(test->Run().ok());
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.back(), 'd');
}

// Issue 12: ForNewLane through the decorator used to add no lane and hand
// back lane 0, so every simulated client shared one main thread.
TEST(CloudSimulatedSchedulerTest, ForNewLaneAddsARealLaneThroughTheDecorator) {
  auto test = TestScheduler::Create({.seed = 5});
  auto cloud = CloudSimulatedScheduler::Create(test);
  ForegroundExecutor alice = ForegroundExecutor::ForNewLane(cloud, "alice");
  ForegroundExecutor bob = ForegroundExecutor::ForNewLane(cloud, "bob");
  EXPECT_EQ(alice.lane(), 1u);
  EXPECT_EQ(bob.lane(), 2u);
  EXPECT_EQ(test->LaneCount(), 3u);
  EXPECT_EQ(test->LaneName(bob.lane()), "bob");
  // Work spawned on each lane runs on that lane.
  std::vector<std::optional<LaneId>> lanes;
  for (const ForegroundExecutor& client : {alice, bob}) {
    client.Spawn([&]() -> Co<void> {
      lanes.push_back(test->CurrentLane());
      co_return;
    }).Detach();
  }
  ASSERT_TRUE(test->Run().ok());
  ASSERT_EQ(lanes.size(), 2u);
  EXPECT_NE(lanes[0], lanes[1]);
  EXPECT_TRUE(lanes[0].has_value() && *lanes[0] != 0);
}

}  // namespace
}  // namespace simsched
