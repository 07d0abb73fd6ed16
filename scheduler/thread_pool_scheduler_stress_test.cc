// ThreadPoolScheduler under load: every worker woken, a million tasks from
// several threads, work stolen from a busy worker.

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "scheduler/event.h"
#include "scheduler/internal/testing/pool_test_util.h"
#include "scheduler/scheduler.h"
#include "scheduler/task.h"
#include "scheduler/thread_pool_scheduler.h"
#include "testing/sweep_config.h"

namespace simsched {
namespace {

using internal::MakePool;
using internal::WaitFor;

// -----------------------------------------------------------------------------
// Stress
// -----------------------------------------------------------------------------

// Work that needs every worker at once (each task waits for all the others
// to be running) must wake every sleeping worker: a lost wake-up leaves a
// task queued behind a sleeping worker, and the round never completes.
TEST(ThreadPoolSchedulerStressTest, WorkNeedingEveryWorkerWakesThemAll) {
  for (int workers : {2, 4}) {
    auto scheduler = MakePool(workers);
    for (int round = 0; round < 300; ++round) {
      struct Round {
        std::atomic<int> arrived{0};
        std::atomic<int> done{0};
        std::atomic<bool> give_up{false};  // so a failure does not hang shutdown
      };
      auto state = std::make_shared<Round>();
      for (int i = 0; i < workers; ++i) {
        Spawn(*scheduler, [state, workers]() -> Co<void> {
          state->arrived.fetch_add(1);
          while (state->arrived.load() < workers && !state->give_up.load()) {
            std::this_thread::yield();
          }
          state->done.fetch_add(1);
          co_return;
        }).Detach();
      }
      const bool all_ran =
          WaitFor([&] { return state->done.load() == workers; }, std::chrono::seconds(30));
      state->give_up = true;
      ASSERT_TRUE(all_ran) << workers << " workers, round " << round << ": only "
                           << state->arrived.load() << " tasks started";
      ASSERT_TRUE(WaitFor([&] { return scheduler->LiveTaskCount() == 0; }));
      // Now and then let the workers fall asleep before the next round.
      if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
}

// One million in every build (about 1 s in the default build, 11 s under
// TSan on 2 vCPUs). SIMSCHED_POOL_STRESS_TASKS overrides it.
int64_t StressTaskCount() {
  absl::StatusOr<uint64_t> n =
      ::simsched::testing::EnvironmentUint64("SIMSCHED_POOL_STRESS_TASKS", 1'000'000);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? static_cast<int64_t>(*n) : 0;
}

struct StressCounters {
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> event_waits{0};
  std::atomic<int64_t> children{0};
};

Co<void> StressChild(StressCounters* counters) {
  co_await Yield();
  counters->children.fetch_add(1, std::memory_order_relaxed);
}

// Yields once; every 4th task also waits on an Event that the spawning
// thread sets (racing with the wait); every 16th awaits a child task.
Co<void> StressTask(Scheduler* scheduler, int64_t index, std::shared_ptr<Event> event,
                    StressCounters* counters) {
  co_await Yield();
  if (event != nullptr) {
    co_await event->Wait();
    counters->event_waits.fetch_add(1, std::memory_order_relaxed);
  }
  if (index % 16 == 0) co_await Spawn(*scheduler, StressChild(counters));
  counters->completed.fetch_add(1, std::memory_order_relaxed);
}

TEST(ThreadPoolSchedulerStressTest, MillionTasksFromSeveralThreadsAllComplete) {
  const int64_t total = StressTaskCount();
  constexpr int kSpawners = 4;
  constexpr int64_t kChunk = 1024;
  auto scheduler = MakePool(4);
  StressCounters counters;
  int64_t expected_event_waits = 0;
  int64_t expected_children = 0;
  for (int64_t i = 0; i < total; ++i) {
    if (i % 4 == 1) ++expected_event_waits;
    if (i % 16 == 0) ++expected_children;
  }
  std::vector<std::thread> spawners;
  for (int s = 0; s < kSpawners; ++s) {
    spawners.emplace_back([&, s] {
      for (int64_t begin = s * kChunk; begin < total; begin += kSpawners * kChunk) {
        const int64_t end = std::min(total, begin + kChunk);
        std::vector<std::shared_ptr<Event>> events;
        for (int64_t i = begin; i < end; ++i) {
          std::shared_ptr<Event> event;
          if (i % 4 == 1) {
            event = std::make_shared<Event>("stress");
            events.push_back(event);
          }
          Spawn(*scheduler, StressTask(scheduler.get(), i, std::move(event), &counters)).Detach();
        }
        // Woken from this (foreign) thread, racing with the tasks' waits.
        for (const auto& event : events) event->Set();
      }
    });
  }
  for (std::thread& spawner : spawners) spawner.join();
  const bool all_done = WaitFor([&] { return counters.completed.load() == total; },
                                std::chrono::seconds(600));
  ASSERT_TRUE(all_done) << "completed " << counters.completed.load() << " of " << total
                        << " (a lost wake-up leaves tasks suspended); live tasks "
                        << scheduler->LiveTaskCount();
  EXPECT_EQ(counters.completed.load(), total);
  EXPECT_EQ(counters.event_waits.load(), expected_event_waits);
  EXPECT_EQ(counters.children.load(), expected_children);
  ASSERT_TRUE(WaitFor([&] { return scheduler->LiveTaskCount() == 0; }));
}

// A task spawned by a task that then keeps its worker busy must be stolen by
// another worker (woken for it if asleep), not wait behind the busy one.
TEST(ThreadPoolSchedulerStressTest, WorkQueuedBehindABusyWorkerIsStolen) {
  auto scheduler = MakePool(2);
  for (int round = 0; round < 200; ++round) {
    auto ran = std::make_shared<std::atomic<bool>>(false);
    Task<bool> busy = Spawn(*scheduler, [ran, scheduler = scheduler.get()]() -> Co<bool> {
      Spawn(*scheduler, [ran]() -> Co<void> {
        ran->store(true);
        co_return;
      }).Detach();
      // Holds this worker until the child ran elsewhere (or gives up).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!ran->load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      co_return ran->load();
    });
    absl::StatusOr<bool> stolen = BlockOn(*scheduler, busy);
    ASSERT_TRUE(stolen.ok()) << stolen.status();
    ASSERT_TRUE(*stolen) << "round " << round << ": the child waited behind its busy parent";
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace
}  // namespace simsched
