// Tests of host ownership: every task spawned while a host's task runs
// belongs to the host, whichever spawn function made it, so a crash cancels
// it (and its frame's RAII runs) too.

#include "sim/host.h"

#include <chrono>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"
#include "sim/world.h"

namespace simsched {
namespace {

using namespace std::chrono_literals;

// Counts the frames destroyed (RAII in a cancelled frame runs).
struct Guard {
  explicit Guard(int& destroyed) : destroyed(&destroyed) {}
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() { ++*destroyed; }
  int* destroyed;
};

// Sleeps for a long time holding a guard; records whether it got to the end.
Co<void> Sleeper(int& destroyed, int& finished) {
  Guard guard(destroyed);
  co_await Sleep(10s);
  ++finished;
}

// A child spawned with plain Spawn (detached), which spawns a grandchild
// with SpawnLabeled through CurrentScheduler(), also detached.
Co<void> Child(int& destroyed, int& finished) {
  Guard guard(destroyed);
  SpawnLabeled(*CurrentScheduler(), TaskLabel("grandchild"), Sleeper(destroyed, finished))
      .Detach();
  co_await Sleep(10s);
  ++finished;
}

TEST(HostOwnershipTest, CrashCancelsGrandchildrenSpawnedWithPlainSpawn) {
  TestScheduler scheduler({.seed = 1});
  World world(scheduler);
  Host& host = **world.AddHost("a");
  int destroyed = 0;
  int finished = 0;
  ASSERT_TRUE(host.Spawn([&]() -> Co<void> {
    Guard guard(destroyed);
    Spawn(*CurrentScheduler(), Child(destroyed, finished)).Detach();
    co_await Sleep(10s);
    ++finished;
  }).ok());
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_EQ(host.TaskCount(), 3u);  // the root, its child and its grandchild
  EXPECT_EQ(scheduler.LiveTaskCount(), 3u);

  host.Crash();
  EXPECT_EQ(destroyed, 3);  // every frame's RAII ran at the crash
  EXPECT_EQ(host.TaskCount(), 0u);
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(finished, 0);
}

TEST(HostOwnershipTest, HandlesHeldElsewhereSeeTheCancellation) {
  // A plain-code task awaits a task that a host task spawned: the crash
  // cancels it, and the awaiter sees TaskCancelledError, not a hang.
  TestScheduler scheduler({.seed = 2});
  World world(scheduler);
  Host& host = **world.AddHost("a");
  int destroyed = 0;
  int finished = 0;
  Task<void> escaped;
  ASSERT_TRUE(host.Spawn([&]() -> Co<void> {
    escaped = Spawn(*CurrentScheduler(), Sleeper(destroyed, finished));
    co_return;
  }).ok());
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_EQ(host.TaskCount(), 1u);
  host.Crash();
  EXPECT_TRUE(escaped.IsCancelled());
  EXPECT_EQ(destroyed, 1);
  EXPECT_THROW((void)scheduler.BlockOn(Spawn(scheduler, [&]() -> Co<void> {
                 co_await escaped;
               })),
               TaskCancelledError);
}

TEST(HostOwnershipTest, TasksFromPlainCodeAndOtherHostsAreNotTaken) {
  TestScheduler scheduler({.seed = 3});
  World world(scheduler);
  Host& a = **world.AddHost("a");
  Host& b = **world.AddHost("b");
  int destroyed = 0;
  int finished = 0;
  // From plain code: no host's.
  Spawn(scheduler, Sleeper(destroyed, finished)).Detach();
  // A task of `a` starting work on `b` with b.Spawn: b's, not a's.
  ASSERT_TRUE(a.Spawn([&]() -> Co<void> {
    EXPECT_TRUE(b.Spawn(Sleeper(destroyed, finished)).ok());
    co_return;
  }).ok());
  ASSERT_TRUE(scheduler.RunUntilIdle().ok());
  EXPECT_EQ(a.TaskCount(), 0u);
  EXPECT_EQ(b.TaskCount(), 1u);
  a.Crash();
  EXPECT_EQ(destroyed, 0);
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(finished, 2);
}

TEST(HostOwnershipTest, AGrandchildMayCrashItsOwnHost) {
  TestScheduler scheduler({.seed = 4});
  World world(scheduler);
  Host& host = **world.AddHost("a");
  int destroyed = 0;
  int finished = 0;
  int boots = 0;
  host.OnBoot([&](Host& h) {
    ++boots;
    if (boots > 1) return;  // the restarted incarnation idles
    ASSERT_TRUE(h.Spawn([&]() -> Co<void> {
      Guard guard(destroyed);
      Spawn(*CurrentScheduler(), [&]() -> Co<void> {
        Spawn(*CurrentScheduler(), Sleeper(destroyed, finished)).Detach();
        Guard inner(destroyed);
        co_await Sleep(1s);
        h.Crash();  // from the host's own (grand)child task
        co_await Sleep(1s);
        ++finished;  // never: the crash cancelled this task too
      }).Detach();
      co_await Sleep(10s);
      ++finished;
    }).ok());
  });
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_FALSE(host.IsUp());
  EXPECT_EQ(destroyed, 3);
  EXPECT_EQ(finished, 0);
  EXPECT_EQ(scheduler.LiveTaskCount(), 0u);
  ASSERT_TRUE(host.Restart().ok());
  EXPECT_EQ(boots, 2);
}

TEST(HostOwnershipTest, CancelTaskOfAnUnknownTaskIsFalse) {
  TestScheduler scheduler({.seed = 5});
  EXPECT_FALSE(scheduler.CancelTask(TaskId{42}));
  Task<void> task = Spawn(scheduler, []() -> Co<void> { co_await Sleep(1s); });
  EXPECT_TRUE(scheduler.CancelTask(task.id()));
  EXPECT_TRUE(task.IsCancelled());
  EXPECT_FALSE(scheduler.CancelTask(task.id()));
}

}  // namespace
}  // namespace simsched
