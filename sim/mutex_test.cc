#include "sim/mutex.h"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
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

TEST(MutexTest, LockIsExclusiveAcrossAwaits) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Mutex mu;
    int counter = 0;
    int holders = 0;
    int max_holders = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < 5; ++t) {
      tasks.push_back(Spawn(s, [&]() -> Co<void> {
        for (int i = 0; i < 10; ++i) {
          MutexGuard lock = co_await mu.Lock();
          max_holders = std::max(max_holders, ++holders);
          const int read = counter;
          co_await Yield();  // a lost update if the lock did not hold
          counter = read + 1;
          --holders;
        }
      }));
    }
    for (Task<void>& task : tasks) ASSERT_TRUE(s.BlockOn(task).ok());
    EXPECT_EQ(counter, 50) << "seed " << seed;
    EXPECT_EQ(max_holders, 1) << "seed " << seed;
    EXPECT_FALSE(mu.IsLocked());
  }
}

TEST(MutexTest, WaitersGetTheLockInTheOrderTheyAsked) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Mutex mu;
    std::optional<MutexGuard> held = mu.TryLock();
    ASSERT_TRUE(held.has_value());
    std::vector<int> order;
    for (int i = 0; i < 4; ++i) {
      Spawn(s, [&, i]() -> Co<void> {
        MutexGuard lock = co_await mu.Lock();
        order.push_back(i);
        co_await Yield();
      }).Detach();
      ASSERT_TRUE(s.RunUntilIdle().ok());  // waiter i now queued after i-1
    }
    EXPECT_EQ(mu.WaiterCount(), 4u);
    held.reset();
    ASSERT_TRUE(s.RunUntilIdle().ok());
    EXPECT_THAT(order, ElementsAre(0, 1, 2, 3)) << "seed " << seed;
  }
}

TEST(MutexTest, UnlockHandsTheLockOverSoNobodyCanBargeIn) {
  TestScheduler s;
  Mutex mu;
  std::optional<MutexGuard> held = mu.TryLock();
  bool waiter_got_it = false;
  Spawn(s, [&]() -> Co<void> {
    MutexGuard lock = co_await mu.Lock();
    waiter_got_it = true;
  }).Detach();
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_FALSE(mu.TryLock().has_value()) << "held";
  held.reset();  // handed to the waiter, which has not run yet
  EXPECT_TRUE(mu.IsLocked());
  EXPECT_FALSE(mu.TryLock().has_value()) << "TryLock must not barge past the waiter";
  ASSERT_TRUE(s.RunUntilIdle().ok());
  EXPECT_TRUE(waiter_got_it);
  EXPECT_FALSE(mu.IsLocked());
  EXPECT_TRUE(mu.TryLock().has_value());
}

TEST(MutexTest, GuardUnlocksEarlyAndMovesOwnership) {
  Mutex mu;
  std::optional<MutexGuard> first = mu.TryLock();
  ASSERT_TRUE(first.has_value());
  MutexGuard moved = std::move(*first);
  EXPECT_FALSE(first->owns_lock());
  EXPECT_TRUE(moved.owns_lock());
  EXPECT_TRUE(mu.IsLocked());
  moved.Unlock();
  EXPECT_FALSE(moved.owns_lock());
  EXPECT_FALSE(mu.IsLocked());
  moved.Unlock();  // no-op on an empty guard
  EXPECT_FALSE(mu.IsLocked());
  std::optional<MutexGuard> again = mu.TryLock();
  ASSERT_TRUE(again.has_value());
  MutexGuard target;
  target = std::move(*again);
  EXPECT_TRUE(mu.IsLocked());
  target = MutexGuard();  // assigning over a held guard unlocks it
  EXPECT_FALSE(mu.IsLocked());
}

