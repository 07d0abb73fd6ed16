// The primitives under real threads: 4 worker threads, tasks migrating
// between workers, wakes and cancellations arriving from other threads. Each
// test runs on the production ThreadPoolScheduler. Run under --config=tsan to
// check the locking; the assertions check that no value, lock or permit is
// lost.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "sim/channel.h"
#include "sim/combinators.h"
#include "sim/mutex.h"
#include "sim/semaphore.h"
#include "scheduler/thread_pool_scheduler.h"

namespace simsched {
namespace {

using std::chrono::milliseconds;

constexpr int kThreads = 4;

struct SchedulerKind {
  std::string name;
  std::function<std::shared_ptr<Scheduler>()> make;
};

class PrimitivesThreadedTest : public ::testing::TestWithParam<SchedulerKind> {
 protected:
  // A new multi-threaded scheduler. Declare it after the primitives a test
  // uses, so it is destroyed (joining its threads) before they are.
  std::shared_ptr<Scheduler> MakePool() { return GetParam().make(); }
};

// Counts the tasks inside a critical section; RAII, so a holder cancelled
// inside it (its frame destroyed) leaves too.
class Inside {
 public:
  Inside(std::atomic<int>& count, std::atomic<bool>& overlap) : count_(count) {
    if (++count_ > 1) overlap = true;
  }
  Inside(const Inside&) = delete;
  Inside& operator=(const Inside&) = delete;
  ~Inside() { --count_; }

