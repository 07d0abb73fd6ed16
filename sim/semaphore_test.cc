#include "sim/semaphore.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/test_scheduler.h"

namespace simsched {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;

constexpr uint64_t kSeeds = 20;

TEST(SemaphoreTest, AcquireSuspendsUntilPermitsAreReleased) {
  TestScheduler s;
  Semaphore sem(0);
  bool acquired = false;
  Spawn(s, [&]() -> Co<void> {
    co_await sem.Acquire(2);
    acquired = true;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_FALSE(acquired);
  sem.Release(1);
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_FALSE(acquired) << "one permit is not enough";
  EXPECT_EQ(sem.available(), 1u);
  sem.Release(1);
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(acquired);
  EXPECT_EQ(sem.available(), 0u);
}

TEST(SemaphoreTest, BoundsConcurrency) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Semaphore sem(3, "slots");
    int in_flight = 0;
    int max_in_flight = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < 10; ++t) {
      tasks.push_back(Spawn(s, [&]() -> Co<void> {
        co_await sem.Acquire();
        max_in_flight = std::max(max_in_flight, ++in_flight);
        co_await Yield();
        co_await Yield();
        --in_flight;
        sem.Release();
      }));
    }
    for (Task<void>& task : tasks) ASSERT_TRUE(s.BlockOn(task).ok());
    EXPECT_LE(max_in_flight, 3) << "seed " << seed;
    EXPECT_EQ(sem.available(), 3u);
  }
}

TEST(SemaphoreTest, WaitersAreServedInOrderEvenWhenALaterOneWouldFit) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Semaphore sem(0);
    std::vector<int> order;
    Spawn(s, [&]() -> Co<void> {
      co_await sem.Acquire(3);
      order.push_back(1);
    }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Spawn(s, [&]() -> Co<void> {
      co_await sem.Acquire(1);
      order.push_back(2);
    }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    sem.Release(1);
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_TRUE(order.empty()) << "the 1-permit waiter must not pass the 3-permit one";
    EXPECT_FALSE(sem.TryAcquire(1)) << "nor may TryAcquire";
    sem.Release(2);
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_THAT(order, ElementsAre(1));
    sem.Release(1);
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_THAT(order, ElementsAre(1, 2)) << "seed " << seed;
  }
}

// Fairness seen from Acquire itself: a task arriving while others wait
// queues behind them even when enough permits are free for it, and equal
// requests are granted strictly in arrival order.
TEST(SemaphoreTest, NewAcquirerQueuesBehindWaitersAndGrantsFollowArrivalOrder) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Semaphore sem(0);
    std::vector<int> order;
    Spawn(s, [&]() -> Co<void> {
      co_await sem.Acquire(2);
      order.push_back(0);
    }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    sem.Release(1);  // one free permit, not enough for the head waiter
    for (int i = 1; i <= 3; ++i) {
      Spawn(s, [&, i]() -> Co<void> {
        co_await sem.Acquire(1);
        order.push_back(i);
      }).Detach();
      ASSERT_TRUE(s.RunUntilIdle().ok());
    }
    EXPECT_TRUE(order.empty()) << "a later Acquire(1) barged past the waiting Acquire(2)";
    EXPECT_EQ(sem.WaiterCount(), 4u);
    EXPECT_EQ(sem.available(), 1u);
    for (int i = 0; i < 4; ++i) {
      sem.Release(1);
      ASSERT_TRUE(s.RunUntilIdle().ok());
    }
    EXPECT_THAT(order, ElementsAre(0, 1, 2, 3)) << "seed " << seed;
  }
}

TEST(SemaphoreTest, ReleaseGrantsEveryWaiterThatFitsOldestFirst) {
  TestScheduler s;
  Semaphore sem(0);
  std::vector<int> granted;
  for (int i = 0; i < 4; ++i) {
    Spawn(s, [&, i]() -> Co<void> {
      co_await sem.Acquire(1);
      granted.push_back(i);
    }).Detach();
    ASSERT_TRUE(s.RunUntilIdle().ok());
  }
  sem.Release(3);
  EXPECT_EQ(sem.WaiterCount(), 1u) << "three granted at once";
  EXPECT_EQ(sem.available(), 0u);
  ASSERT_TRUE(s.RunUntilIdle().ok());
  std::sort(granted.begin(), granted.end());
  EXPECT_THAT(granted, ElementsAre(0, 1, 2));
}

TEST(SemaphoreTest, TryAcquireTakesFreePermitsOnly) {
  Semaphore sem(2);
  EXPECT_TRUE(sem.TryAcquire(2));
  EXPECT_FALSE(sem.TryAcquire(1));
  sem.Release(1);
  EXPECT_TRUE(sem.TryAcquire());
  EXPECT_TRUE(sem.TryAcquire(0));
  EXPECT_EQ(sem.available(), 0u);
}

