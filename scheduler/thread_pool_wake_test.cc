// Lost wake-ups in the ThreadPoolScheduler: a plain thread spawns and blocks
// on tasks one after another while workers go idle and wake between them. A
// lost wake-up shows as a BlockOn that never returns (the test's timeout).

#include <atomic>
#include <coroutine>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/thread_pool_scheduler.h"
#include "scheduler/waker.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

TEST(ThreadPoolWakeTest, SpawnAndBlockOnFromAPlainThreadNeverStalls) {
  absl::StatusOr<uint64_t> iterations_or =
      ::simsched::testing::EnvironmentUint64("SIMSCHED_RACE_ITERATIONS", 20000);
  ASSERT_TRUE(iterations_or.ok()) << iterations_or.status();
  const int iterations = static_cast<int>(*iterations_or);
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 2});
  int64_t sum = 0;
  std::thread client([&] {
    for (int i = 0; i < iterations; ++i) {
      Task<int> task = Spawn(*pool, [i]() -> Co<int> {
        if (i % 3 == 0) co_await Yield();
        co_return i;
      });
      absl::StatusOr<int> result = BlockOn(*pool, task);
      ASSERT_TRUE(result.ok()) << result.status();
      sum += *result;
    }
  });
  client.join();
  EXPECT_EQ(sum, int64_t{iterations} * (iterations - 1) / 2);
}

// Consuming wakes (std::move(waker).Wake()) from a plain thread race with
// the tasks' own polls: the wake may land while the task is still inside the
// await_suspend that published its waker. Each suspension is resumed exactly
// once, double wakes through a copy schedule once, and every reference the
// wakers held is handed on or released (LSan and TSan check the rest).
TEST(ThreadPoolWakeTest, ConsumingWakesFromAnotherThreadResumeEachSuspensionOnce) {
  constexpr int kTasks = 8;
  constexpr int kRounds = 200;
  auto pool = ThreadPoolScheduler::Create({.worker_threads = 2});
  std::mutex mu;
  std::vector<Waker> parked;  // guarded by mu
  struct Park {
    std::mutex& mu;
    std::vector<Waker>& parked;
    bool await_ready() const { return false; }
    void await_suspend(std::coroutine_handle<>) {
      std::lock_guard<std::mutex> lock(mu);
      parked.push_back(CurrentWaker());
    }
    void await_resume() const {}
  };
  std::vector<Task<int>> tasks;
  for (int t = 0; t < kTasks; ++t) {
    tasks.push_back(Spawn(*pool, [&]() -> Co<int> {
      int resumed = 0;
      for (int round = 0; round < kRounds; ++round) {
        co_await Park{mu, parked};
        ++resumed;
      }
      co_return resumed;
    }));
  }
  std::atomic<bool> done{false};
  std::thread waker_thread([&] {
    uint64_t n = 0;
    while (!done.load(std::memory_order_acquire)) {
      std::vector<Waker> batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.swap(parked);
      }
      for (Waker& waker : batch) {
        if (++n % 3 == 0) {
          Waker copy = waker;
          std::move(copy).Wake();
        }
        std::move(waker).Wake();
      }
      std::this_thread::yield();
    }
  });
  for (Task<int>& task : tasks) {
    absl::StatusOr<int> resumed = BlockOn(*pool, task);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(*resumed, kRounds);
  }
  done.store(true, std::memory_order_release);
  waker_thread.join();
}

}  // namespace
}  // namespace simsched