 private:
  std::atomic<int>& count_;
};

// Whether every task's frame is gone. A cancel that lands while its task is
// being polled on a worker takes effect when that poll ends; until then the
// scheduler still counts the task as running. `ids` must include tasks that
// were cancelled and replaced, whose last poll may still be under way.
bool AllGone(const Scheduler& pool, const std::vector<TaskId>& ids) {
  for (TaskId id : ids) {
    if (pool.IsTaskRunning(id)) return false;
  }
  return true;
}

// Waits (real time) until `done()` or a few seconds pass.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 5000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

TEST_P(PrimitivesThreadedTest, MutexProtectsAPlainCounterAcrossThreads) {
  Mutex mu;
  int counter = 0;  // deliberately not atomic: the Mutex must order every access
  std::shared_ptr<Scheduler> pool = MakePool();  // destroyed first: joins its threads
  std::vector<Task<void>> tasks;
  for (int t = 0; t < 8; ++t) {
    tasks.push_back(Spawn(*pool, [&]() -> Co<void> {
      for (int i = 0; i < 300; ++i) {
        MutexGuard lock = co_await mu.Lock();
        const int read = counter;
        if (i % 25 == 0) co_await Yield();  // hold it across a suspension
        counter = read + 1;
      }
    }));
  }
  for (Task<void>& task : tasks) ASSERT_TRUE(BlockOn(*pool, task).ok());
  EXPECT_EQ(counter, 8 * 300);
  EXPECT_FALSE(mu.IsLocked());
}

TEST_P(PrimitivesThreadedTest, SemaphoreBoundsConcurrencyAcrossThreads) {
  Semaphore sem(3);
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::shared_ptr<Scheduler> pool = MakePool();
  std::vector<Task<void>> tasks;
  for (int t = 0; t < 12; ++t) {
    tasks.push_back(Spawn(*pool, [&]() -> Co<void> {
      for (int i = 0; i < 40; ++i) {
        co_await sem.Acquire();
        const int now = ++in_flight;
        int seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        co_await Yield();
        --in_flight;
        sem.Release();
      }
    }));
  }
  for (Task<void>& task : tasks) ASSERT_TRUE(BlockOn(*pool, task).ok());
  EXPECT_LE(max_in_flight.load(), 3);
  EXPECT_EQ(sem.available(), 3u);
}

TEST_P(PrimitivesThreadedTest, ChannelDeliversEveryValueExactlyOnceAcrossThreads) {
  Channel<int> ch(8);
  std::shared_ptr<Scheduler> pool = MakePool();
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 1000;
  std::vector<Task<void>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(Spawn(*pool, [&, p]() -> Co<void> {
      for (int i = 0; i < kPerProducer; ++i) {
        EXPECT_TRUE((co_await ch.Send(p * kPerProducer + i)).ok());
      }
    }));
  }
  Task<void> closer = Spawn(*pool, [&]() -> Co<void> {
    (void)co_await WhenAll(std::move(producers));
    ch.Close();
  });
  std::vector<Task<std::vector<int>>> consumers;
  for (int c = 0; c < 4; ++c) {
    consumers.push_back(Spawn(*pool, [&]() -> Co<std::vector<int>> {
      std::vector<int> mine;
      while (std::optional<int> v = co_await ch.Recv()) mine.push_back(*v);
      co_return mine;
    }));
  }
  ASSERT_TRUE(BlockOn(*pool, closer).ok());
  std::vector<int> all;
  for (Task<std::vector<int>>& consumer : consumers) {
    absl::StatusOr<std::vector<int>> mine = BlockOn(*pool, consumer);
    ASSERT_TRUE(mine.ok()) << mine.status();
    all.insert(all.end(), mine->begin(), mine->end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), size_t{kProducers * kPerProducer});
  for (int i = 0; i < kProducers * kPerProducer; ++i) ASSERT_EQ(all[i], i);
}

// Receivers are cancelled from the test's thread while values flow: a value
// handed to a receiver that dies before it resumes must come back.
TEST_P(PrimitivesThreadedTest, CancellingReceiversWhileValuesFlowLosesNothing) {
  Channel<int> ch(4);
  constexpr int kValues = 3000;
  std::mutex received_mu;
  std::vector<int> received;
  std::shared_ptr<Scheduler> pool = MakePool();
  auto consumer = [&]() -> Co<void> {
    while (std::optional<int> v = co_await ch.Recv()) {
      std::lock_guard<std::mutex> lock(received_mu);
      received.push_back(*v);
    }
  };
  std::vector<Task<void>> consumers;
  std::vector<TaskId> spawned;  // every consumer ever, for AllGone
  for (int c = 0; c < 4; ++c) {
    consumers.push_back(Spawn(*pool, consumer));
    spawned.push_back(consumers.back().id());
  }
  std::vector<Task<void>> producers;
  for (int p = 0; p < 2; ++p) {
    producers.push_back(Spawn(*pool, [&, p]() -> Co<void> {
      for (int i = p; i < kValues; i += 2) EXPECT_TRUE((co_await ch.Send(i)).ok());
    }));
  }
  std::minstd_rand rng(1);
  for (int round = 0; round < 60; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    Task<void>& victim = consumers[rng() % consumers.size()];
    victim.Cancel();
    victim = Spawn(*pool, consumer);
    spawned.push_back(victim.id());
  }
  for (Task<void>& producer : producers) ASSERT_TRUE(BlockOn(*pool, producer).ok());
  ch.Close();
  for (Task<void>& c : consumers) ASSERT_TRUE(BlockOn(*pool, c).ok());
  ASSERT_TRUE(Eventually([&] { return AllGone(*pool, spawned); }));
  while (true) {
    absl::StatusOr<int> v = ch.TryRecv();
    if (!v.ok()) break;
    received.push_back(*v);
  }
  std::sort(received.begin(), received.end());
  ASSERT_EQ(received.size(), size_t{kValues}) << "values lost or duplicated";
  for (int i = 0; i < kValues; ++i) ASSERT_EQ(received[i], i);
}

TEST_P(PrimitivesThreadedTest, CancellingLockersNeverLosesTheLock) {
  Mutex mu;
  std::atomic<int> holders{0};
  std::atomic<bool> overlap{false};
  std::shared_ptr<Scheduler> pool = MakePool();
  auto locker = [&]() -> Co<void> {
    for (;;) {
      MutexGuard lock = co_await mu.Lock();
      Inside inside(holders, overlap);
      co_await Yield();  // cancelled here: the guard unlocks as the frame dies
    }
  };
  std::vector<Task<void>> lockers;
  std::vector<TaskId> spawned;
  for (int i = 0; i < 6; ++i) {
    lockers.push_back(Spawn(*pool, locker));
    spawned.push_back(lockers.back().id());
  }
  std::minstd_rand rng(2);
  for (int round = 0; round < 80; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    Task<void>& victim = lockers[rng() % lockers.size()];
    victim.Cancel();
    victim = Spawn(*pool, locker);
    spawned.push_back(victim.id());
  }
  for (Task<void>& l : lockers) l.Cancel();
  ASSERT_TRUE(Eventually([&] { return AllGone(*pool, spawned); }));
  EXPECT_FALSE(mu.IsLocked()) << "a cancelled waiter kept the lock";
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(mu.WaiterCount(), 0u);
  EXPECT_TRUE(mu.TryLock().has_value());
}

TEST_P(PrimitivesThreadedTest, CancellingAcquirersNeverLosesPermits) {
  Semaphore sem(3);
  std::shared_ptr<Scheduler> pool = MakePool();
  // Permits are held only within one poll (no suspension between Acquire
  // returning and Release), so a cancellation can land only while a task
  // waits in Acquire (queued, or granted and not yet resumed) or yields
  // without permits. Either way no permit may be lost.
  auto acquirer = [&](size_t n) {
    return [&sem, n]() -> Co<void> {
      for (;;) {
        co_await sem.Acquire(n);
        sem.Release(n);
        co_await Yield();
      }
    };
  };
  std::vector<Task<void>> tasks;
  std::vector<TaskId> spawned;
  for (size_t i = 0; i < 6; ++i) {
    tasks.push_back(Spawn(*pool, acquirer(1 + i % 3)));
    spawned.push_back(tasks.back().id());
  }
  std::minstd_rand rng(3);
  for (int round = 0; round < 80; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    const size_t index = rng() % tasks.size();
    tasks[index].Cancel();
    tasks[index] = Spawn(*pool, acquirer(1 + index % 3));
    spawned.push_back(tasks[index].id());
  }
  for (Task<void>& t : tasks) t.Cancel();
  ASSERT_TRUE(Eventually([&] { return AllGone(*pool, spawned); }));
  EXPECT_EQ(sem.available(), 3u) << "permits lost";
  EXPECT_EQ(sem.WaiterCount(), 0u);
}

TEST_P(PrimitivesThreadedTest, CombinatorsWorkAcrossThreads) {
  std::shared_ptr<Scheduler> pool = MakePool();  // the coroutines below capture nothing
  auto slow = []() -> Co<int> {
    co_await Sleep(std::chrono::seconds(5));
    co_return 1;
  };
  auto fast = []() -> Co<int> {
    co_await Sleep(milliseconds(1));
    co_return 2;
  };
  auto result = BlockOn(*pool, [&]() -> Co<std::vector<int>> {
    std::vector<int> out;
    absl::StatusOr<int> timed_out = co_await WithTimeout(slow(), milliseconds(20));
    out.push_back(absl::IsDeadlineExceeded(timed_out.status()) ? -1 : 0);
    absl::StatusOr<int> in_time = co_await WithTimeout(fast(), std::chrono::seconds(5));
    out.push_back(in_time.ok() ? *in_time : 0);
    auto any = co_await WhenAny(slow(), fast());
    out.push_back(static_cast<int>(any.index()));
    auto [a, b] = co_await WhenAll(fast(), fast());
    out.push_back(a + b);
    co_return out;
  }());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(*result, ::testing::ElementsAre(-1, 2, 1, 4));
}

INSTANTIATE_TEST_SUITE_P(
    Schedulers, PrimitivesThreadedTest,
    ::testing::Values(
        SchedulerKind{"ThreadPoolScheduler",
                      [] {
                        return ThreadPoolScheduler::Create({.worker_threads = kThreads});
                      }}),
    [](const ::testing::TestParamInfo<SchedulerKind>& info) { return info.param.name; });

}  // namespace
}  // namespace simsched