TEST(MutexTest, CancelledWaiterIsRemovedAndTheNextWaiterGetsTheLock) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Mutex mu;
    std::optional<MutexGuard> held = mu.TryLock();
    bool doomed_ran = false;
    bool survivor_ran = false;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> {
      MutexGuard lock = co_await mu.Lock();
      doomed_ran = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> survivor = Spawn(s, [&]() -> Co<void> {
      MutexGuard lock = co_await mu.Lock();
      survivor_ran = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    ASSERT_EQ(mu.WaiterCount(), 2u);
    doomed.Cancel();
    EXPECT_EQ(mu.WaiterCount(), 1u);
    held.reset();
    ASSERT_TRUE(s.BlockOn(survivor).ok()) << "seed " << seed;
    EXPECT_TRUE(survivor_ran);
    EXPECT_FALSE(doomed_ran);
    EXPECT_FALSE(mu.IsLocked());
  }
}

TEST(MutexTest, WaiterCancelledAfterTheHandoffPassesTheLockOn) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    TestScheduler s({.seed = seed});
    Mutex mu;
    std::optional<MutexGuard> held = mu.TryLock();
    bool survivor_ran = false;
    Task<void> doomed = Spawn(s, [&]() -> Co<void> { MutexGuard lock = co_await mu.Lock(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    Task<void> survivor = Spawn(s, [&]() -> Co<void> {
      MutexGuard lock = co_await mu.Lock();
      survivor_ran = true;
    });
    ASSERT_TRUE(s.RunUntilIdle().ok());
    held.reset();     // handed to `doomed`, which is queued to run
    doomed.Cancel();  // ...and cancelled before it could
    ASSERT_TRUE(s.BlockOn(survivor).ok()) << "the lock was lost with `doomed`; seed " << seed;
    EXPECT_TRUE(survivor_ran);
    EXPECT_FALSE(mu.IsLocked());
  }
}

TEST(MutexTest, LockHandedToACancelledLastWaiterIsFreed) {
  TestScheduler s;
  Mutex mu;
  std::optional<MutexGuard> held = mu.TryLock();
  Task<void> doomed = Spawn(s, [&]() -> Co<void> { MutexGuard lock = co_await mu.Lock(); });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  held.reset();
  EXPECT_TRUE(mu.IsLocked()) << "handed to `doomed`";
  doomed.Cancel();
  EXPECT_FALSE(mu.IsLocked());
  EXPECT_TRUE(mu.TryLock().has_value());
}

TEST(MutexTest, DeadlockReportNamesTheMutexAndTheWaitSite) {
  TestScheduler s;
  Mutex mu("accounts");
  std::optional<MutexGuard> held = mu.TryLock();
  Task<void> waiter = Spawn(s, [&]() -> Co<void> { MutexGuard lock = co_await mu.Lock(); });
  absl::Status status = s.BlockOn(waiter);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Mutex 'accounts'::Lock at .*mutex_test.cc:[0-9]+"));
}

TEST(MutexTest, LockOrderInversionIsReportedAsADeadlockOfBothTasks) {
  TestScheduler s({.randomize_order = false});
  Mutex a("a"), b("b");
  Task<void> ab = Spawn(s, [&]() -> Co<void> {
    MutexGuard first = co_await a.Lock();
    co_await Yield();
    MutexGuard second = co_await b.Lock();
  });
  Task<void> ba = Spawn(s, [&]() -> Co<void> {
    MutexGuard first = co_await b.Lock();
    co_await Yield();
    MutexGuard second = co_await a.Lock();
  });
  absl::Status status = s.BlockOn(ab);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Mutex 'b'::Lock at .*mutex_test.cc:[0-9]+"));
  EXPECT_THAT(std::string(status.message()),
              ContainsRegex("waiting on Mutex 'a'::Lock at .*mutex_test.cc:[0-9]+"));
}

TEST(MutexTest, GuardOutlivingItsMutexUnlocksHarmlessly) {
  // The old Mutex's storage is reused by a new one. A guard that reached its
  // lock through the Mutex object (instead of the shared state it owns)
  // would unlock the new Mutex; under ASan it would also be a use after free.
  std::optional<Mutex> slot;
  slot.emplace("old");
  std::optional<MutexGuard> guard = slot->TryLock();
  ASSERT_TRUE(guard.has_value());
  slot.reset();
  slot.emplace("new");
  std::optional<MutexGuard> held = slot->TryLock();
  ASSERT_TRUE(held.has_value());
  guard.reset();
  EXPECT_TRUE(slot->IsLocked()) << "the old guard unlocked the Mutex that replaced its own";
  EXPECT_FALSE(slot->TryLock().has_value());
  held.reset();
  EXPECT_FALSE(slot->IsLocked());
}

TEST(MutexTest, MutexDestroyedWithWaitersLeavesThemWaiting) {
  TestScheduler s;
  std::optional<MutexGuard> guard;
  Task<void> waiter;
  {
    Mutex mu("short-lived");
    guard = mu.TryLock();
    waiter = Spawn(s, [&]() -> Co<void> { MutexGuard lock = co_await mu.Lock(); });
    ASSERT_TRUE(s.RunUntilIdle().ok());
  }
  EXPECT_FALSE(waiter.IsFinished());
  waiter = Task<void>();  // the awaiter's destructor must not touch freed memory
  guard.reset();
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

TEST(MutexTest, WaiterHandedTheLockMayBeCancelledAfterTheMutexIsDestroyed) {
  TestScheduler s;
  auto mu = std::make_unique<Mutex>();
  std::optional<MutexGuard> held = mu->TryLock();
  Task<void> waiter = Spawn(s, [mu = mu.get()]() -> Co<void> {
    MutexGuard lock = co_await mu->Lock();
  });
  ASSERT_TRUE(s.RunUntilIdle().ok());
  held.reset();  // handed to `waiter`, which is queued
  mu.reset();
  waiter = Task<void>();  // passes the lock on inside the orphaned state
  EXPECT_EQ(s.LiveTaskCount(), 0u);
}

uint64_t CounterTraceHash(uint64_t seed, int* counter_out) {
  TestScheduler s({.seed = seed});
  Mutex mu("counter");
  int counter = 0;
  std::vector<Task<void>> tasks;
  for (int t = 0; t < 4; ++t) {
    tasks.push_back(Spawn(s, [&, t]() -> Co<void> {
      for (int i = 0; i < 5; ++i) {
        co_await Yield();
        MutexGuard lock = co_await mu.Lock();
        const int read = counter;
        co_await Sleep(std::chrono::microseconds(1 + t));
        counter = read + 1;
      }
    }));
  }
  for (Task<void>& task : tasks) EXPECT_TRUE(s.BlockOn(task).ok());
  *counter_out = counter;
  return s.TraceHash();
}

TEST(MutexTest, ProtectedCounterIsDeterministicPerSeedAndVariesAcrossSeeds) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    int first = 0, second = 0;
    const uint64_t hash = CounterTraceHash(seed, &first);
    EXPECT_EQ(hash, CounterTraceHash(seed, &second)) << "seed " << seed;
    EXPECT_EQ(first, 20);
    EXPECT_EQ(second, 20);
    hashes.insert(hash);
  }
  EXPECT_GT(hashes.size(), 10u);
}

}  // namespace
}  // namespace simsched
