#include "scheduler/event.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;

TEST(EventTest, WaitSuspendsUntilSet) {
  TestScheduler s;
  Event ready("ready");
  bool passed = false;
  Spawn(s, [&]() -> Co<void> {
    co_await ready.Wait();
    passed = true;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_FALSE(passed);
  EXPECT_EQ(ready.WaiterCount(), 1u);
  ready.Set();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(passed);
  EXPECT_EQ(ready.WaiterCount(), 0u);
}

TEST(EventTest, WaitOnASetEventDoesNotSuspendUntilReset) {
  TestScheduler s;
  Event event;
  event.Set();
  int passes = 0;
  auto waiter = [&]() -> Co<void> {
    co_await event.Wait();
    ++passes;
  };
  ASSERT_TRUE(s.BlockOn(waiter()).ok());
  EXPECT_EQ(passes, 1);
  EXPECT_EQ(s.step_count(), 1u) << "no suspension";
  event.Reset();
  EXPECT_FALSE(event.IsSet());
  Spawn(s, waiter()).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(passes, 1);
  event.Set();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(passes, 2);
}

TEST(EventTest, SetReleasesWaitersOldestFirst) {
  TestScheduler s({.randomize_order = false});
  Event event;
  std::vector<int> order;
  for (int i = 0; i < 4; ++i) {
    Spawn(s, [&, i]() -> Co<void> {
      co_await event.Wait();
      order.push_back(i);
    }).Detach();
  }
  ASSERT_TRUE(s.RunUntilIdle().ok());
  event.Set();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3));
}

TEST(EventTest, NotifyOneReleasesOneWaiterWithoutSetting) {
  TestScheduler s;
  Event event;
  int released = 0;
  for (int i = 0; i < 3; ++i) {
    Spawn(s, [&]() -> Co<void> {
      co_await event.Wait();
      ++released;
    }).Detach();
  }
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(event.NotifyOne());
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(released, 1);
  EXPECT_FALSE(event.IsSet());
  EXPECT_EQ(event.WaiterCount(), 2u);
  event.Set();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(released, 3);
  EXPECT_FALSE(event.NotifyOne()) << "nobody left to notify";
}

TEST(EventTest, CancelledWaiterIsRemovedAndNeverWoken) {
  TestScheduler s;
  Event event;
  int released = 0;
  Task<void> doomed = Spawn(s, [&]() -> Co<void> {
    co_await event.Wait();
    ++released;
  });
  Spawn(s, [&]() -> Co<void> {
    co_await event.Wait();
    ++released;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  ASSERT_EQ(event.WaiterCount(), 2u);
  doomed = Task<void>();
  EXPECT_EQ(event.WaiterCount(), 1u);
  event.Set();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_EQ(released, 1);
}

TEST(EventTest, DeadlockReportNamesTheEventAndTheWaitSite) {
  TestScheduler s;
  Event never("config-loaded");
  Task<void> waiter = Spawn(s, [&]() -> Co<void> { co_await never.Wait(); });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Event 'config-loaded' at .*event_test.cc:[0-9]+"));
}

TEST(EventTest, EventDestroyedWithWaitersLeavesThemWaiting) {
  TestScheduler s;
  Task<void> waiter;
  {
    Event event("short-lived");
    waiter = Spawn(s, [&]() -> Co<void> { co_await event.Wait(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
  }
  EXPECT_FALSE(waiter.IsFinished());
  waiter = Task<void>();  // the awaiter's destructor must not touch the dead event
}

// Regression: a waiter released by Set(), whose event is then destroyed and
// whose task is cancelled before it runs, must not touch the dead event.
TEST(EventTest, ReleasedWaiterCancelledAfterTheEventIsGoneDoesNotTouchIt) {
  TestScheduler s;
  auto event = std::make_unique<Event>("doomed");
  Task<void> waiter = Spawn(s, [ev = event.get()]() -> Co<void> { co_await ev->Wait(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  event->Set();    // releases the waiter: queued, not yet run
  event.reset();   // the event goes away
  waiter = Task<void>();  // cancel: the awaiter's destructor runs now
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

uint64_t EventScenarioHash(uint64_t seed) {
  TestScheduler s({.seed = seed});
  Event go("go"), done("done");
  int finished = 0;
  for (int i = 0; i < 5; ++i) {
    Spawn(s, [&]() -> Co<void> {
      co_await go.Wait();
      co_await Yield();
      if (++finished == 5) done.Set();
    }).Detach();
  }
  Spawn(s, [&]() -> Co<void> {
    while (go.WaiterCount() < 5) co_await Yield();
    go.Set();
    go.Reset();  // waiters already released stay released
    co_await done.Wait();
  }).Detach();
  EXPECT_TRUE(s.Run().ok());
  EXPECT_EQ(finished, 5);
  return s.TraceHash();
}

TEST(EventTest, SetResetWaitIsDeterministicPerSeed) {
  std::vector<uint64_t> hashes;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const uint64_t hash = EventScenarioHash(seed);
    EXPECT_EQ(hash, EventScenarioHash(seed)) << "seed " << seed;
    hashes.push_back(hash);
  }
  std::sort(hashes.begin(), hashes.end());
  EXPECT_GT(std::unique(hashes.begin(), hashes.end()) - hashes.begin(), 10);
}

}  // namespace
}  // namespace simsched
