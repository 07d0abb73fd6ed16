// CloudSimulatedScheduler: which session a task belongs to, determinism,
// lifetime and what the decorator forwards. Cleanup validation and WaitUntil
// have their own files (cloud_simulated_scheduler_*_test.cc).

#include "session/cloud_simulated_scheduler.h"

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/executor.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "session/execution_context.h"
#include "session/internal/testing/session_fixture.h"
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
using internal::SetOnDestroy;
using internal::Sim;
using internal::StartRequest;

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