TEST(SemaphoreTest, AcquireZeroCompletesAtOnce) {
  TestScheduler s;
  Semaphore sem(0);
  ASSERT_TRUE(s.BlockOn([&]() -> Co<void> { co_await sem.Acquire(0); }()).ok());
  EXPECT_EQ(s.step_count(), 1u);
}

TEST(SemaphoreTest, ReleaseThatWouldOverflowThrowsAndChangesNothing) {
  Semaphore sem(std::numeric_limits<size_t>::max() - 1, "big");
  EXPECT_THROW(sem.Release(2), std::overflow_error);
  EXPECT_EQ(sem.available(), std::numeric_limits<size_t>::max() - 1);
  sem.Release(1);
  EXPECT_EQ(sem.available(), std::numeric_limits<size_t>::max());
}

TEST(SemaphoreTest, CancelledHeadWaiterLetsSmallerWaitersBehindItGo) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Semaphore sem(1);
    bool small_ran = false;
    Task<void> big = Spawn(s, [&]() -> Co<void> { co_await sem.Acquire(3); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> small = Spawn(s, [&]() -> Co<void> {
      co_await sem.Acquire(1);
      small_ran = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_FALSE(small_ran) << "FIFO: waits behind `big`";
    big.Cancel();
    EXPECT_EQ(sem.WaiterCount(), 0u) << "`small` was granted when `big` left";
    ASSERT_TRUE(s.BlockOn(small).ok()) << "lost wake-up; seed " << seed;
    EXPECT_TRUE(small_ran);
  }
}

TEST(SemaphoreTest, PermitsGrantedToACancelledWaiterAreReturned) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Semaphore sem(0);
    bool survivor_ran = false;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { co_await sem.Acquire(2); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> survivor = Spawn(s, [&]() -> Co<void> {
      co_await sem.Acquire(2);
      survivor_ran = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    sem.Release(2);   // granted to `doomed`, which is queued to run
    doomed.Cancel();  // ...and cancelled first: the permits pass to `survivor`
    ASSERT_TRUE(s.BlockOn(survivor).ok()) << "permits lost; seed " << seed;
    EXPECT_TRUE(survivor_ran);
    EXPECT_EQ(sem.available(), 0u);
  }
}

TEST(SemaphoreTest, DeadlockReportNamesTheSemaphoreAndTheWaitSite) {
  TestScheduler s;
  Semaphore sem(1, "connections");
  Task<void> waiter = Spawn(s, [&]() -> Co<void> { co_await sem.Acquire(2); });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Semaphore 'connections'::Acquire at "
                            ".*semaphore_test.cc:[0-9]+"));
}

TEST(SemaphoreTest, UnnamedSemaphoreIsReportedByItsKind) {
  TestScheduler s;
  Semaphore sem(0);
  Task<void> waiter = Spawn(s, [&]() -> Co<void> { co_await sem.Acquire(); });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Semaphore::Acquire at .*semaphore_test.cc:[0-9]+"));
}

TEST(SemaphoreTest, WaiterGrantedPermitsMayBeCancelledAfterTheSemaphoreIsDestroyed) {
  TestScheduler s;
  auto sem = std::make_unique<Semaphore>(0);
  Task<void> waiter = Spawn(s, [sem = sem.get()]() -> Co<void> { co_await sem->Acquire(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  sem->Release();  // granted to `waiter`, which is queued
  sem.reset();
  waiter = Task<void>();  // returns the permit to the orphaned state
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

uint64_t PoolTraceHash(uint64_t seed) {
  TestScheduler s({.seed = seed});
  Semaphore sem(2, "pool");
  std::vector<Task<void>> tasks;
  for (int t = 0; t < 6; ++t) {
    tasks.push_back(Spawn(s, [&, t]() -> Co<void> {
      co_await sem.Acquire(1 + t % 2);
      co_await Yield();
      sem.Release(1 + t % 2);
    }));
  }
  for (Task<void>& task : tasks) EXPECT_TRUE(s.BlockOn(task).ok());
  return s.TraceHash();
}

TEST(SemaphoreTest, IsDeterministicPerSeedAndVariesAcrossSeeds) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const uint64_t hash = PoolTraceHash(seed);
    EXPECT_EQ(hash, PoolTraceHash(seed)) << "seed " << seed;
    hashes.insert(hash);
  }
  EXPECT_GT(hashes.size(), 20u);
}

}  // namespace
}  // namespace simsched
